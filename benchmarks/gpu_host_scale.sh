#!/usr/bin/env bash
# `swapline bench scale` on a lent GPU machine's CPUs (16 cores there against 2 here): does the
# per-face work of a frame spread over more cores? CPU only: onnxruntime's CPU build is on those
# machines; PyAV, platformdirs and reedsolo are not, so their wheels travel in .gpu/wheels:
#
#   run(carry=[".gpu/wheels"], command="bash benchmarks/gpu_host_scale.sh $OUT")
#
# With --processes 8 the video jobs run again composing in 8 worker processes (VideoOptions.processes).
# Writes scale.json, scale.txt (the tables) and host.txt (cores, CPU model, versions) into $1.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_host_scale.sh OUT_DIR}
mkdir -p "$OUT" "$HOME/site"
python3 -m pip install -q --no-index --no-deps --target "$HOME/site" .gpu/wheels/*.whl 2>&1 | tail -2
export PYTHONPATH=$HOME/site:$PWD PYTHONUNBUFFERED=1
{ nproc; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Socket"; python3 -V
  python3 -c "import numpy, cv2, av, onnxruntime as o; print('numpy', numpy.__version__, 'cv2', cv2.__version__, 'av', av.__version__, 'ort', o.__version__)"
} > "$OUT/host.txt" 2>&1
cat "$OUT/host.txt"
timeout "${LIMIT:-420}" python3 -m swapline bench scale --source tests/data/obama.jpg --target tests/data/biden2.jpg \
  --processes "${PROCESSES:-8}" --json "$OUT/scale.json" > "$OUT/scale.txt" 2>&1
echo "exit $?" >> "$OUT/scale.txt"
tail -60 "$OUT/scale.txt"
