"""Piecewise-affine warp over the FaceMesh triangles, as one remap of the face crop.

For every pixel of the target crop we need the source texel to sample. The target mesh is
rasterised into a triangle-id image (far triangles first, so the near surface wins where a
turned head folds the mesh), then each pixel applies its triangle's target->source affine.
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # sub-pixel bits for the rasteriser


def triangle_affines(dst: np.ndarray, src: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 2) matrices M with [x, y, 1] @ M = source point, and a mask of usable triangles.

    Closed-form 2x2 inverses: a batched np.linalg.inv costs ~1 ms for 898 triangles.
    """
    d0, d1, d2 = (dst[triangles[:, i], :2].astype(np.float64) for i in range(3))
    s0, s1, s2 = (src[triangles[:, i], :2].astype(np.float64) for i in range(3))
    e1, e2 = d1 - d0, d2 - d0
    f1, f2 = s1 - s0, s2 - s0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    usable = np.abs(det) > 1e-6
    inv_det = np.where(usable, 1.0 / np.where(usable, det, 1.0), 0.0)
    # inverse of D = [e1 e2] (columns)
    i00, i01 = e2[:, 1] * inv_det, -e2[:, 0] * inv_det
    i10, i11 = -e1[:, 1] * inv_det, e1[:, 0] * inv_det
    # A = F @ inv(D), F = [f1 f2] (columns)
    a00 = f1[:, 0] * i00 + f2[:, 0] * i10
    a01 = f1[:, 0] * i01 + f2[:, 0] * i11
    a10 = f1[:, 1] * i00 + f2[:, 1] * i10
    a11 = f1[:, 1] * i01 + f2[:, 1] * i11
    t0 = s0[:, 0] - (a00 * d0[:, 0] + a01 * d0[:, 1])
    t1 = s0[:, 1] - (a10 * d0[:, 0] + a11 * d0[:, 1])
    matrices = np.stack([a00, a10, a01, a11, t0, t1], axis=1).reshape(-1, 3, 2)
    return matrices.astype(np.float32), usable


def rasterize_triangles(
    points: np.ndarray, depth: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """int32 image of triangle ids (-1 outside the mesh); nearer triangles drawn last."""
    ids = np.full(shape, -1, np.int32)
    order = np.argsort(-depth[triangles].mean(axis=1))  # larger z is farther
    fixed = np.round(points * (1 << _SHIFT)).astype(np.int32)[triangles]
    fill = cv2.fillConvexPoly
    for t in order.tolist():
        fill(ids, fixed[t], t, cv2.LINE_8, _SHIFT)
    # Rounding leaves hairline gaps between some neighbours: give each gap pixel the id of a
    # neighbour (a 3x3 max) when the pixel is surrounded by mesh on both sides.
    inside = (ids >= 0).astype(np.uint8)
    closed = cv2.morphologyEx(inside, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    gap = (closed > 0) & (inside == 0)  # empty pixels with mesh on both sides
    if gap.any():
        grown = cv2.dilate(ids.astype(np.float32), np.ones((3, 3), np.uint8))
        ids[gap] = grown[gap].astype(np.int32)
    return ids


def maps_from_ids(
    ids: np.ndarray, matrices: np.ndarray, usable: np.ndarray, outside: tuple[float, ...] = (0, 0, 0, 0, -1, -1)
) -> tuple[np.ndarray, np.ndarray]:
    """remap() maps for a triangle-id image and per-triangle affines; outside the mesh (and on
    unusable triangles) the affine `outside` applies (default: -1, nothing to sample)."""
    table = np.concatenate([matrices.reshape(-1, 6), [outside]]).astype(np.float32)
    table[:-1][~usable] = outside
    per_pixel = table[ids]  # id -1 picks the last row
    h, w = ids.shape
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    map_x = xs * per_pixel[..., 0] + ys * per_pixel[..., 2] + per_pixel[..., 4]
    map_y = xs * per_pixel[..., 1] + ys * per_pixel[..., 3] + per_pixel[..., 5]
    return map_x, map_y
