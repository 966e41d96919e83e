"""Multi-band (Laplacian pyramid) blending on the face crop.

Low frequencies (skin tone, shading) merge over a wide zone, so the mask edge and the jaw line
leave no step; high frequencies (pores, stubble, hair) switch over a narrow zone, so detail
stays sharp on both sides and nothing is smeared into a halo.
"""

from __future__ import annotations

import cv2
import numpy as np


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    pyramid, current = [], image
    for _ in range(levels):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


def multiband_blend(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray, levels: int = 4) -> np.ndarray:
    """float32 HxWx3 images, mask HxW in [0, 1] (1 = foreground)."""
    levels = max(1, min(levels, int(np.log2(max(2, min(mask.shape)))) - 3))
    fg = _laplacian_pyramid(foreground, levels)
    bg = _laplacian_pyramid(background, levels)
    weights = [mask]
    for _ in range(levels):
        weights.append(cv2.pyrDown(weights[-1]))
    blended = [b + w[..., None] * (f - b) for f, b, w in zip(fg, bg, weights, strict=True)]
    result = blended[-1]
    for level in range(levels - 1, -1, -1):
        detail = blended[level]
        result = cv2.pyrUp(result, dstsize=(detail.shape[1], detail.shape[0])) + detail
    return result
