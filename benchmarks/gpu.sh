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
#   generator.json         the generator alone: fp32 and fp16 stand-ins, IO binding off and on, and on
#                          CUDA the cuDNN conv search EXHAUSTIVE against HEURISTIC
#   latency_<device>.json  `swapline bench latency`: the live pipeline on a clip with the stand-in generator
#   clip.mp4, models/      the clip and the stand-in models used
#
# On the GPU machines (see ../shared/gpu/README.md): they have CUDA, cuDNN, PyTorch and numpy but no
# onnxruntime-gpu and reach no registry. Prepare here with
#   bash ../shared/gpu/prepare-ort-gpu.sh platformdirs rich fonttools filelock
# and send opencv-python-headless and av (binary cp312 manylinux wheels) in .gpu/wheels in transfers of
# their own; then on the machine: `. .gpu/unpack.sh && bash benchmarks/gpu.sh $OUT`.
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
need = ["numpy", "cv2", "onnx", "onnxruntime", "rich", "fontTools", "av", "requests", "platformdirs", "filelock", "PIL"]
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

step "generator alone: fp32 / fp16, IO binding off / on"
"$PY" - "$OUT" "$DEVICE" "$FRAMES" <<'PY'
"""Time the generator alone through InswapperSwapper.generate (what compose runs per face)."""
import json, sys, time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from swapline.bench.standin import generator_flops, write_standin_arcface, write_standin_generator
from swapline.faces import FaceAnalyser
from swapline.io import read_image
from swapline.models.store import ModelStore
from swapline.runtime import RuntimeSettings, SessionFactory
from swapline.swap.neural import ArcFaceEncoder, InswapperSwapper

out, device, frames = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
models = out / "models"


def to_fp16(src: Path, dst: Path) -> Path:
    """float16 weights, float32 inputs and outputs (like a keep-io-types conversion): Casts at both ends."""
    model = onnx.load(str(src))
    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name != "emap":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:  # consumers of the graph inputs read the cast copies
        node.input[:] = [f"{n}_fp16" if n in ("target", "source") else n for n in node.input]
        node.output[:] = ["output_fp16" if n == "output" else n for n in node.output]
    casts = [helper.make_node("Cast", [n], [f"{n}_fp16"], to=TensorProto.FLOAT16) for n in ("target", "source")]
    graph.node.insert(0, casts[1])
    graph.node.insert(0, casts[0])
    graph.node.append(helper.make_node("Cast", ["output_fp16"], ["output"], to=TensorProto.FLOAT))
    onnx.save(model, str(dst))
    return dst


arcface = write_standin_arcface(models / "standin_arcface.onnx")
fp32 = write_standin_generator(models / "standin_inswapper_128.onnx")
write_standin_generator(models / "standin_small_inswapper_128.onnx", channels=32, blocks=2)  # CPU smoke clip
variants = {"fp32": fp32}
if device != "cpu":  # float16 is a GPU format: on the CPU it only adds casts (and smoke-test time)
    variants["fp16"] = to_fp16(fp32, models / "standin_inswapper_128_fp16.onnx")
providers = ("CPUExecutionProvider",) if device == "cpu" else ("CUDAExecutionProvider", "CPUExecutionProvider")
searches = ["EXHAUSTIVE"] if device == "cpu" else ["EXHAUSTIVE", "HEURISTIC"]

store = ModelStore(home=out, offline=True)
source_image = read_image(Path("tests/data/obama.jpg")).pixels
crop = np.ascontiguousarray(read_image(Path("tests/data/biden2.jpg")).pixels[200:328, 330:458])
face = FaceAnalyser().faces(source_image)[0]
runs = []
for precision, path in variants.items():
    for search in searches:
        for binding in (False, True):
            settings = RuntimeSettings(providers=providers, intra_op_threads=0, io_binding=binding,
                                       cudnn_conv_algo_search=search, prefer_fp16=False)
            sessions = SessionFactory(settings)
            swapper = InswapperSwapper(path, ArcFaceEncoder(arcface, store, sessions), store, sessions)
            source = swapper.register(source_image, face)
            start = time.perf_counter()
            swapper.generate(crop, source)  # first run: allocation, cuDNN search, CUDA set-up
            first_ms = (time.perf_counter() - start) * 1000
            samples = []
            for _ in range(frames):
                start = time.perf_counter()
                swapper.generate(crop, source)
                samples.append((time.perf_counter() - start) * 1000)
            run = {"precision": precision, "cudnn_conv_algo_search": search, "io_binding_asked": binding,
                   "io_binding": swapper.io_binding,
                   "provider": swapper.model.session.get_providers()[0], "first_ms": round(first_ms, 2),
                   "median_ms": round(float(np.median(samples)), 3), "p95_ms": round(float(np.percentile(samples, 95)), 3)}
            runs.append(run)
            print(json.dumps(run), file=sys.stderr)
result = {"generator": "stand-in with inswapper_128's signature, random weights",
          "gflops": round(generator_flops() / 1e9, 1), "frames": frames, "runs": runs}
(out / "generator.json").write_text(json.dumps(result, indent=2) + "\n")
PY

step "live pipeline on a clip, stand-in generator"
GENERATOR=$OUT/models/standin_inswapper_128.onnx
[[ $DEVICE == cpu ]] && GENERATOR=$OUT/models/standin_small_inswapper_128.onnx
"$PY" -m swapline bench clip --photo "$TARGET" --out "$OUT/clip.mp4" --seconds 4 --fps 30 >&2
"$PY" -m swapline bench latency --source "$SOURCE" --input "$OUT/clip.mp4" --seconds "$SECONDS_PER_LAYOUT" \
  --layouts split,serial --detector short --swapper "$GENERATOR" --encoder "$OUT/models/standin_arcface.onnx" \
  --offline --device "$DEVICE" --json "$OUT/latency_$DEVICE.json"

step "done: $(ls "$OUT" | tr '\n' ' ')"
