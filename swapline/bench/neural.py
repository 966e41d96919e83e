"""`swapline bench neural`: per-stage and end-to-end latency of the neural swap path.

Uses the stand-in generator (inswapper_128's signature and ~174 GFLOPs, random weights), so it
runs anywhere without downloads; the timings are what a real inswapper_128 costs on the same
execution provider, give or take the architecture's efficiency.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from swapline.bench.speed import make_frame
from swapline.bench.standin import generator_flops, write_standin_arcface, write_standin_generator
from swapline.faces import BlazeFaceDetector, DetectorSettings, FaceAnalyser, FaceMeshLandmarker
from swapline.faces.landmarks import roi_from_landmarks
from swapline.io import read_image
from swapline.models.store import ModelStore
from swapline.pipeline.timing import StageTimer
from swapline.runtime import RuntimeSettings, SessionFactory
from swapline.swap.align import five_points, inner_mouth, paste_back, warp_face
from swapline.swap.neural import ArcFaceEncoder, InswapperSwapper
from swapline.trust import LabelStamp


def run_neural_bench(source: Path, target: Path, frames: int = 5, providers: tuple[str, ...] | None = None) -> dict:
    settings = (
        RuntimeSettings(intra_op_threads=0)
        if providers is None
        else RuntimeSettings(providers=providers, intra_op_threads=0)
    )
    sessions = SessionFactory(settings)  # generator: all cores (it is the only heavy stage)
    store = ModelStore(offline=True)
    with tempfile.TemporaryDirectory() as tmp:
        generator_path = write_standin_generator(Path(tmp) / "standin_inswapper_128.onnx")
        arcface_path = write_standin_arcface(Path(tmp) / "standin_arcface.onnx")
        encoder = ArcFaceEncoder(arcface_path, store, sessions)
        swapper = InswapperSwapper(generator_path, encoder, store, sessions)
        provider = swapper.model.session.get_providers()[0]
        analyser = FaceAnalyser()
        source_image = read_image(source).pixels
        start = time.perf_counter()
        registered = swapper.register(source_image, analyser.faces(source_image)[0])
        register_ms = (time.perf_counter() - start) * 1000.0
        target_image = read_image(target).pixels
        frame = make_frame(target_image, analyser.faces(target_image)[0].box)
        detector = BlazeFaceDetector(DetectorSettings(range="short"))
        landmarker = FaceMeshLandmarker()
        label = LabelStamp()
        samples: dict[str, list[float]] = {}
        swapper.generate(np.zeros((128, 128, 3), np.uint8), registered)  # warm-up
        face = None
        for _ in range(frames):
            work = frame.copy()
            timer = StageTimer()
            begin = time.perf_counter()
            with timer.stage("detect"):
                found = detector.detect(work)
            with timer.stage("landmarks"):
                roi = roi_from_landmarks(face.landmarks) if face is not None else None
                face = landmarker.refine(work, found[0], roi)
            with timer.stage("align"):
                crop, matrix = warp_face(work, five_points(face), "arcface_128_v2", 128)
            with timer.stage("generator"):
                output = swapper.generate(crop, registered)
            with timer.stage("paste back"):
                paste_back(work, output, matrix, swapper.mask, inner_mouth(face))
            with timer.stage("label"):
                label.apply(work)
            timer.ms["end to end"] = (time.perf_counter() - begin) * 1000.0
            for stage, ms in timer.ms.items():
                samples.setdefault(stage, []).append(ms)
    return {
        "generator": "stand-in with inswapper_128's signature, random weights",
        "generator_gflops": round(generator_flops() / 1e9, 1),
        "provider": provider,
        "frames": frames,
        "source_registration_ms": round(register_ms, 2),
        "stages_ms": {
            k: {"median_ms": round(float(np.median(v)), 2), "max_ms": round(float(np.max(v)), 2)}
            for k, v in samples.items()
        },
    }
