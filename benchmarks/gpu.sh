#!/usr/bin/env bash
# The neural path on a GPU, in one run: every figure as JSON in the folder given as $1.
#
#   bash benchmarks/gpu.sh OUT_DIR                    # on the GPU machine (DEVICE=cuda)
#   DEVICE=cpu FRAMES=2 SECONDS=2 bash benchmarks/gpu.sh OUT_DIR   # smoke test anywhere
#
# What it writes:
#   info.json              onnxruntime version, providers offered, TensorRT loadable, GPU name
#   neural_<set>.json      `swapline bench neural` (stand-in generator, whole session) per provider set:
#                          cuda, tensorrt (only when TensorRT's libraries load), or cpu
#   neural_cuda_nchw.json  the same with NCHW convolutions (--cuda-nchw; NHWC is the default on CUDA)
#   generator.json         the generator alone: fp32 and fp16 stand-ins, IO binding off and on, and on
#                          CUDA the cuDNN conv search EXHAUSTIVE against HEURISTIC and NHWC against NCHW
#                          convolutions; host_ms: the crop's conversion to the tensor and back
#   latency_<device>.json  `swapline bench latency`: the live pipeline on a clip with the stand-in generator
#   auto_providers.log     everything `bench neural` prints with the default providers (no "EP Error" block
#                          may appear when TensorRT is listed but not installed)
#   clip.mp4, models/      the clip and the stand-in models used
#
# On the GPU machines (see ../shared/gpu/README.md): they have CUDA, cuDNN, PyTorch, numpy, OpenCV,
# rich, fonttools, filelock and onnx, but no onnxruntime-gpu, platformdirs, reedsolo or PyAV, and
# reach no registry. What worked on the lent H100 (2026-11-26): here,
#   bash ../shared/gpu/prepare-ort-gpu.sh platformdirs reedsolo
# then re-split the chunks so that one chunk plus this working tree fits a transfer (64 MiB; the
# tree was ~14 MB, then 17.6 MB: 50 MB chunks, then 41 MB), put PyAV's cp312 manylinux wheel into
# .gpu/wheels, send each chunk in a call of its own (`cp .gpu/cN ~/ort-parts/`), the wheels in one
# more (`cp .gpu/wheels/*.whl ~/wheels/`) when they no longer fit beside the last chunk, and in the
# last call SHA256 + unpack.sh: copy the wheels back into .gpu/wheels, `. .gpu/unpack.sh && bash
# benchmarks/gpu.sh $OUT` (5-7 calls, ~4 minutes of device time with a short run).
set -euo pipefail

OUT=${1:?usage: bash benchmarks/gpu.sh OUT_DIR  (env: DEVICE=cuda|cpu FRAMES=N SECONDS=S PYTHON=python3)}
DEVICE=${DEVICE:-cuda}
FRAMES=${FRAMES:-50}
SECONDS_PER_LAYOUT=${SECONDS:-10}
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT/models"
OUT=$(cd "$OUT" && pwd)  # resolved from where the script was called
cd "$ROOT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
SOURCE=tests/data/obama.jpg
TARGET=tests/data/biden2.jpg

missing=$("$PY" - <<'PY'
import importlib.util
need = ["numpy", "cv2", "onnx", "onnxruntime", "rich", "fontTools", "av", "requests", "platformdirs", "filelock", "PIL",
        "reedsolo"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)
if [[ -n $missing ]]; then
  echo "gpu.sh: missing Python modules: $missing (see the notes at the top of this script)" >&2
  exit 3
fi

step() { echo "== $*" >&2; }

step "environment"
"$PY" - "$OUT" "$DEVICE" <<'PY'
import json, shutil, subprocess, sys
import onnxruntime as ort
from swapline.runtime import tensorrt_loadable
out, device = sys.argv[1], sys.argv[2]
gpu = None
if shutil.which("nvidia-smi"):
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
info = {"device": device, "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
        "tensorrt_loadable": tensorrt_loadable(), "gpu": gpu}
json.dump(info, open(f"{out}/info.json", "w"), indent=2)
print(json.dumps(info), file=sys.stderr)
PY

case $DEVICE in
  cpu) SETS=("cpu:CPUExecutionProvider") ;;
  cuda)
    SETS=("cuda:CUDAExecutionProvider,CPUExecutionProvider")
    if "$PY" -c "import onnxruntime as o, sys; from swapline.runtime import tensorrt_loadable as t; \
sys.exit(0 if 'TensorrtExecutionProvider' in o.get_available_providers() and t() else 1)"; then
      SETS+=("tensorrt:TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider")
    fi ;;
  *) echo "gpu.sh: DEVICE must be cuda or cpu, not $DEVICE" >&2; exit 2 ;;
esac

for set in "${SETS[@]}"; do
  name=${set%%:*}
  step "bench neural on $name"
  "$PY" -m swapline bench neural --source "$SOURCE" --target "$TARGET" --frames "$FRAMES" \
    --providers "${set#*:}" --json "$OUT/neural_$name.json"
done
if [[ $DEVICE == cuda ]]; then
  step "bench neural on cuda, NCHW convolutions"
  "$PY" -m swapline bench neural --source "$SOURCE" --target "$TARGET" --frames "$FRAMES" --cuda-nchw \
    --providers CUDAExecutionProvider,CPUExecutionProvider --json "$OUT/neural_cuda_nchw.json"
