"""Blend masks on the face crop: face oval, feathered, with the inner mouth kept from the target."""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4


def _poly(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points * (1 << _SHIFT)).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    return mask


def _odd(value: float) -> int:
    return max(1, int(value) // 2 * 2 + 1)


def feathered_face_mask(oval: np.ndarray, shape: tuple[int, int], face_size: float, feather: float) -> np.ndarray:
    """float32 mask in [0, 1]: the oval shrunk a little, then blurred so its edge fades out.

    Made on a quarter-size grid and scaled up: it is smooth by construction, and a large blur
    at full size would cost more than the rest of the blend.
    """
    scale = 0.25 if min(shape) >= 64 else 1.0
    small = (max(4, round(shape[0] * scale)), max(4, round(shape[1] * scale)))
    mask = _poly(small, oval * scale)
    shrink = _odd(face_size * feather * 0.6 * scale)
    if shrink > 1:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (shrink, shrink)))
    sigma = max(0.7, face_size * feather * 0.5 * scale)
    mask = cv2.GaussianBlur(mask.astype(np.float32) * (1.0 / 255.0), (0, 0), sigma)
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def mouth_mask(inner_lips: np.ndarray, shape: tuple[int, int], face_size: float) -> np.ndarray:
    """float32 mask of the open mouth (teeth, tongue), slightly grown and softened."""
    mask = _poly(shape, inner_lips)
    grow = _odd(face_size * 0.02)
    if grow > 1:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, face_size * 0.01)).astype(np.float32) * (1.0 / 255.0)
