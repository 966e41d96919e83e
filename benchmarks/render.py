"""Render BENCHMARKS.md from the JSON results in benchmarks/results (run after re-running a benchmark).

python benchmarks/render.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

CLIP = "swapline bench clip --photo tests/data/biden2.jpg --out bench-clip.mp4 --seconds 10"

SCALE_TEXT = """Swap + blend of one face at several sizes (faces wider than ~210 px are composed 192 px across
and written back at full size), still detection on large images (a full-frame pass on
one shared pyramid, then one finer pass of the model rewritten for any input size over the part
where skin-coloured pixels are left unexplained, on two threads; older runs scanned tiles), a
4K tracking check (frames where one face was found twice), the whole video job with 1 to 8 faces
per 720p frame (landmark passes and the swaps of faces far apart run side by side on the session's
face workers, every thread taking the next face not yet taken; one palm search for hands a frame,
the faces taking turns), and the job at 720p, 1080p and 4K with its peak RSS (each job and each
decode + encode floor in a child process of its own). Issue 16's targets: <= 12 ms at 800 px,
still detection <= 25 ms on 4K, 720p with 4 faces >= 45 fps and with 8 faces >= 25 fps, swap /
floor <= 1.2 at 1080p and 4K, 4K peak RSS < 600 MB. The 800 px swap as a feed pays it, the 4K
still detection and the 4K peak are within their limits in this run (23.9 ms; 23.9 to 26.4 ms in
four runs of this code here: at risk; 568 MB, with one decoder thread at 4K since this run, 596 MB
in the run before); the others are not met on this 2-core machine (see the closing notes of the
round). This run is of the code with x264's frame threads up to 1080p, its AVX2 level and the
single 4K decoder thread; `bench speed` measured this machine 1-7% slower that hour than in its
committed run. The run before is in this page's git history. The swaps of
several faces do not gain from a second face worker here (their Python and small NumPy steps
hold the GIL); the landmark passes do. The machine's speed moves between runs (the 720p
decode + encode floor alone has measured 52 to 86 fps): compare ratios within one run."""

WATERMARK_TEXT = """Every output frame carries a 48-bit payload (tool, version, 32-bit job id) in its luma:
a 128x128 tile repeated over the frame (a crop keeps whole periods), carried on Fourier bins of the
tile between 0.06 and 0.20 cycles/pixel, with a sync pattern and Reed-Solomon coding (reedsolo), key
phases from SHAKE-256 of a public default key (or the user's). The decoder folds the luma onto one
tile at scales 1, 0.75, 2/3 and 0.5, finds the offset by the sync correlation and pools video frames.
The detection threshold z = 7.06 is derived (sub-Gaussian bound over every shift and scale searched)
for a false-positive rate below 1e-6 per decode; the random-key trials below check it.

Existing libraries were measured first against the same attacks (invisible-watermark 0.2.0 dwtDct
and dwtDctSvd, blind-watermark 0.4.4; see `/work/shared/notes/watermark.md` for the first
measurements): none survived crops or halving, none was within the live budget (from tens of ms to
over a second per 640x480 frame), so the mark is our own. Limits: a photo pushed through H.264 as a
single frame can lose its payload; copies resized to scales outside the four listed are not found;
a video halved and re-encoded is detected but its payload may be unreadable."""

LIVENESS_TEXT = """Photo attacks: each one-face test photo moved, tilted, turned and wobbled as a flat picture in
front of the camera, encoded with H.264 and run through the real tracker. Live faces: real
landmarks from the photos, animated with blinks and nods or turns. A video of a real person replayed
on a screen is not covered."""

WEB_TEXT = """One headless chromium with the clip as its fake camera (640x480, 30 fps), the built-in swapper,
on loopback. Glass-to-glass latency is measured from frame ids stamped into each sent frame and read
back from the returned one. `floor` runs the same path with only the label (what WebRTC itself
costs here). Target (issue 14): p95 <= 120 ms and >= 25 fps back. The fps the page counts is
bounded by chromium's fake camera here (the label-only floor reads 23-26 fps): the run before this
one (`benchmarks/results/web_run1.json`, same command, quiet machine) gave p50/p95 95/112 ms and
23.9 fps back, floor 78/79 ms and 25.5 fps."""

BATCH_TEXT = """Six 10 s 1280x720 clips, single process against Ray local (2 workers) and the process pool, best
of 2 interleaved turns; Ray's time includes starting and stopping it. The machine was shared with
other work during this run (see the JSON's load figures).

Scaling model: one core swaps about 20 fps of 720p (about 50 CPU-ms a frame), so a 16-core node
does about 300 fps. A chunk (default 60 s of video) is the unit of work; keep 4 or more chunks per
worker so the last wave costs under 25%. Every input and output passes through the driver: at
about 8 Mbit/s in and 5 Mbit/s out per real-time stream that is about 130 Mbit/s per 16-core node.
Expected: 4 nodes about 1,200 fps (driver traffic about 0.5 Gbit/s, fine on 1 GbE); 16 nodes about
4,800 fps (about 2.1 Gbit/s: needs 10 GbE at the driver, or caps near 2,300 fps); 64 nodes about
19,000 fps of compute, but the driver's network, joins and signing become the limit: inputs and
outputs should then live on shared storage with joins on the workers (not built yet)."""


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(result: dict) -> str:
    m = result["machine"]
    return f"{m['cores']} cores of an {m['cpu']}, Python {m['python']}, ONNX Runtime {m['onnxruntime']} (CPU)"


def speed_section(speed: dict) -> str:
    rows = "\n".join(f"| {stage} | {s['median_ms']:.2f} | {s['p95_ms']:.2f} |" for stage, s in speed["stages"].items())
    return f"""## Per-stage speed

```bash
swapline bench speed --source tests/data/obama.jpg --target tests/data/biden2.jpg --json benchmarks/results/speed.json
```

One 640x480 frame cut from `biden2.jpg` so the face is ~{speed["face_px"]} px wide; {speed["repeats"]} runs per
stage after 5 warm-up runs. Machine: {machine_line(speed)}.

| stage | median ms | p95 ms |
|---|---|---|
{rows}

Targets: detection <= 3 ms (met by the short-range detector, the live default; the full-range
detector, used for stills and photos with small faces, takes longer), landmarks <= 4 ms,
swap + blend <= 10 ms. Models run on one intra-op thread without spinning, so that pipeline
stages can use the other core. "swap + blend" is a still's: the swapper looks for hands around
the face itself (the palm search row); in a video or live feed the feed's HandTracker does that
every third frame and follows a hand found by its landmarks alone in between, so a frame's
swap costs the "--no-hands" row plus, on average, a third of the palm search (plus the
"followed" row per hand in front).
"""


def quality_section(quality: dict) -> str:
    sm = quality["summary"]
    rows = "\n".join(
        f"| {p['source']} | {p['target']} | {p['retrieved']} | {p['dist_source']:.3f} | {p['dist_target']:.3f} "
        f"| {p['landmark_error']:.3f} | {p['seam']:.2f} | {p['sharpness']:.2f} | {p['swap_ms']:.1f} |"
        for p in quality["pairs"]
    )
    metrics = [
        ("identity retrieval", "identity_retrieval", "{:.1%}", "100%"),
        (
            "distance to the source person's other photos",
            "mean_dist_to_source_person_other_photos",
            "{:.3f}",
            "<= 0.45",
        ),
        (
            "distance to the target person's other photos",
            "mean_dist_to_target_person_other_photos",
            "{:.3f}",
            "",
        ),
        ("distance to the source photo", "mean_dist_to_source", "{:.3f}", "<= 0.40"),
        ("distance to the target photo", "mean_dist_to_target", "{:.3f}", ""),
        ("seam score, mean", "mean_seam_score", "{:.2f}", "<= 1.1"),
        ("seam score, max", "max_seam_score", "{:.2f}", ""),
        ("sharpness ratio", "mean_sharpness_ratio", "{:.2f}", "0.7-1.4"),
        ("landmark error vs target (IOD), mean", "mean_landmark_error_iod", "{:.3f}", ""),
        ("landmark error vs target (IOD), max", "max_landmark_error_iod", "{:.3f}", ""),
        ("tone seam, median CIEDE2000", "median_tone_de2000", "{:.2f}", "(<= 3)"),
        ("tone seam, max", "max_tone_de2000", "{:.2f}", "(<= 6)"),
        ("tone seam of the untouched target itself, median", "median_tone_de2000_target_itself", "{:.2f}", ""),
        ("tone seam added by the swap, median", "median_tone_added_de2000", "{:.2f}", "<= 3"),
        ("tone seam added by the swap, max", "max_tone_added_de2000", "{:.2f}", "<= 6"),
        ("tone change at the seam (out vs target inside), median", "median_tone_change_de2000", "{:.2f}", ""),
        ("tone change at the seam, max", "max_tone_change_de2000", "{:.2f}", ""),
        ("mouth opening vs target, max diff", "max_mouth_opening_diff", "{:.3f}", "<= 0.03"),
        ("eye opening vs target, max diff", "max_eye_opening_diff", "{:.3f}", "<= 0.03"),
        ("eye opening vs target, mean diff", "mean_eye_opening_diff", "{:.3f}", ""),
        ("head pose vs target, max degrees", "max_pose_diff_deg", "{:.1f}", "<= 3"),
        ("identity-shape points moved, mean IOD", "mean_shape_move_iod", "{:.3f}", ""),
        ("swap + blend, median ms (native photo sizes)", "median_swap_ms", "{:.1f}", ""),
    ]
    variants = {"all steps": sm, **quality.get("ablation", {}), **quality.get("floors", {})}
    head = "| metric | target | " + " | ".join(variants) + " |"
    rule = "|---|---|" + "---|" * len(variants)
    table = [head, rule]
    for title, key, fmt, goal in metrics:
        cells = [fmt.format(v[key]) if v.get(key) is not None else "n/a" for v in variants.values()]
        table.append(f"| {title} | {goal} | " + " | ".join(cells) + " |")
    return f"""## Quality

```bash
swapline bench quality --faces tests/data{" --ablation" if quality.get("ablation") else ""} --json benchmarks/results/quality.json
```

{sm["pairs"]} ordered pairs of photos of different people in `tests/data` and `tests/data/dev`
({quality.get("pair_selection", "all pairs")}; identity = file name without `_<n>`; photos with
several faces are skipped). Distances are dlib ResNet descriptor distances
(same person < 0.6; two real photos of one person here: 0.27-0.45); "other photos" leaves out
the very photo that was copied from (or into). "Nearest identity" is the person whose photos
are nearest on average to the output. Landmark error: mean distance between the output's and
the target's FaceMesh points, in inter-ocular distances (IOD). Seam score: gradient energy in a
band along the face oval in the output over the same band in the target. Sharpness ratio: mean
|Laplacian| inside the face, output over target. Tone seam: CIEDE2000 between the output's skin
just inside the face oval and the target's skin just outside it, per sector, median over the
sectors. The untouched targets themselves score a median of about 5.5 on it (a face is not the
colour of its neck and hairline), so the issue's limits are read on the seam the swap *adds*:
the output's tone seam minus the target's own, at 0 when the output's is smaller (limits in
brackets: the raw measure). Expression and pose are measured on FaceMesh run again on the
output; FaceMesh reads part of the eye and mouth shape from the face's identity, so some of
these differences are the measuring model's, not the pixels'. Machine: {machine_line(quality)}.

Each "without" column (with --ablation) runs pairs with one step of the built-in swapper switched
off (`MeshSwapSettings`), so the column shows what that step buys. The two "floor" columns (with
--ablation, every step on) are what the measures read when there is nothing to find: each photo
swapped onto itself, and a person's other photo swapped onto theirs (the same identity, another
expression, pose and light). The expression and pose limits sit below the second: FaceMesh,
run again, reads that much difference between two photos of one person.

