#!/usr/bin/env bash
# Why the live pipeline's latency tail is long: one run, every figure under the folder given as $1.
#
#   bash benchmarks/gpu_live_profile.sh OUT_DIR              # on the GPU machine (DEVICE=cuda)
#   DEVICE=cpu SECS=3 bash benchmarks/gpu_live_profile.sh OUT_DIR   # smoke test anywhere
#   ANALYSE_ONLY=1 bash benchmarks/gpu_live_profile.sh OUT_DIR      # redo summary.* from the trace_*.json(.gz) there
#
# `swapline bench latency`'s pipeline (stand-in generator, as benchmarks/gpu.sh runs it) in one process,
# several variants of SECS seconds each, every frame traced (run_latency's `traces`: due, released by the
# source, each stage's start/end/thread/CPU, delivered) and every garbage collection timed (gc.callbacks):
#   split            the live layout, as measured before        serial           every frame in turn
#   split_gc_frozen  gc.freeze() + gc.disable() (experiment)    split_switch_1ms sys.setswitchinterval(1 ms)
#   split_no_loop    a clip longer than the run (no reopen)     split_again      split once more (run to run)
#   split_pyspy      split while py-spy samples every thread (--native --idle, 200 Hz): pyspy_raw.txt
#   split_pyspy_gil  split while py-spy samples only the GIL holder: pyspy_gil_raw.txt
#   split_inline     split with the periodic re-detection on the frame's thread (on a GPU, live
#                    streams detect aside since run 5: this is the layout run 5 measured)
# Writes: env.txt, trace_<variant>.json (report + per-frame rows + GC pauses), summary.json/.txt (the
# worst 2% of frames of each variant, where their time went), pyspy_*_top.txt (top 30 frames).
# GPU machines: see the notes at the top of benchmarks/gpu.sh (onnxruntime-gpu and PyAV travel in chunks).
set -uo pipefail

OUT=${1:?usage: bash benchmarks/gpu_live_profile.sh OUT_DIR  (env: DEVICE=cuda|cpu SECS=S PYTHON=python3)}
DEVICE=${DEVICE:-cuda}
SECS=${SECS:-15}
PY=${PYTHON:-python3}
VARIANTS=${VARIANTS:-split,serial,split_gc_frozen,split_switch_1ms,split_no_loop,split_again,split_pyspy,split_pyspy_gil}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
step() { echo "== $(date +%T) $*" >&2; }

ANALYSE=$WORK/analyse.py
cat > "$ANALYSE" <<'PY'
"""The worst 2% of frames of each traced variant: where their time went, what ran meanwhile."""
import gzip
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

out = Path(sys.argv[1])
CLIP_FRAMES = 120  # the looped clip: 4 s at 30 fps


def overlap(a0, a1, b0, b1):
    return max(0.0, min(a1, b1) - max(a0, b0))


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))] if values else 0.0


def parts(row):
    """(component, ms) along the frame's path: release late, waits between stages, stage wall times."""
    st = row["stages"]
    order = sorted(st.items(), key=lambda kv: kv[1]["start_ms"])
    released = row["due_ms"] + (row["released_late_ms"] or 0.0)
    got = [("released late", row["released_late_ms"] or 0.0)]
    cursor = released
    for name, span in order:
        got.append((f"wait before {name}", span["start_ms"] - cursor))
        got.append((f"{name} wall", span["end_ms"] - span["start_ms"]))
        got.append((f"{name} off-CPU", (span["end_ms"] - span["start_ms"]) - span["cpu_ms"]))
        cursor = span["end_ms"]
    got.append(("wait to deliver", row["due_ms"] + row["latency_ms"] - cursor))
    return got