fi

step "generator alone: fp32 / fp16, IO binding off / on"
"$PY" - "$OUT" "$DEVICE" "$FRAMES" <<'PY'
"""Time the generator alone through InswapperSwapper.generate (what compose runs per face)."""
import json, sys, time
from pathlib import Path

import numpy as np

from swapline.bench.standin import generator_flops, to_fp16, write_standin_arcface, write_standin_generator
from swapline.faces import FaceAnalyser
from swapline.io import read_image
from swapline.models.store import ModelStore
from swapline.runtime import RuntimeSettings, SessionFactory
from swapline.swap.neural import ArcFaceEncoder, InswapperSwapper, _to_image

out, device, frames = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
models = out / "models"


arcface = write_standin_arcface(models / "standin_arcface.onnx")
fp32 = write_standin_generator(models / "standin_inswapper_128.onnx")
write_standin_generator(models / "standin_small_inswapper_128.onnx", channels=32, blocks=2)  # CPU smoke clip
variants = {"fp32": fp32}
if device != "cpu":  # float16 is a GPU format: on the CPU it only adds casts (and smoke-test time)
    variants["fp16"] = to_fp16(fp32, models / "standin_inswapper_128_fp16.onnx")
providers = ("CPUExecutionProvider",) if device == "cpu" else ("CUDAExecutionProvider", "CPUExecutionProvider")
# (precision, cuDNN search, IO binding, NHWC convolutions)
if device == "cpu":
    configs = [("fp32", "EXHAUSTIVE", False, False), ("fp32", "EXHAUSTIVE", True, False)]
else:
    configs = [(p, s, b, n) for p in variants for n in (True, False) for s in ("EXHAUSTIVE", "HEURISTIC")
               for b in (False, True)]

store = ModelStore(home=out, offline=True)
source_image = read_image(Path("tests/data/obama.jpg")).pixels
crop = np.ascontiguousarray(read_image(Path("tests/data/biden2.jpg")).pixels[200:328, 330:458])
face = FaceAnalyser().faces(source_image)[0]
runs = []
for precision, search, binding, nhwc in configs:
    settings = RuntimeSettings(providers=providers, intra_op_threads=0, io_binding=binding, cuda_nhwc=nhwc,
                               cudnn_conv_algo_search=search, prefer_fp16=False)
    sessions = SessionFactory(settings)
    swapper = InswapperSwapper(variants[precision], ArcFaceEncoder(arcface, store, sessions), store, sessions)
    source = swapper.register(source_image, face)
    start = time.perf_counter()
    try:
        swapper.generate(crop, source)  # first run: allocation, cuDNN search, CUDA set-up
    except Exception as exc:  # one configuration failing must not lose the others' figures
        runs.append({"precision": precision, "cuda_nhwc": nhwc, "error": str(exc)[:300]})
        print(runs[-1], file=sys.stderr)
        continue
    first_ms = (time.perf_counter() - start) * 1000
    samples, host = [], []
    for _ in range(frames):
        start = time.perf_counter()
        swapper.generate(crop, source)
        samples.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        _to_image(swapper.model.to_tensor(crop)[:, :3], 0.0, 1.0)
        host.append((time.perf_counter() - start) * 1000)
    run = {"precision": precision, "cudnn_conv_algo_search": search, "io_binding_asked": binding,
           "io_binding": swapper.io_binding, "cuda_nhwc": nhwc,
           "provider": swapper.model.session.get_providers()[0], "first_ms": round(first_ms, 2),
           "median_ms": round(float(np.median(samples)), 3), "p95_ms": round(float(np.percentile(samples, 95)), 3),
           "host_ms": round(float(np.median(host)), 3)}
    runs.append(run)
    print(json.dumps(run), file=sys.stderr)
result = {"generator": "stand-in with inswapper_128's signature, random weights",
          "gflops": round(generator_flops() / 1e9, 1), "frames": frames, "runs": runs}
(out / "generator.json").write_text(json.dumps(result, indent=2) + "\n")
PY

step "live pipeline on a clip, stand-in generator"
GENERATOR=$OUT/models/standin_inswapper_128_fp16.onnx  # on a GPU the registry loads the float16 twin
[[ $DEVICE == cpu ]] && GENERATOR=$OUT/models/standin_small_inswapper_128.onnx
"$PY" -m swapline bench clip --photo "$TARGET" --out "$OUT/clip.mp4" --seconds 4 --fps 30 >&2
"$PY" -m swapline bench latency --source "$SOURCE" --input "$OUT/clip.mp4" --seconds "$SECONDS_PER_LAYOUT" \
  --layouts split,serial --detector short --swapper "$GENERATOR" --encoder "$OUT/models/standin_arcface.onnx" \
  --offline --device "$DEVICE" --json "$OUT/latency_$DEVICE.json"

step "default providers, as a user gets them (TensorRT first where listed): every line printed"
"$PY" -m swapline bench neural --source "$SOURCE" --target "$TARGET" --frames 20 > "$OUT/auto_providers.log" 2>&1 || true
step "EP error lines: $(grep -c -i -E 'EP Error|libnvinfer' "$OUT/auto_providers.log" || true)"

step "done: $(ls "$OUT" | tr '\n' ' ')"
