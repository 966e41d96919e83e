"""Multi-band (Laplacian pyramid) blending on the face crop.

Low frequencies (skin tone, shading) merge over a wide zone, so the mask edge and the jaw line
leave no step; high frequencies (pores, stubble, hair) switch over a narrow zone, so detail
stays sharp on both sides and nothing is smeared into a halo.

The pyramid is linear, so blending foreground F over background B equals B plus the blended
pyramid of F - B: one pyramid instead of two, and no per-level lerp.
"""

from __future__ import annotations

import cv2
import numpy as np


def _levels(shape: tuple[int, ...], levels: int) -> int:
    return max(1, min(levels, int(np.log2(max(2, min(shape[:2])))) - 3))


def _times(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """image (HxWx3) times a one-channel weight; numpy's broadcast over the channel axis costs
    several times a same-shape product."""
    return cv2.multiply(image, cv2.merge([weight, weight, weight]))


def multiband_delta(difference: np.ndarray, mask: np.ndarray, levels: int = 4) -> np.ndarray:
    """The multi-band blend of difference (float32 HxWx3, foreground - background) under mask
    (HxW in [0, 1], 1 = foreground): add it to the background to get the blend."""
    levels = _levels(mask.shape, levels)
    laplacians, current, weights = [], difference, [mask]
    for _ in range(levels):
        down = cv2.pyrDown(current)
        laplacians.append(current - cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0])))
        current = down
        weights.append(cv2.pyrDown(weights[-1]))
    result = _times(current, weights[-1])
    for level in range(levels - 1, -1, -1):
        detail = laplacians[level]
        result = cv2.pyrUp(result, dstsize=(detail.shape[1], detail.shape[0]))
        result += _times(detail, weights[level])
    return result
