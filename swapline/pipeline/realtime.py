"""Assembles the live pipeline from settings: tracker and swapper stages, label, governors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from swapline.errors import SwaplineError
from swapline.faces import (
    AnalyserSettings,
    DetectorSettings,
    FaceAnalyser,
    FaceMeshLandmarker,
    FaceTracker,
    TrackerSettings,
)
from swapline.faces.landmarks import Roi
from swapline.pipeline.components import ModelChoices, build_detector, build_swapper, make_store
from swapline.pipeline.live import LivePipeline, LiveSettings, Sink, Source
from swapline.pipeline.rate import AdaptiveRate, AdaptiveRateSettings
from swapline.pipeline.stages import ComposeStage, SequentialStages, StallStage, TrackStage
from swapline.pipeline.thermal import ThermalGovernor, ThermalSettings, read_cpu_temperature
from swapline.runtime import RuntimeSettings, SessionFactory, shared_sessions
from swapline.swap import MeshSwapSettings
from swapline.trust import LabelSettings, LabelStamp


@dataclass(frozen=True)
class RealtimeSettings:
    live: LiveSettings = field(default_factory=LiveSettings)
    # BlazeFace parameters; which detector runs is models.detector (short range: selfie distance,
    # 1.8 ms; the tracker calls it only when tracking is lost).
    detector: DetectorSettings = field(default_factory=lambda: DetectorSettings(range="short"))
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    swapper: MeshSwapSettings = field(default_factory=MeshSwapSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    rate: AdaptiveRateSettings = field(default_factory=AdaptiveRateSettings)
    thermal: ThermalSettings = field(default_factory=ThermalSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    models: ModelChoices = field(default_factory=lambda: ModelChoices(detector="short"))
    # Track and compose in two threads, so frame N+1's landmarks run while frame N is composited.
    split_stages: bool = True
    stall_ms: float = 0.0  # benchmark hiccup: the compose stage sleeps this long...
    stall_every: int = 30  # ...every this many frames


def register_source_face(image: np.ndarray, name: str, swapper, sessions: SessionFactory):
    """The largest face of the source photo, registered once for the whole session."""
    faces = FaceAnalyser(AnalyserSettings(), sessions).faces(image)
    if not faces:
        raise SwaplineError(f"{name}: no face found in the source image")
    return swapper.register(image, faces[0])


def build_swappers(settings: RealtimeSettings, sessions: SessionFactory) -> tuple:
    """(normal, thermal light mode) swappers; for the mesh swapper light mode skips lighting."""
    store = make_store(settings.models)
    swapper = build_swapper(settings.models, settings.swapper, store, sessions)
    if settings.models.swapper != "mesh":
        return swapper, swapper
    light = build_swapper(settings.models, replace(settings.swapper, match_lighting=False), store, sessions)
    return swapper, light


def build_stages(
    registered, settings: RealtimeSettings, sessions: SessionFactory, swappers: tuple, sensor=read_cpu_temperature
) -> list:
    governor = ThermalGovernor(settings.thermal, sensor)
    detector = build_detector(settings.models, settings.detector, make_store(settings.models), sessions)
    tracker = FaceTracker(detector, FaceMeshLandmarker(sessions), settings.tracker)
    # First ONNX Runtime calls allocate and plan: do them now, not on the first live frame.
    blank = np.zeros((480, 640, 3), np.uint8)
    tracker.detector.detect(blank)
    tracker.landmarker.run(blank, Roi(320.0, 240.0, 200.0, 0.0))
    track = TrackStage(tracker, AdaptiveRate(settings.rate), governor)
    compose = ComposeStage(
        swappers[0],
        swappers[1],  # thermal light mode
        registered,
        LabelStamp(settings.label),
        governor,
    )
    if settings.stall_ms > 0:
        compose = StallStage(compose, settings.stall_ms, settings.stall_every)
    if settings.split_stages:
        return [track, compose]
    return [SequentialStages("process", [track, compose])]


def build_live_pipeline(
    source_image: np.ndarray,
    source_name: str,
    frames: Source,
    sink: Sink,
    settings: RealtimeSettings | None = None,
    sensor=read_cpu_temperature,
) -> LivePipeline:
    settings = settings or RealtimeSettings()
    sessions = shared_sessions(settings.runtime)
    swappers = build_swappers(settings, sessions)
    registered = register_source_face(source_image, source_name, swappers[0], sessions)
    return LivePipeline(frames, build_stages(registered, settings, sessions, swappers, sensor), sink, settings.live)
