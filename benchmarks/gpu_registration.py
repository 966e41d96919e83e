"""Source registration and still detection on a GPU, by cuDNN convolution search: what the first
still at a new photo size costs. The H200 run of benchmarks/gpu.sh measured 1341 ms to register
the source (62 ms on the H100 before it): the still detector's any-size pass meets a new input
shape with every photo, and an EXHAUSTIVE search times every convolution algorithm per new shape.

    python3 benchmarks/gpu_registration.py OUT.json     # on the GPU machine (onnxruntime-gpu)

Each variant runs in a fresh process. Set VARIANTS=k,l to run some of them only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

PHOTOS = ["obama.jpg", "obama.jpg", "biden2.jpg", "dev/grace_hopper_1.jpg", "astronaut.png"]
STILL_SIZES = [(1280, 720), (1280, 720), (1920, 1080), (3840, 2160), (2000, 1500)]
# (search for fixed-shape models, for the any-size pass); "CPU": the any-size pass on the CPU
VARIANTS = [
    ("EXHAUSTIVE", "EXHAUSTIVE"),
    ("EXHAUSTIVE", "HEURISTIC"),
    ("HEURISTIC", "HEURISTIC"),
    ("EXHAUSTIVE", "CPU"),
]


def one_variant(fixed: str, varying: str) -> dict:
    import cv2

    from swapline.io import read_image
    from swapline.runtime import RuntimeSettings
    from swapline.session import SwapSession
    from swapline.settings import SwapSettings

    data = Path(__file__).resolve().parent.parent / "tests" / "data"
    on_cpu = varying == "CPU"
    runtime = RuntimeSettings(
        cudnn_conv_algo_search=fixed,
        varying_shapes_on_cpu=on_cpu,
        cudnn_search_varying_shapes="HEURISTIC" if on_cpu else varying,
    )
    start = time.perf_counter()
    session = SwapSession(SwapSettings(runtime=runtime))
    load_ms = (time.perf_counter() - start) * 1000.0
    start = time.perf_counter()
    session.warm_up()
    warm_ms = (time.perf_counter() - start) * 1000.0
    register = []
    for name in PHOTOS:
        image = read_image(data / name).pixels
        start = time.perf_counter()
        session.register_source(image, name)
        register.append(
            {
                "photo": name,
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "ms": round((time.perf_counter() - start) * 1000.0, 1),
            }
        )
    photo = read_image(data / "biden2.jpg").pixels
    detect = []
    for width, height in STILL_SIZES:
        image = cv2.resize(photo, (width, height))
        start = time.perf_counter()
        faces = session.find_faces(image)
        detect.append(
            {"size": f"{width}x{height}", "faces": len(faces), "ms": round((time.perf_counter() - start) * 1000.0, 1)}
        )
    return {
        "fixed_shape_search": fixed,
        "varying_shape_search": varying,
        "provider": session.landmarker.session.get_providers()[0],
        "session_ms": round(load_ms, 1),
        "warm_up_ms": round(warm_ms, 1),
        "register_source": register,
        "find_faces_still": detect,
    }


def main() -> None:
    if len(sys.argv) == 4:
        print(json.dumps(one_variant(sys.argv[2], sys.argv[3])))
        return
    out = Path(sys.argv[1])
    results = []
    chosen = os.environ.get("VARIANTS")
    picked = [VARIANTS[int(k)] for k in chosen.split(",")] if chosen else VARIANTS
    for fixed, varying in picked:
        run = subprocess.run(
            [sys.executable, __file__, "--variant", fixed, varying], capture_output=True, text=True, timeout=300
        )
        if run.returncode:
            results.append(
                {
                    "fixed_shape_search": fixed,
                    "varying_shape_search": varying,
                    "error": run.stderr.strip().splitlines()[-1:],
                }
            )
            continue
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    out.write_text(json.dumps({"variants": results}, indent=1))


if __name__ == "__main__":
    main()