{chr(10).join(table)}

Per pair (all steps):

| source | target | nearest identity | d(out, source) | d(out, target) | landmark error | seam | sharpness | swap ms |
|---|---|---|---|---|---|---|---|---|
{rows}
"""


def latency_table(result: dict) -> str:
    lines = [
        "| layout | p50 ms | p95 ms | p99 ms | max ms | in | out | dropped | output fps | p99 per window (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layout, run in result["runs"].items():
        lat = run["latency_ms"]
        lines.append(
            f"| {layout} | {lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} | {lat['p99_ms']:.1f} | {lat['max_ms']:.1f} "
            f"| {run['frames_in']} | {run['frames_out']} | {run['dropped']} | {run['output_fps']:.1f} "
            f"| {', '.join(f'{v:.0f}' for v in run['p99_ms_by_window'])} |"
        )
    stages = result["runs"].get("split") or next(iter(result["runs"].values()))
    lines.append("")
    lines.append(
        "Per stage in the first layout (p50 / p95 ms): "
        + ", ".join(f"{stage} {h['p50_ms']:.2f} / {h['p95_ms']:.2f}" for stage, h in stages["stages_ms"].items())
    )
    if "serial_over_pipelined" in result:
        ratio = result["serial_over_pipelined"]
        lines.append("")
        lines.append(
            f"Serial baseline / pipelined (split) latency: p50 x{ratio['p50_ms']}, p95 x{ratio['p95_ms']}, "
            f"p99 x{ratio['p99_ms']}."
        )
    return "\n".join(lines)


def compose_gap_text(result: dict) -> str:
    """Issue 16: the compose stage in the pipeline against the same frames composed alone."""
    gap = result.get("compose_gap")
    if not gap:
        return ""
    live, alone = gap["live"], gap["isolated"]
    return f"""
