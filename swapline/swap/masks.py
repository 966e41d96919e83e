"""Blend masks on the face crop: face oval, feathered, with the inner mouth kept from the target."""

from __future__ import annotations

import math

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
    """float32 mask of the open mouth (teeth, tongue), slightly grown and softened.

    Drawn, grown and blurred only in a window around the lips (the blur reaches 4 sigma): the
    rest of the crop is 0 anyway.
    """
    grow = _odd(face_size * 0.02)
    sigma = max(1.0, face_size * 0.01)
    reach = grow // 2 + int(math.ceil(4 * sigma)) + 2
    h, w = shape
    lo = np.floor(inner_lips.min(axis=0)).astype(int) - reach
    hi = np.ceil(inner_lips.max(axis=0)).astype(int) + reach + 1
    x0, y0 = max(0, lo[0]), max(0, lo[1])
    x1, y1 = min(w, hi[0]), min(h, hi[1])
    out = np.zeros(shape, np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    mask = _poly((y1 - y0, x1 - x0), inner_lips - [x0, y0])
    if grow > 1:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    np.multiply(mask, 1.0 / 255.0, out=out[y0:y1, x0:x1], casting="unsafe")
    return out
