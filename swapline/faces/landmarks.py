"""FaceMesh: 468 landmarks inside a rotated square region of interest (ROI).

The ROI comes from a detection (box, rotated by the eye line) on the first frame and from the
previous frame's landmarks afterwards, both enlarged 1.5x around the face as MediaPipe does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.topology import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from swapline.models import builtin_model_path
from swapline.runtime import SessionFactory, shared_sessions
from swapline.runtime.tensors import planar

INPUT_SIZE = 192
ROI_SCALE = 1.5


@dataclass(frozen=True)
class Roi:
    """A rotated square: centre (x, y) in pixels, side in pixels, angle of its x axis (radians)."""

    cx: float
    cy: float
    side: float
    angle: float

    def crop_matrix(self, size: int = INPUT_SIZE) -> np.ndarray:
        """2x3 affine taking image pixels into the size x size crop."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = size / self.side
        # rotate by -angle around the centre, scale, move centre to the crop centre
        return np.array(
            [
                [c * k, s * k, size / 2 - k * (c * self.cx + s * self.cy)],
                [-s * k, c * k, size / 2 - k * (-s * self.cx + c * self.cy)],
            ],
            np.float32,
        )


def _eye_angle(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    d = left_eye - right_eye
    return math.atan2(float(d[1]), float(d[0]))


def roi_from_detection(face: Face) -> Roi:
    angle = _eye_angle(face.keypoints[0], face.keypoints[1])
    cx, cy = face.center
    return Roi(float(cx), float(cy), max(face.width, face.height) * ROI_SCALE, angle)


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """The next frame's ROI: landmark extent measured along the eye line, enlarged."""
    angle = _eye_angle(landmarks[RIGHT_EYE_OUTER, :2], landmarks[LEFT_EYE_OUTER, :2])
    c, s = math.cos(angle), math.sin(angle)
    xy = landmarks[:, :2]
    u = xy[:, 0] * c + xy[:, 1] * s
    v = -xy[:, 0] * s + xy[:, 1] * c
    mu, mv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = max(u.max() - u.min(), v.max() - v.min()) * ROI_SCALE
    return Roi(float(mu * c - mv * s), float(mu * s + mv * c), float(side), angle)


class FaceMeshLandmarker:
    """Runs FaceMesh on an ROI; returns landmarks in image pixels and the face-presence score."""

    def __init__(self, sessions: SessionFactory | None = None):
        self.session = (sessions or shared_sessions()).load(builtin_model_path("face_landmark"))
        self.input_name = self.session.get_inputs()[0].name

    def run(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        matrix = roi.crop_matrix()
        crop = cv2.warpAffine(
            image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        tensor = planar(crop, 1.0 / 255.0)
        outputs = self.session.run(None, {self.input_name: tensor})
        points, flag = sorted(outputs, key=lambda a: a.size, reverse=True)
        points = points.reshape(-1, 3)
        presence = float(1.0 / (1.0 + math.exp(-float(flag.reshape(-1)[0]))))
        # crop pixels -> image pixels; z shares the x scale (MediaPipe's convention)
        inverse = cv2.invertAffineTransform(matrix)
        xy = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        z = points[:, 2:3] * (roi.side / INPUT_SIZE)
        return np.concatenate([xy, z], axis=1).astype(np.float32), presence

    def refine(self, image: np.ndarray, face: Face, roi: Roi | None = None) -> Face:
        landmarks, presence = self.run(image, roi or roi_from_detection(face))
        return face.replace(landmarks=landmarks, presence=presence)