Compose inside the split pipeline against the same {gap["frames"]} frames composed alone right after
each of {gap["rounds"]} rounds (`compose_gap`; target: within 1.3x): p50 {live["p50_ms"]:.1f} ms against
{alone["p50_ms"]:.1f} ms, **{gap["live_over_isolated"]:.2f}x** (CPU time {gap["cpu_live_over_isolated"]:.2f}x; by
round {gap["ratio_by_round"]}; waiting for a core, p50 {live["runq_p50_ms"]:.2f} ms).
"""


def latency_section(runs: dict[str, dict]) -> str:
    parts = [
        f"""## Live latency

The test clip is made from a public-domain photo (640x480, 30 fps, a ~200 px face that sways,
zooms and turns): `{CLIP}`. The clip plays at a fixed pace as a stand-in camera, through the
real pipeline, into the null sink. Layouts: `split` (default: tracking and compositing in two
threads, so frame N+1's landmarks run while frame N is composited), `single` (one processing
thread), `serial` (the baseline: every frame queued and processed in turn, no dropping).
Latency is capture time to sink. JSON keys per layout: `frames_in`, `frames_out`, `dropped`,
`drop_rate`, `output_fps`, `latency_ms` {{count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms}},
`stages_ms` {{stage: same keys}}, `p99_ms_by_window`; plus `input` and `serial_over_pipelined`.
"""
    ]
    titles = {
        "latency_30fps": ("30 fps, 30 s per layout", "--fps 30 --seconds 30"),
        "latency_stall": (
            "30 fps with a 100 ms stall every 30 frames, 60 s per layout",
            "--fps 30 --seconds 60 --stall-ms 100 --stall-every 30",
        ),
        "latency_100fps": ("100 fps (more than one core can process), 20 s per layout", "--fps 100 --seconds 20"),
    }
    for name, result in runs.items():
        title, flags = titles[name]
        parts.append(f"""### {title}