summary, lines = {}, []
for path in sorted(out.glob("trace_*.json*")):  # .json, or .json.gz as kept in benchmarks/results
    data = json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text())
    name, rows, gcs = data["variant"], data["rows"], data["gc"]
    if not rows:
        continue
    lat = [r["latency_ms"] for r in rows]
    n_worst = max(3, round(len(rows) * 0.02))
    worst = sorted(rows, key=lambda r: -r["latency_ms"])[:n_worst]
    spans = [(seq, stage, s) for r in rows for seq in [r["seq"]] for stage, s in r["stages"].items()]
    comp = {}
    for r in rows:
        for k, v in parts(r):
            comp.setdefault(k, []).append(v)
    medians = {k: statistics.median(v) for k, v in comp.items()}
    gc_total = sum(g["ms"] for g in gcs)
    report = {
        "frames": len(rows),
        "latency_ms": {"p50": round(pct(lat, 50), 2), "p95": round(pct(lat, 95), 2), "p99": round(pct(lat, 99), 2),
                       "max": round(max(lat), 2)},
        "gc": {"collections": Counter(str(g["generation"]) for g in gcs), "total_ms": round(gc_total, 2),
               "max_ms": round(max((g["ms"] for g in gcs), default=0.0), 2)},
        "median_path_ms": {k: round(v, 3) for k, v in medians.items()},
        "worst": [],
    }
    excess = Counter()
    for r in worst:
        start, end = r["due_ms"], r["due_ms"] + r["latency_ms"]
        own = parts(r)
        for k, v in own:
            if "off-CPU" not in k:
                excess[k] += max(0.0, v - medians.get(k, 0.0))
        gc_hits = [g for g in gcs if overlap(start, end, g["start_ms"], g["start_ms"] + g["ms"]) > 0]
        others = Counter()
        for seq, stage, s in spans:
            if seq != r["seq"]:
                others[stage] += overlap(start, end, s["start_ms"], s["end_ms"])
        report["worst"].append({
            "seq": r["seq"], "in_clip": r["seq"] % CLIP_FRAMES, "latency_ms": r["latency_ms"],
            "path_ms": {k: round(v, 2) for k, v in own},
            "timings": r["timings"],
            "gc_overlapping": [{"generation": g["generation"], "ms": round(g["ms"], 2), "thread": g["thread"]}
                               for g in gc_hits],
            "other_frames_stage_ms": {k: round(v, 2) for k, v in others.items()},
        })
    total_excess = sum(excess.values()) or 1.0
    report["excess_over_median_share"] = {k: round(v / total_excess, 3) for k, v in excess.most_common()}
    report["worst_with_gc"] = sum(1 for w in report["worst"] if w["gc_overlapping"])
    report["worst_near_loop"] = sum(1 for w in report["worst"] if w["in_clip"] < 5 or w["in_clip"] > CLIP_FRAMES - 3)
    summary[name] = report
    lat_s = report["latency_ms"]
    lines.append(f"## {name}: {len(rows)} frames, latency p50 {lat_s['p50']} p95 {lat_s['p95']} p99 {lat_s['p99']}"
                 f" max {lat_s['max']} ms; GC {dict(report['gc']['collections'])} total {report['gc']['total_ms']} ms"
                 f" max {report['gc']['max_ms']} ms")
    lines.append(f"   worst {n_worst}: with a GC pause inside {report['worst_with_gc']}, within 3 frames of the clip's"
                 f" loop {report['worst_near_loop']}; excess over the median path by part: "
                 + ", ".join(f"{k} {v:.0%}" for k, v in list(report["excess_over_median_share"].items())[:4]))
    for w in report["worst"]:
        path_s = " | ".join(f"{k} {v:.1f}" for k, v in w["path_ms"].items() if abs(v) >= 0.5)
        gc_s = ",".join(f"gen{g['generation']} {g['ms']}ms" for g in w["gc_overlapping"]) or "-"
        lines.append(f"   seq {w['seq']:4d} (clip frame {w['in_clip']:3d}) {w['latency_ms']:6.1f} ms: {path_s}; gc {gc_s}")
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
(out / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY

SPYSUM=$WORK/spysum.py
cat > "$SPYSUM" <<'PY'
"""py-spy raw (collapsed stacks, one 'frames count' a line) -> top 30 self and inclusive frames, per thread."""
import sys
from collections import Counter

raw, top = sys.argv[1], sys.argv[2]
own, incl, threads = Counter(), Counter(), Counter()
total = 0
for line in open(raw):
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if not count.isdigit():
        continue
    count, frames = int(count), stack.split(";")
    thread, frames = frames[0], frames[1:]
    total += count
    threads[thread] += count
    if frames:
        own[f"{thread.split(':')[-1].strip()}: {frames[-1]}"] += count
    for frame in set(frames):
        incl[frame] += count
with open(top, "w") as f:
    f.write(f"{total} samples\n\nper thread:\n")
    for t, c in threads.most_common():
        f.write(f"{c / total:7.1%}  {t}\n")
    f.write("\ntop 30 by self samples (thread: leaf frame):\n")
    for k, c in own.most_common(30):
        f.write(f"{c / total:7.1%}  {k}\n")
    f.write("\ntop 30 by inclusive samples (frame anywhere on the stack):\n")
    for k, c in incl.most_common(30):
        f.write(f"{c / total:7.1%}  {k}\n")
PY

if [[ -n ${ANALYSE_ONLY:-} ]]; then
  "$PY" "$ANALYSE" "$OUT"
  exit
fi

missing=$("$PY" - <<'PY'
import importlib.util
need = ["numpy", "cv2", "onnx", "onnxruntime", "rich", "fontTools", "av", "platformdirs", "filelock", "PIL", "reedsolo"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)
if [[ -n $missing ]]; then
  echo "gpu_live_profile.sh: missing Python modules: $missing (see the notes at the top of benchmarks/gpu.sh)" >&2
  exit 3
fi

SPY=${PYSPY:-}
[[ -z $SPY && -x .venv/bin/py-spy ]] && SPY=$ROOT/.venv/bin/py-spy
[[ -z $SPY ]] && SPY=$(command -v py-spy || true)

step "environment"
{
  date -u; uname -r; nproc; "$PY" -V
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
    --format=csv,noheader
  "$PY" -c "import onnxruntime as o, av, numpy, cv2; print('ort', o.__version__, o.get_available_providers(), \
'av', av.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__, 'cv2 threads', cv2.getNumThreads())"
  echo "py-spy: ${SPY:-none} $([[ -n $SPY ]] && "$SPY" --version)"
  echo "ptrace_scope: $(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo n/a); uid $(id -u)"
  grep -E '^(Cpus_allowed_list|voluntary|nonvoluntary)' /proc/self/status
  uptime
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >&2

step "stand-in models and clips"
MODELS=$WORK/models; mkdir -p "$MODELS"
"$PY" - "$MODELS" "$DEVICE" <<'PY' || exit 4
import sys
from pathlib import Path

from swapline.bench.standin import to_fp16, write_standin_arcface, write_standin_generator

models, device = Path(sys.argv[1]), sys.argv[2]
write_standin_arcface(models / "standin_arcface.onnx")
if device == "cpu":  # the small one, as gpu.sh's CPU smoke run
    write_standin_generator(models / "generator.onnx", channels=32, blocks=2)
else:  # as gpu.sh: on a GPU the float16 twin
    to_fp16(write_standin_generator(models / "fp32.onnx"), models / "generator.onnx")
PY
"$PY" -m swapline bench clip --photo tests/data/biden2.jpg --out "$WORK/clip.mp4" --seconds 4 --fps 30 >&2 || exit 4
"$PY" -m swapline bench clip --photo tests/data/biden2.jpg --out "$WORK/long.mp4" --seconds "$((${SECS%.*} + 3))" \
  --fps 30 >&2 || exit 4

DRIVER=$WORK/driver.py
cat > "$DRIVER" <<'PY'
"""Variants of the live latency bench in one process, each frame traced and each GC pause timed."""
import ctypes
import gc
import json
import sys
import threading
import time
from pathlib import Path

from swapline.bench.latency import run_latency
from swapline.runtime import RuntimeSettings
from swapline.settings import ModelChoices, SwapSettings, providers_for

out, device, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
clip, long_clip, generator, arcface = (Path(a) for a in sys.argv[4:8])
variants = sys.argv[8].split(",")
try:  # let a py-spy started beside this process attach (Yama ptrace_scope 1: declared tracers only)
    ctypes.CDLL(None).prctl(0x59616D61, ctypes.c_ulong(-1), 0, 0, 0)  # PR_SET_PTRACER, PR_SET_PTRACER_ANY
except (OSError, AttributeError):
    pass


class GcLog:
    """Every collection: when it started, how long it held the GIL, which generation, which thread."""

    def __init__(self):
        self.events, self._start = [], None

    def __call__(self, phase, info):
        now = time.monotonic()
        if phase == "start":
            self._start = now
        elif self._start is not None:
            self.events.append((self._start, (now - self._start) * 1000, info["generation"], info["collected"],
                                threading.current_thread().name))
            self._start = None


from swapline.session import SwapSession  # noqa: E402

_stream = SwapSession.stream
settings = SwapSettings(
    models=ModelChoices(detector="short", swapper=str(generator), encoder=str(arcface), offline=True),
    runtime=RuntimeSettings(providers=providers_for(device)),
)
for variant in variants:
    video = long_clip if variant == "split_no_loop" else clip
    layouts = ("serial",) if variant == "serial" else ("split",)
    if variant.startswith("split_pyspy"):  # the script starts py-spy on this pid, then says go
        (out / f".ready_{variant}").touch()
        deadline = time.monotonic() + 20
        while not (out / f".go_{variant}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    # split_inline: the periodic re-detection on the frame's own thread, as before detect_aside
    SwapSession.stream = (lambda self, live=False: _stream(self, False)) if variant == "split_inline" else _stream
    switch = sys.getswitchinterval()
    if variant == "split_switch_1ms":
        sys.setswitchinterval(0.001)
    if variant == "split_gc_frozen":
        gc.collect()
        gc.freeze()
        gc.disable()
    log, traces = GcLog(), {}
    gc.callbacks.append(log)
    start = time.monotonic()
    try:
        report = run_latency(Path("tests/data/obama.jpg"), video, 30.0, seconds, layouts=layouts, settings=settings,
                             gap_rounds=0, traces=traces)
    except Exception as exc:  # one variant failing must not lose the others
        print(f"{variant}: {exc!r}", file=sys.stderr)
        continue
    finally:
        gc.callbacks.remove(log)
        gc.enable()
        gc.unfreeze()
        sys.setswitchinterval(switch)
    trace = traces[layouts[0]]
    rows = trace.rows()
    zero = min(trace.due.values()) if trace.due else start
    gcs = [{"start_ms": round((s - zero) * 1000, 3), "ms": round(ms, 3), "generation": g, "collected": c, "thread": t}
           for s, ms, g, c, t in log.events if s >= start]
    threads = {}
    for seq, stage, tid, *_ in trace.spans:
        threads.setdefault(stage, set()).add(tid)
    run = report["runs"][layouts[0]]
    doc = {"variant": variant, "device": device, "seconds": seconds, "video": video.name,
           "gc_counts": gc.get_count(), "gc_threshold": gc.get_threshold(), "gc_tracked_objects": len(gc.get_objects()),
           "stage_threads": {k: sorted(v) for k, v in threads.items()}, "report": report, "gc": gcs, "rows": rows}
    (out / f"trace_{variant}.json").write_text(json.dumps(doc) + "\n")
    lat = run["latency_ms"]
    print(f"{variant}: {run['frames_out']} frames, p50 {lat['p50_ms']} p95 {lat['p95_ms']} p99 {lat['p99_ms']} "
          f"max {lat['max_ms']} ms, {len(gcs)} GCs ({sum(g['ms'] for g in gcs):.1f} ms)", file=sys.stderr)

# the intra-op threads each ONNX Runtime session really got (RuntimeSettings' default is 1)
from swapline.runtime import shared_sessions  # noqa: E402

sessions = shared_sessions(settings.runtime)
info = {f"{Path(k[0]).name} {k[1:]}": {"intra_op_threads": s.get_session_options().intra_op_num_threads,
                          "providers": s.get_providers()} for k, s in sessions._sessions.items()}
(out / "sessions.json").write_text(json.dumps(info, indent=1) + "\n")
PY

step "variants ($VARIANTS), ${SECS} s each"
rm -f "$OUT"/.ready_* "$OUT"/.go_*
"$PY" "$DRIVER" "$OUT" "$DEVICE" "$SECS" "$WORK/clip.mp4" "$WORK/long.mp4" "$MODELS/generator.onnx" \
  "$MODELS/standin_arcface.onnx" "$VARIANTS" 2> >(tee "$OUT/driver.log" >&2) &
DRIVER_PID=$!
for variant in split_pyspy split_pyspy_gil; do
  [[ ,$VARIANTS, == *,$variant,* ]] || continue
  for _ in $(seq 1 2400); do  # up to 20 minutes
    [[ -e $OUT/.ready_$variant ]] || ! kill -0 $DRIVER_PID 2>/dev/null && break
    sleep 0.5
  done
  [[ -e $OUT/.ready_$variant ]] || break
  if [[ -n $SPY ]]; then
    if [[ $variant == split_pyspy ]]; then
      name=pyspy_raw; extra=(--native --idle)
    else
      name=pyspy_gil_raw; extra=(--gil)
    fi
    step "py-spy on $variant"
    timeout $((${SECS%.*} + 60)) "$SPY" record --pid $DRIVER_PID --duration "$((${SECS%.*} + 2))" -r 200 --threads \
      "${extra[@]}" -f raw -o "$OUT/$name.txt" > "$OUT/$name.log" 2>&1 &
    sleep 1
  fi
  touch "$OUT/.go_$variant"
done
wait $DRIVER_PID
echo "driver exit $?" >&2
wait
rm -f "$OUT"/.ready_* "$OUT"/.go_*

step "py-spy summaries"
for name in pyspy_raw pyspy_gil_raw; do
  [[ -s $OUT/$name.txt ]] || continue
  "$PY" "$SPYSUM" "$OUT/$name.txt" "$OUT/${name%_raw}_top.txt" && head -20 "$OUT/${name%_raw}_top.txt" >&2
  gzip -f "$OUT/$name.txt"
done

step "worst 2% of frames"
"$PY" "$ANALYSE" "$OUT"
rm -rf "$WORK"
step "done: $(ls "$OUT" | tr '\n' ' ')"
