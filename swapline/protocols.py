"""What each kind of model must offer; the session and the tracker depend on these, not on classes.

A new detector, landmarker, encoder, swapper or enhancer only has to match its protocol here
(InsightFace's model_zoo idea: one small class per model kind).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from swapline.faces.face import Face


class Detector(Protocol):
    """Finds faces (box, keypoints, score) in a BGR frame, largest first."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


class Landmarker(Protocol):
    """Fits dense landmarks to a face, or to the region a tracked face is expected in."""

    def run(self, image: np.ndarray, roi: Any) -> tuple[np.ndarray, float]: ...  # (468, 3) points, presence

    def refine(self, image: np.ndarray, face: Face, roi: Any = None) -> Face: ...


class IdentityEncoder(Protocol):
    """A descriptor of who a face is; distances between descriptors compare people."""

    def encode(self, image: np.ndarray, face: Face) -> np.ndarray: ...


class Swapper(Protocol):
    """Registers a source face once, then replaces target faces in frames, in place."""

    name: str

    def register(self, image: np.ndarray, face: Face) -> Any: ...

    def swap(self, frame: np.ndarray, face: Face, source: Any) -> bool: ...


class Enhancer(Protocol):
    """Restores detail on a face that was just swapped, in place."""

    name: str

    def enhance(self, frame: np.ndarray, face: Face) -> bool: ...


class MaskProvider(Protocol):
    """Where a face is visible: 1 where a swap may replace pixels, 0 where something covers it."""

    name: str

    def crop_mask(self, crop: np.ndarray) -> np.ndarray: ...

    def mask(self, frame: np.ndarray, face: Face) -> np.ndarray: ...