```bash
swapline bench latency --source tests/data/obama.jpg --input bench-clip.mp4 {flags} --json benchmarks/results/{name}.json
```

Machine: {machine_line(result)}.

{latency_table(result)}
{compose_gap_text(result)}""")
    parts.append("""### Reading these

- At 30 fps the whole per-frame work (~16 ms) fits in one frame period (33 ms): every layout
  meets p95 <= 40 ms, p99 <= 60 ms, 30 fps out with no drops, and the serial baseline is as
  fast as the pipeline. Bounded hand-offs matter when work exceeds the frame period.
- With 100 ms stalls, p99 stays at the stall plus a frame or two (<= 166 ms, stall + 2 frame
  periods) in every 10 s window: no growth. The split layout absorbs a stall in its queues
  (late frames, no drops); the single layout drops the backlog instead.
- At 100 fps (more than the CPU can process) the serial baseline queues every frame: its latency
  grows without bound (seconds after a few seconds). The pipeline drops stale frames and stays
  bounded. The split layout uses the second core and delivers more frames per second than the
  single layout (the committed run above; repeated runs of the same command gave 75-95 fps for
  split against 67-75 for single), at the cost of about two queued frames of latency when
  saturated. Split is the default.
""")
    return "\n".join(parts)


def video_section(video: dict) -> str:
    inp, st = video["input"], video.get("stability", {})
    stages = ", ".join(f"{k} {v:.1f}" for k, v in video["swap"]["stages_ms"].items())
    return f"""## Video files

```bash
swapline bench clip --photo tests/data/biden2.jpg --out bench-720p.mp4 --size 1280x720 --face-px 260 --seconds 10 --audio-hz 440
swapline bench video --source tests/data/obama.jpg --input bench-720p.mp4 --still tests/data/biden2.jpg --json benchmarks/results/video_720p.json
```

{inp["width"]}x{inp["height"]} at {inp["fps"]:g} fps, {inp["frames"]} frames, one face, x264 preset {inp["preset"]}, crf {inp["crf"]},
with an AAC track. Machine: {machine_line(video)}.

| run | seconds | fps |
|---|---|---|
| swap: the whole job (decode, track, swap, label, encode, join with audio) | {video["swap"]["seconds"]:.2f} | {video["swap"]["fps"]:.1f} |
| floor: decode + encode with the same settings, no processing | {video["floor"]["seconds"]:.2f} | {video["floor"]["fps"]:.1f} |

Swap time / floor time: **{video["swap_over_floor"]:.2f}x** (target <= 2.0x); swap throughput
{video["swap"]["fps"]:.1f} fps (target >= 30). CPU time per frame, summed over threads (ms): {stages}.

Stability ({st.get("clip", "n/a")}): mean frame-to-frame landmark movement measured by FaceMesh
on the input {st.get("input_jitter_px", float("nan")):.3f} px, on the output {st.get("output_jitter_px", float("nan")):.3f} px
(target: output <= input + 0.5 px). The swap uses One Euro-filtered landmarks, so the pasted face
is steadier than the raw landmarks.
"""


def neural_section(neural: dict) -> str:
    rows = "\n".join(f"| {k} | {v['median_ms']:.2f} | {v['max_ms']:.2f} |" for k, v in neural["stages_ms"].items())
    return f"""## Neural path (stand-in generator)

```bash
swapline bench neural --source tests/data/obama.jpg --target tests/data/biden2.jpg --frames 5 --json benchmarks/results/neural_cpu.json
```

The generator is a stand-in with inswapper_128's inputs and outputs and about its compute
({neural["generator_gflops"]} GFLOPs per frame: nine 3x3 convolutions of 256 channels at 128x128),
random weights, built at run time (no download). One 640x480 frame, one face, {neural["frames"]}
frames, provider {neural["provider"]}, all cores for the generator. Machine: {machine_line(neural)}.

| stage | median ms | max ms |
|---|---|---|
{rows}

