"""`swapline bench neural`: per-stage and end-to-end latency of the neural swap path.

Uses the stand-in generator (inswapper_128's signature and ~174 GFLOPs, random weights), so it
runs anywhere without downloads; the timings are what a real inswapper_128 costs on the same
execution provider, give or take the architecture's efficiency. The frames go through the same
SwapSession as every mode (its face stream, compose and label), with the chosen providers
reaching every model.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from swapline.bench.report import make_table
from swapline.bench.speed import landmark_box, make_frame
from swapline.bench.standin import generator_flops, to_fp16, write_standin_arcface, write_standin_generator
from swapline.io import read_image
from swapline.runtime import RuntimeSettings, SessionFactory
from swapline.session import SwapSession
from swapline.settings import ModelChoices, SwapSettings
from swapline.swap.neural import ArcFaceEncoder, InswapperSwapper


def _stats(samples: list[float]) -> dict:
    return {"median_ms": round(float(np.median(samples)), 2), "max_ms": round(float(np.max(samples)), 2)}


def run_neural_bench(
    source: Path, target: Path, frames: int = 5, providers: tuple[str, ...] | None = None, cuda_nhwc: bool = True
) -> dict:
    # the generator is the only heavy stage: all cores
    runtime = RuntimeSettings(intra_op_threads=0, cuda_nhwc=cuda_nhwc)
    if providers is not None:
        runtime = replace(runtime, providers=providers)
    with tempfile.TemporaryDirectory() as tmp:
        generator_path = write_standin_generator(Path(tmp) / "standin_inswapper_128.onnx")
        if SessionFactory(runtime).fp16:  # a GPU: the registry would load inswapper_128's float16 twin
            generator_path = to_fp16(generator_path, Path(tmp) / "standin_inswapper_128_fp16.onnx")
        arcface_path = write_standin_arcface(Path(tmp) / "standin_arcface.onnx")
        models = ModelChoices(detector="short", swapper=str(generator_path), encoder=str(arcface_path), offline=True)
        start = time.perf_counter()
        session = SwapSession(SwapSettings(models=models, runtime=runtime))
        load_ms = (time.perf_counter() - start) * 1000.0
        # the generator alone, on the session's own (cached) model sessions
        generator = InswapperSwapper(
            generator_path,
            ArcFaceEncoder(arcface_path, session.store, session.sessions),
            session.store,
            session.sessions,
        )
        provider = generator.model.session.get_providers()[0]
        start = time.perf_counter()
        session.warm_up()
        warm_ms = (time.perf_counter() - start) * 1000.0
        source_image = read_image(source).pixels
        start = time.perf_counter()
        registered = session.register_source(source_image, str(source))
        register_ms = (time.perf_counter() - start) * 1000.0
        target_image = read_image(target).pixels
        frame = make_frame(target_image, landmark_box(session.find_faces(target_image)[0]))
        stream = session.stream()
        samples: dict[str, list[float]] = {}
        for index in range(frames):
            work = frame.copy()
            timings: dict[str, float] = {}
            begin = time.perf_counter()
            faces = stream.update(work, index / 30.0, timings)
            session.compose(work, faces, registered, timings=timings)
            timings["end to end"] = (time.perf_counter() - begin) * 1000.0
            crop = np.ascontiguousarray(work[:128, :128])
            start = time.perf_counter()
            generator.generate(crop, registered)
            timings["generator alone"] = (time.perf_counter() - start) * 1000.0
            for stage, ms in timings.items():
                samples.setdefault(stage, []).append(ms)
    return {
        "generator": "stand-in with inswapper_128's signature, random weights",
        "generator_gflops": round(generator_flops() / 1e9, 1),
        "provider": provider,
        "precision": "fp16" if generator_path.name.endswith("_fp16.onnx") else "fp32",
        "cuda_nhwc": cuda_nhwc,
        "frames": frames,
        "model_load_ms": round(load_ms, 2),
        "warm_up_ms": round(warm_ms, 2),
        "source_registration_ms": round(register_ms, 2),
        "stages_ms": {k: _stats(v) for k, v in samples.items()},
    }


def neural_tables(result: dict) -> list:
    rows = [[stage, s["median_ms"], s["max_ms"]] for stage, s in result["stages_ms"].items()]
    title = f"neural path, stand-in generator ({result['generator_gflops']} GFLOPs) on {result['provider']}"
    once = (
        f"once: models {result['model_load_ms']} ms, warm-up {result['warm_up_ms']} ms, "
        f"source registration {result['source_registration_ms']} ms"
    )
    return [make_table(title, ["stage", "median ms", "max ms"], rows), once]
