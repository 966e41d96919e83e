"""Still images: detect every face, then fit landmarks to each."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swapline.faces.detector import BlazeFaceDetector, DetectorSettings
from swapline.faces.face import Face
from swapline.faces.landmarks import FaceMeshLandmarker
from swapline.runtime import SessionFactory


@dataclass(frozen=True)
class AnalyserSettings:
    detector: DetectorSettings = field(default_factory=lambda: DetectorSettings(fine_pass=True))
    # FaceMesh's face-presence score rejects detector false positives (a watch, a pattern).
    presence_threshold: float = 0.5


class FaceAnalyser:
    """Faces with landmarks, largest first."""

    def __init__(self, settings: AnalyserSettings | None = None, sessions: SessionFactory | None = None, detector=None):
        self.settings = settings or AnalyserSettings()
        self.detector = detector or BlazeFaceDetector(settings=self.settings.detector, sessions=sessions)
        self.landmarker = FaceMeshLandmarker(sessions)

    def faces(self, image: np.ndarray) -> list[Face]:
        found = []
        for face in self.detector.detect(image):
            refined = self.landmarker.refine(image, face)
            if refined.presence >= self.settings.presence_threshold:
                found.append(refined)
        return found