Source registration (ArcFace stand-in + latent, once per source): {neural["source_registration_ms"]:.1f} ms.
On this 2-core CPU the generator is the whole cost: a neural swapper is an offline (video file)
tool here, not a live one; live mode uses the mesh swapper. The same bench on a GPU is in
"Neural path on a GPU" below.
"""


def _load_path(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "not met"


def _best_fp16(generator: dict) -> float:
    """The fastest float16 generator median of a gpu.sh generator.json."""
    return min(r["median_ms"] for r in generator["runs"] if r.get("precision") == "fp16" and "median_ms" in r)


def gpu_section() -> str | None:
    """Issue 11's GPU figures: benchmarks/gpu.sh's newest folder (a lent H200), with the earlier H100 runs."""
    folder = RESULTS / "gpu_h200"
    h100 = _load_path(RESULTS / "gpu_h100" / "neural_cuda.json")
    h100_live = _load_path(RESULTS / "gpu_h100" / "latency_cuda.json")
    h100_generator = _load_path(RESULTS / "gpu_h100" / "generator.json")
    info, generator = _load_path(folder / "info.json"), _load_path(folder / "generator.json")
    nhwc, nchw = _load_path(folder / "neural_cuda.json"), _load_path(folder / "neural_cuda_nchw.json")
    live = _load_path(folder / "latency_cuda.json")
    if not (info and generator and nhwc and nchw and live):
        return None
    before = RESULTS / "gpu_h100_history" / "run1_before"
    old_neural, old_generator = _load_path(before / "neural_cuda.json"), _load_path(before / "generator.json")
    auto = (folder / "auto_providers.log").read_text() if (folder / "auto_providers.log").exists() else ""
    ep_lines = sum(1 for line in auto.splitlines() if "EP Error" in line or "libnvinfer" in line)
    m = nhwc["machine"]
    best = min(
        (r for r in generator["runs"] if r.get("precision") == "fp16" and r.get("cuda_nhwc")),
        key=lambda r: r["median_ms"],
    )
    stages = nhwc["stages_ms"]
    split, serial = live["runs"]["split"]["latency_ms"], live["runs"]["serial"]["latency_ms"]
    sweep = "\n".join(
        f"| {r['precision']} | {'NHWC' if r['cuda_nhwc'] else 'NCHW'} | {r['cudnn_conv_algo_search']} "
        f"| {'on' if r['io_binding'] else 'off'} | {r['median_ms']:.3f} | {r['p95_ms']:.3f} | {r['host_ms']:.3f} |"
        for r in generator["runs"]
        if "median_ms" in r
    )
    both = "\n".join(
        f"| {stage} | {nhwc['stages_ms'][stage]['median_ms']:.2f} | {nchw['stages_ms'][stage]['median_ms']:.2f} |"
        for stage in nhwc["stages_ms"]
    )
    previous = ""
    last = RESULTS / "gpu_h200_history" / "s10_hands"
    last_neural, last_generator = _load_path(last / "neural_cuda.json"), _load_path(last / "generator.json")
    last_live = _load_path(last / "latency_cuda.json")
    if last_neural and last_generator and last_live:
        last_fp16 = _best_fp16(last_generator)
        runs = last_live["runs"]
        previous += (
            "This run is of the code with the model inputs made in one pass per channel "
            "(`runtime/tensors.planar`) and the still detector's any-size pass on CUDA without a timed "
            "convolution search (the change after it, that pass on the CPU, is measured in the registration "
            "table below). The H200 run before it (`gpu_h200_history/s10_hands`, another machine of the same "
            f"kind) measured the generator at {last_fp16:.2f} ms, one face end to end at "
            f"{last_neural['stages_ms']['end to end']['median_ms']:.2f} ms, source registration "
            f"{last_neural['source_registration_ms']:.0f} ms, live p99 {runs['split']['latency_ms']['p99_ms']:.1f} / "
            f"{runs['serial']['latency_ms']['p99_ms']:.1f} ms. The generator's own time moved from "
            f"{last_fp16:.2f} to {best['median_ms']:.2f} ms between the two runs, on two machines (host_ms "
            "below: the crop's conversion to the tensor and back); not explained by a committed run. "
        )
    if h100 and h100_live and h100_generator:
        h100_fp16 = _best_fp16(h100_generator)
        h100_runs = h100_live["runs"]
        previous += (
            "The hand step (the live feed's `HandTracker`, the session's palm search on stills; both models "
            "on CUDA too: `hands` rows) came between these runs and the last on a lent H100 "
            "(`benchmarks/results/gpu_h100`; another card, so not an A/B), which measured the "
            f"generator at {h100_fp16:.2f} ms, one face end to end at "
            f"{h100['stages_ms']['end to end']['median_ms']:.2f} ms (swap {h100['stages_ms']['swap']['median_ms']:.2f}), "
            f"and live p99 {h100_runs['split']['latency_ms']['p99_ms']:.1f} / "
            f"{h100_runs['serial']['latency_ms']['p99_ms']:.1f} ms, max {h100_runs['split']['latency_ms']['max_ms']:.1f} / "
            f"{h100_runs['serial']['latency_ms']['max_ms']:.1f} ms."
        )
    old = ""
    if old_neural and old_generator:
        old_fp16 = min(r["median_ms"] for r in old_generator["runs"] if r["precision"] == "fp16")
        old = (
            f"The first H100 run, before the two changes below, measured the fp16 generator at "
            f"{old_fp16:.2f} ms and one frame end to end at {old_neural['stages_ms']['end to end']['median_ms']:.2f} ms "
            f"(fp32 stand-in, `benchmarks/results/gpu_h100_history/run1_before`; an H100)."
        )
    return f"""## Neural path on a GPU

```bash
bash benchmarks/gpu.sh OUT   # on the GPU machine; ../shared/gpu/README.md brings onnxruntime-gpu there
```

