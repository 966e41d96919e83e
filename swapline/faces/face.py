"""The Face record passed between stages."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# BlazeFace keypoint order (the subject's right eye appears on the image's left).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True, eq=False)
class Face:
    """One face in one image, in that image's pixel coordinates.

    box: x1, y1, x2, y2. keypoints: (6, 2), see KEYPOINT_NAMES. landmarks: (468, 3) FaceMesh
    points (x, y in pixels, z in pixels relative to the face centre, smaller is nearer).
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    presence: float | None = None
    embedding: np.ndarray | None = None
    track_id: int | None = None  # set by the tracker: the same id while a face stays tracked
    # hands in front of or near the face, (21, 2) landmarks each, set by a feed's HandTracker;
    # None: not looked for (the built-in swapper then looks itself)
    hands: tuple[np.ndarray, ...] | None = None
    # the skin's colour over a feed's frames, (4, 3): Lab mean, then covariance, set by a feed's
    # SkinTracker; None: a still (the built-in swapper samples it on the frame)
    skin: np.ndarray | None = None

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)

    def replace(self, **changes) -> Face:
        return dataclasses.replace(self, **changes)
