"""The face-swap engine: a source face registered once, then applied to any number of frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swapline.errors import SwaplineError
from swapline.faces import AnalyserSettings, FaceAnalyser
from swapline.faces.face import Face
from swapline.pipeline.components import ModelChoices, build_detector, build_swapper, make_store
from swapline.pipeline.timing import StageTimer
from swapline.runtime import RuntimeSettings, SessionFactory, shared_sessions
from swapline.swap import MeshSwapSettings
from swapline.trust import LabelSettings, LabelStamp

FACE_CHOICES = ("all", "largest")


@dataclass(frozen=True)
class EngineSettings:
    analyser: AnalyserSettings = field(default_factory=AnalyserSettings)
    swapper: MeshSwapSettings = field(default_factory=MeshSwapSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    faces: str = "all"  # which target faces to replace: "all" or "largest"
    models: ModelChoices = field(default_factory=ModelChoices)


@dataclass
class FrameResult:
    faces_found: int
    faces_swapped: int
    faces: list[Face]


class SwapEngine:
    """Python API for still images and single frames (video and live build on it)."""

    def __init__(self, settings: EngineSettings | None = None, sessions: SessionFactory | None = None):
        self.settings = settings or EngineSettings()
        if self.settings.faces not in FACE_CHOICES:
            raise SwaplineError(f"faces must be one of {', '.join(FACE_CHOICES)}, not {self.settings.faces!r}")
        sessions = sessions or shared_sessions(self.settings.runtime)
        store = make_store(self.settings.models)
        detector = build_detector(self.settings.models, self.settings.analyser.detector, store, sessions)
        self.analyser = FaceAnalyser(self.settings.analyser, sessions, detector)
        self.swapper = build_swapper(self.settings.models, self.settings.swapper, store, sessions)
        self.label = LabelStamp(self.settings.label)

    def register_source(self, image: np.ndarray, name: str = "source"):
        """Find the largest face in the source image and prepare it for swapping."""
        faces = self.analyser.faces(image)
        if not faces:
            raise SwaplineError(f"{name}: no face found in the source image")
        return self.swapper.register(image, faces[0])

    def swap_frame(
        self,
        frame: np.ndarray,
        source,
        timer: StageTimer | None = None,
        alpha: np.ndarray | None = None,
    ) -> FrameResult:
        """Swap faces in frame (in place) and stamp the label. The label is never skipped."""
        timer = timer or StageTimer()
        with timer.stage("detect+landmarks"):
            faces = self.analyser.faces(frame)
        chosen = faces[:1] if self.settings.faces == "largest" else faces
        swapped = 0
        with timer.stage("swap"):
            for face in chosen:
                swapped += self.swapper.swap(frame, face, source)
        with timer.stage("label"):
            self.label.apply(frame, alpha)
        return FrameResult(faces_found=len(faces), faces_swapped=swapped, faces=faces)