Card: **{info["gpu"].split(", ")[0]}** ({", driver ".join(info["gpu"].split(", ")[1:])}), onnxruntime-gpu {info["onnxruntime"]} (CUDA 13, cuDNN 9; TensorRT listed
by the build, its libraries absent: `tensorrt_loadable` {str(info["tensorrt_loadable"]).lower()}), Python {m["python"]},
{m["cores"]} cores of an {m["cpu"]}. Stand-in generator ({nhwc["generator_gflops"]} GFLOPs, inswapper_128's
signature, random weights) in its float16 twin, as the registry loads inswapper_128_fp16 on a GPU.

| issue 11 target | limit | measured | |
|---|---|---|---|
| generator, fp16 (crop to tensor, run, tensor to image) | <= 0.8 ms | {best["median_ms"]:.2f} ms | {_verdict(best["median_ms"], 0.8)} |
| one face end to end (`bench neural`, median) | <= 5 ms | {stages["end to end"]["median_ms"]:.2f} ms | {_verdict(stages["end to end"]["median_ms"], 5)} |
| "EP Error" lines with TensorRT listed but not installed | none | {ep_lines} | {_verdict(ep_lines, 0)} |
| live, 30 fps clip, neural swapper: p99 | <= 12 ms | {split["p99_ms"]:.1f} (split) / {serial["p99_ms"]:.1f} (serial) ms | {_verdict(max(split["p99_ms"], serial["p99_ms"]), 12)} |
| same, max | <= 40 ms | {split["max_ms"]:.1f} / {serial["max_ms"]:.1f} ms | {_verdict(max(split["max_ms"], serial["max_ms"]), 40)} |

{previous}

{old.strip()} Two changes since: the crop's conversion to the model's
tensor and back was five numpy passes each way (0.43-0.71 ms on that CPU, host_ms below): it is now
one `cv2.dnn.blobFromImage` and one merge with a saturating scale (0.07-0.11 ms). NHWC convolutions
(`prefer_nhwc`) speed the fp16 generator up by about a quarter but slowed the small BlazeFace and
FaceMesh models from about 1.8 to 2.8 ms each (`gpu_h100_history/run3_nhwc_every_model`), so only
generators ask for NHWC (`RuntimeSettings.cuda_nhwc`, `--cuda-nchw` to turn it off). A CUDA graph
for the generator was tried and dropped (`gpu_h100_history/run2_cuda_graph`): no gain (fp16 1.48
against 1.28 ms; 1.16 against 1.07 with NHWC), and in the split pipeline another thread's CUDA work
invalidated the capture.

Generator alone (`InswapperSwapper.generate`, {generator["frames"]} frames; host_ms: the crop's conversion
to the tensor and back):

| precision | layout | cuDNN search | IO binding | median ms | p95 ms | host ms |
|---|---|---|---|---|---|---|
{sweep}

`bench neural` per stage, generator in NHWC (default) and NCHW (`--cuda-nchw`), medians in ms:

| stage | NHWC | NCHW |
|---|---|---|
{both}

Model load {nhwc["model_load_ms"]:.0f} ms, warm-up {nhwc["warm_up_ms"]:.0f} ms (CUDA and cuDNN set-up, before the
first frame), source registration {nhwc["source_registration_ms"]:.0f} ms.

{registration_text(folder)}

Live pipeline, 30 fps clip, stand-in fp16 generator, every model on CUDA:

{latency_table(live)}

The live p99 stays above 12 ms and has not been stable between runs: on the H100, the third run
(same code but NHWC for every model) measured p99 {_p99(RESULTS / "gpu_h100_history" / "run3_nhwc_every_model")} and the last
{_p99(RESULTS / "gpu_h100")}; this H200 run {split["p99_ms"]:.1f} / {serial["p99_ms"]:.1f} ms, its maximum
within the 40 ms limit since the live feed runs the re-detection aside and warms every model
(hands too) before the first frame. The stage p95s (detect and landmarks 4-5 ms against 2-3 ms
medians) still point at the host side (Python threads, GPU launch queues shared by the models).
"""


def registration_text(folder: Path) -> str:
    """benchmarks/gpu_registration.py: what a still at a new photo size costs on the GPU."""
    result = _load_path(folder / "registration.json")
    if not result:
        return ""
    names = {
        ("EXHAUSTIVE", "EXHAUSTIVE"): "CUDA, timed search everywhere (before)",
        ("EXHAUSTIVE", "HEURISTIC"): "CUDA, any-size pass untimed",
        ("HEURISTIC", "HEURISTIC"): "CUDA, untimed everywhere",
        ("EXHAUSTIVE", "CPU"): "any-size pass on the CPU (now)",
    }
    rows = []
    for run in result["variants"]:
        reg = " / ".join(f"{r['ms']:.0f}" for r in run["register_source"])
        still = " / ".join(f"{r['ms']:.0f}" for r in run["find_faces_still"])
        name = names.get((run["fixed_shape_search"], run["varying_shape_search"]), "?")
        rows.append(f"| {name} | {run['warm_up_ms']:.0f} | {reg} | {still} |")
    photos = ", ".join(r["photo"].split("/")[-1] + f" {r['size']}" for r in result["variants"][0]["register_source"])
    sizes = ", ".join(r["size"] for r in result["variants"][0]["find_faces_still"])
    table = "\n".join(rows)
    return f"""Source registration on the GPU (`python3 benchmarks/gpu_registration.py OUT.json`, each row a fresh
process; ms). The still detector's finer pass runs one any-size model over the photo, so every new
photo size is a new input shape; on CUDA each new shape cost 0.55-2.6 s, up to 1 s of it the timed
cuDNN search. Photos {photos} (the last two too small for the finer pass); still detection on
biden2 resized to {sizes}:

