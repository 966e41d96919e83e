"""Downloadable face detectors with 5 keypoints: SCRFD (InsightFace) and YOLOv8-face.

Both see the image letterboxed into 640x640 (scaled to fit, padded right and bottom) and return
Faces with 5 keypoints (eyes, nose, mouth corners), which FaceMesh then refines. The letterbox,
the mapping back and the suppression of overlapping boxes follow InsightFace's SCRFD exactly
(tests/test_conformance.py runs both on the same model and photo): the fitted side is truncated
with int(), boxes go back through new_height / image_height, and overlapping boxes are dropped
(hard NMS), keeping the highest score, ties in model output order.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.models.loading import OnnxModel
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit size x size (top left, black padding) and the factor that maps
    letterbox pixels back to the image (divide by it)."""
    h, w = image.shape[:2]
    if h > w:
        new_h, new_w = size, max(1, int(size / (h / w)))
    else:
        new_w, new_h = size, max(1, int(size * (h / w)))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, new_h / h


def hard_nms(boxes: np.ndarray, scores: np.ndarray, iou: float, inclusive: bool) -> np.ndarray:
    """Indices of the boxes kept, best first: each box whose overlap with a better kept box exceeds
    `iou` is dropped (ties keep the model's order). inclusive: x2, y2 are the last pixel inside the
    box (InsightFace's convention: widths are x2 - x1 + 1)."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    extra = 1.0 if inclusive else 0.0
    rects = np.concatenate([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2] + extra], axis=1).astype(np.float64)
    kept = cv2.dnn.NMSBoxes(rects, scores.astype(np.float32), 0.0, iou)
    return np.asarray(kept, np.int64).reshape(-1)


def _faces(boxes, keypoints, scores, iou: float, max_faces: int, inclusive: bool) -> list[Face]:
    keep = hard_nms(boxes, scores, iou, inclusive)
    faces = [Face(box=boxes[i], score=float(scores[i]), keypoints=keypoints[i]) for i in keep]
    faces.sort(key=lambda f: f.area, reverse=True)  # stable: equal areas stay best first
    return faces[:max_faces]


@functools.cache
def _anchor_centers(height: int, width: int, stride: int, per_cell: int) -> np.ndarray:
    ys, xs = np.mgrid[: height // stride, : width // stride]
    centers = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
    return np.repeat(centers, per_cell, axis=0)


class _LetterboxDetector:
    """Shared set-up: the registry model (or a local file of its kind) and the thresholds."""

    registry_name = ""

    def __init__(
        self,
        model: str | Path | None = None,
        store: ModelStore | None = None,
        sessions: SessionFactory | None = None,
        score_threshold: float = 0.5,
        nms_iou: float = 0.4,
        max_faces: int = 16,
    ):
        self.model = OnnxModel(model or self.registry_name, self.registry_name, store, sessions)
        self.size = self.model.spec.crop_size
        self.score_threshold, self.nms_iou, self.max_faces = score_threshold, nms_iou, max_faces


class ScrfdDetector(_LetterboxDetector):
    """SCRFD: per stride (8, 16, 32), 2 anchors per cell, distances to the box sides and keypoints."""

    registry_name = "scrfd_2.5g"
    strides = (8, 16, 32)

    def detect(self, image: np.ndarray) -> list[Face]:
        canvas, scale = letterbox(image, self.size)
        outputs = self.model.session.run(None, {self.model.input_names[0]: self.model.to_tensor(canvas)})
        outputs = [o[0] if o.ndim == 3 else o for o in outputs]  # batched exports add a leading 1
        boxes, keypoints, scores = [], [], []
        for level, stride in enumerate(self.strides):
            score = outputs[level][:, 0]
            keep = score >= self.score_threshold
            if not np.any(keep):
                continue
            centers = _anchor_centers(self.size, self.size, stride, 2)[keep]
            distances = outputs[level + 3][keep] * stride
            offsets = outputs[level + 6][keep].reshape(-1, 5, 2) * stride
            boxes.append(np.concatenate([centers - distances[:, :2], centers + distances[:, 2:]], axis=1))
            keypoints.append(centers[:, None, :] + offsets)
            scores.append(score[keep])
        if not scores:
            return []
        return _faces(
            np.concatenate(boxes) / scale,
            np.concatenate(keypoints) / scale,
            np.concatenate(scores),
            self.nms_iou,
            self.max_faces,
            inclusive=True,
        )


class YoloFaceDetector(_LetterboxDetector):
    """YOLOv8-face: 8400 candidates of (cx, cy, w, h, score, 5 x (x, y, visibility)) in input pixels."""

    registry_name = "yoloface_8n"

    def detect(self, image: np.ndarray) -> list[Face]:
        canvas, scale = letterbox(image, self.size)
        (output,) = self.model.session.run(None, {self.model.input_names[0]: self.model.to_tensor(canvas)})
        rows = output[0].T  # (8400, 20)
        keep = rows[:, 4] >= self.score_threshold
        rows = rows[keep]
        if len(rows) == 0:
            return []
        cxcy, half = rows[:, 0:2], rows[:, 2:4] / 2
        boxes = np.concatenate([cxcy - half, cxcy + half], axis=1)
        keypoints = rows[:, 5:20].reshape(-1, 5, 3)[:, :, :2]
        return _faces(boxes / scale, keypoints / scale, rows[:, 4], self.nms_iou, self.max_faces, inclusive=False)
