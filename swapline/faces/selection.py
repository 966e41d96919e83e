"""Which faces get swapped: one selector for stills, video and live (all, largest, reference)."""

from __future__ import annotations

import numpy as np

from swapline.faces.face import Face
from swapline.protocols import IdentityEncoder


class ReferenceMatcher:
    """Is this face the reference person? Decided once per track in streams, per face in stills."""

    def __init__(self, encoder: IdentityEncoder, descriptor: np.ndarray, threshold: float):
        self.encoder = encoder
        self.descriptor = descriptor
        self.threshold = threshold
        self.decisions: dict[int, bool] = {}
        self.encodings = 0

    def matches(self, image: np.ndarray, face: Face) -> bool:
        decision = self.decisions.get(face.track_id) if face.track_id is not None else None
        if decision is None:
            self.encodings += 1
            distance = float(np.linalg.norm(self.encoder.encode(image, face) - self.descriptor))
            decision = distance < self.threshold
            if face.track_id is not None:
                self.decisions[face.track_id] = decision
        return decision

    def fresh(self) -> ReferenceMatcher:
        """The same reference with no remembered decisions (one per stream)."""
        return ReferenceMatcher(self.encoder, self.descriptor, self.threshold)

    def reset(self) -> None:
        self.decisions.clear()


class FaceSelector:
    """Picks the faces to swap from the faces found, by the session's FaceSelection mode."""

    def __init__(self, mode: str, max_faces: int | None, matcher: ReferenceMatcher | None = None):
        self.mode = mode
        self.max_faces = max_faces
        self.matcher = matcher

    def select(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        if self.mode == "largest":
            return sorted(faces, key=lambda f: f.area, reverse=True)[:1]
        if self.mode == "reference" and self.matcher is not None:
            return [f for f in faces if self.matcher.matches(image, f)][: self.max_faces]
        return faces[: self.max_faces]

    def reset(self) -> None:
        if self.matcher is not None:
            self.matcher.reset()