| any-size pass | warm-up | register each photo | find faces, each size |
|---|---|---|---|
{table}

So the any-size pass now runs on the CPU beside a GPU (`RuntimeSettings.varying_shapes_on_cpu`): a
still costs 20-30 ms to detect at any new size instead of up to 2.6 s, and a repeated size ~15 ms
more than on CUDA with its shape cached (11-14 ms)."""


def _p99(folder: Path) -> str:
    result = _load_path(folder / "latency_cuda.json")
    if not result:
        return "n/a"
    runs = result["runs"]
    return f"{runs['split']['latency_ms']['p99_ms']:.1f} / {runs['serial']['latency_ms']['p99_ms']:.1f} ms"


def markdown(items: list) -> str:
    """The bench package's rich tables (and lines) as markdown, so this page shows what the command printed."""
    parts = []
    for item in items:
        if isinstance(item, str):
            parts.append(item)
            continue
        headers = [str(c.header) for c in item.columns]
        cells = [[str(cell) for cell in c.cells] for c in item.columns]
        rows = ["| " + " | ".join(row) + " |" for row in zip(*cells, strict=True)]
        title = f"**{item.title}**\n\n" if item.title else ""
        head = "| " + " | ".join(headers) + " |\n|" + "---|" * len(headers)
        parts.append(title + head + "\n" + "\n".join(rows))
    return "\n\n".join(parts)


def bench_section(title: str, command: str, result: dict, tables: list, text: str = "") -> str:
    return f"""## {title}

```bash
{command}
```

Machine: {machine_line(result)}.{(chr(10) + chr(10) + text) if text else ""}

{markdown(tables)}
"""


def engine_ab_section() -> str | None:
    """Issue 9's refactor against the commit before it, interleaved on one machine (noise ~10%)."""
    folder = RESULTS / "engine_refactor_ab"
    if not folder.is_dir():
        return None
    rows = []
    for layout in ("split", "single"):
        for metric in ("p50_ms", "p95_ms"):
            values = {}
            for side in ("base", "cur"):
                runs = [json.loads(p.read_text()) for p in sorted(folder.glob(f"ab_{side}_*.json"))]
                values[side] = sum(r["runs"][layout]["latency_ms"][metric] for r in runs) / len(runs)
            rows.append(f"| live {layout} {metric} | {values['base']:.1f} | {values['cur']:.1f} |")
    video = {side: json.loads((folder / f"video_720p_{side}.json").read_text()) for side in ("base", "cur")}
    rows.append(f"| video 720p swap/floor | {video['base']['swap_over_floor']} | {video['cur']['swap_over_floor']} |")
    return f"""## The one-engine refactor, before and after

The same benchmark commands run against the commit before the refactor (base) and after it
(cur), alternating on one machine (two 20 s latency runs each, layouts split and single; one
video run each). Run-to-run noise on this shared 2-core machine is about 10%. Raw results:
`benchmarks/results/engine_refactor_ab/`.

| measure | base | cur |
|---|---|---|
{chr(10).join(rows)}
"""


def host_scale_section() -> str | None:
    """bench scale on a lent GPU machine's 16 CPU cores: threads against compose processes."""
    folder = RESULTS / "gpu_h200_host_scale"
    result = _load_path(folder / "scale.json")
    hands = _load_path(RESULTS / "gpu_h200_host_scale_hands" / "scale.json")
    before = _load_path(RESULTS / "gpu_h200_host_scale_shm" / "scale.json")
    if result is None or hands is None or before is None:
        return None

    def fps(run: dict, table: str, threads: bool) -> str:
        rows = run[table] if threads else run["in_processes"][table]
        return " / ".join(f"{row['fps']:.1f}" for row in rows)

    def rss(run: dict) -> str:
        row = run["in_processes"]["frame_size"][-1]
        return f"{row['peak_rss_mb']:.0f} MB (each worker up to {row['worker_peak_rss_mb']:.0f})"

    from swapline.bench.scale import scale_tables

    text = (
        """`swapline bench scale` on a lent GPU machine's CPUs (16 cores; no GPU used), with the video
jobs run a second time composing in 8 worker processes (`VideoOptions.processes`, `swap
--processes 8`; frames travel through shared memory). The first run on 16 cores
(`gpu_h100_host_scale`, an H100 host) showed that compose threads in one process do not add up:
1 / 2 / 4 / 8 faces per 720p frame at 39 / 21 / 13 / 7.7 fps, falling with the face count as on
2 cores: much of the swap's Python and small NumPy work holds the GIL (a py-spy --gil profile on
the 2-core machine, not a committed run). The run before the hand step (`gpu_h200_host_scale_shm`)
took 1 / 2 / 4 / 8 faces from """
        + fps(before, "faces_per_frame", True)
        + " fps with threads to "
        + fps(before, "faces_per_frame", False)
        + """ in processes; the first with the hand step (`gpu_h200_host_scale_hands`) """
        + fps(hands, "faces_per_frame", True)
        + " and "
        + fps(hands, "faces_per_frame", False)
        + """. Below, the code of that round (before x264's frame threads and the single 4K decoder thread; one palm search a frame
for all faces, faces shared among the face workers as they go, model inputs in one pass per
channel; an H200 host): """
        + fps(result, "faces_per_frame", True)
        + " fps with threads, "
        + fps(result, "faces_per_frame", False)
        + """ in processes. A first run of the same
code on another machine of the kind (its tables in `gpu_h200/run.log`) read 50.2 / 26.6 / 15.3 / 8.5
and 35.3 / 25.8 / 18.6 / 14.4. The process rows include starting the 8 workers (each loads the
models) within each 6 s clip, which is why 1 and 2 faces and the frame-size rows read slower
there. Issue 16's 25 fps with 8 faces is not reached: with compose out of the way, the 8 faces'
landmark passes on the tracking thread are next. Peak RSS in the process rows is the main
process's; each worker's is in the JSON (`worker_peak_rss_mb`, an upper bound). The 4K job in
processes peaked at """
        + rss(result)
        + " (the first run of this code: the same within 1 MB; with the hand step "
        + rss(hands)
        + "; before it "
        + rss(before)
        + """): reproduced, not explained. The ring of shared frames (9 slots of a
4K frame and its encoder picture, 37 MB each: 336 MB, every page touched by the main process and
so in its RSS) was already there in the run before the hand step, so it does not account for the
rise by itself; the threaded 4K job stays near 650 MB."""
    )
    return bench_section(
        "Scale on 16 cores (a lent GPU machine's CPUs)",
        "bash benchmarks/gpu_host_scale.sh OUT  # swapline bench scale ... --processes 8",
        result,
        scale_tables(result)[3:],
        text,
    )


def main() -> None:
    sections = [
        """# Benchmarks

Every figure here was printed by a committed command on the project's reference machine kind
(2 CPU cores, 24 GB, no GPU). Raw results, with the machine description, are in
`benchmarks/results/`; this page is rendered from them by `python benchmarks/render.py`.
"""
    ]
    if speed := load("speed"):
        sections.append(speed_section(speed))
    if quality := load("quality"):
        sections.append(quality_section(quality))
    if video := load("video_720p"):
        sections.append(video_section(video))
    if neural := load("neural_cpu"):
        sections.append(neural_section(neural))
    if gpu := gpu_section():
        sections.append(gpu)
    latency = {n: r for n in ("latency_30fps", "latency_stall", "latency_100fps") if (r := load(n))}
    if latency:
        sections.append(latency_section(latency))
    if ab := engine_ab_section():
        sections.append(ab)
    extra = [
        (
            "scale",
            "Cost by face size and image size",
            "swapline bench scale --source tests/data/obama.jpg --target tests/data/biden2.jpg --json benchmarks/results/scale.json",
            "swapline.bench.scale",
            "scale_tables",
            SCALE_TEXT,
        ),
        (
            "watermark",
            "Invisible mark",
            "swapline bench watermark --photos tests/data/obama.jpg tests/data/biden2.jpg tests/data/astronaut.png --clip-photo tests/data/obama.jpg --json benchmarks/results/watermark.json",
            "swapline.bench.watermark",
            "watermark_tables",
            WATERMARK_TEXT,
        ),
        (
            "liveness",
            "Liveness",
            "swapline bench liveness --faces tests/data --json benchmarks/results/liveness.json",
            "swapline.bench.liveness",
            "liveness_tables",
            LIVENESS_TEXT,
        ),
        (
            "web",
            "Browser app (WebRTC, headless chromium)",
            "swapline bench web --source tests/data/obama.jpg --input clip5.mp4 --peers 1 --seconds 20 --floor --json benchmarks/results/web.json",
            "swapline.bench.web",
            "web_tables",
            WEB_TEXT,
        ),
        (
            "batch",
            "Batch jobs (Ray local vs one process)",
            "swapline bench batch --source tests/data/obama.jpg --photo tests/data/biden2.jpg --photo tests/data/obama2.jpg --clips 6 --seconds 10 --runs single,ray,pool --repeats 2 --json benchmarks/results/batch.json",
            "swapline.bench.batch",
            "batch_tables",
            BATCH_TEXT,
        ),
    ]
    for name, title, command, module, function, text in extra:
        if result := load(name):
            import importlib

            tables = getattr(importlib.import_module(module), function)(result)
            sections.append(bench_section(title, command, result, tables, text))
        if name == "scale" and (host := host_scale_section()):
            sections.append(host)
    (ROOT / "BENCHMARKS.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
