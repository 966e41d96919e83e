"""Piecewise-affine warp over the FaceMesh triangles, as one remap of the face crop.

For every pixel of the target crop we need the source texel to sample. The target mesh is
rasterised into a triangle-id image (far triangles first, so the near surface wins where a
turned head folds the mesh), then each pixel applies its triangle's target->source affine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TriangleFrames:
    """The inverse edge matrix of every destination triangle: shared by all the warps of one
    frame (texture, mirror texture, target reshape) since they all start on the same mesh."""

    origin: np.ndarray  # (T, 2) float64, each triangle's first vertex
    inverse: np.ndarray  # (T, 4) float64, inv([e1 e2]) row-major, 0 where degenerate
    usable: np.ndarray  # (T,) bool, not degenerate


def triangle_frames(dst: np.ndarray, triangles: np.ndarray) -> TriangleFrames:
    """Closed-form 2x2 inverses: a batched np.linalg.inv costs ~1 ms for 898 triangles."""
    d = dst[:, :2].astype(np.float64)[triangles]  # (T, 3, 2)
    d0 = d[:, 0]
    e1, e2 = d[:, 1] - d0, d[:, 2] - d0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    usable = np.abs(det) > 1e-6
    inv_det = np.where(usable, 1.0 / np.where(usable, det, 1.0), 0.0)
    inverse = np.stack([e2[:, 1], -e2[:, 0], -e1[:, 1], e1[:, 0]], axis=1) * inv_det[:, None]
    return TriangleFrames(d0, inverse, usable)


def affines_from_frames(frames: TriangleFrames, src: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T, 3, 2) matrices M with [x, y, 1] @ M = source point, for the frames' triangles."""
    s = src[:, :2].astype(np.float64)[triangles]
    s0 = s[:, 0]
    f1, f2 = s[:, 1] - s0, s[:, 2] - s0
    i00, i01, i10, i11 = frames.inverse.T
    # A = F @ inv(D), F = [f1 f2] (columns)
    a00 = f1[:, 0] * i00 + f2[:, 0] * i10
    a01 = f1[:, 0] * i01 + f2[:, 0] * i11
    a10 = f1[:, 1] * i00 + f2[:, 1] * i10
    a11 = f1[:, 1] * i01 + f2[:, 1] * i11
    d0 = frames.origin
    t0 = s0[:, 0] - (a00 * d0[:, 0] + a01 * d0[:, 1])
    t1 = s0[:, 1] - (a10 * d0[:, 0] + a11 * d0[:, 1])
    return np.stack([a00, a10, a01, a11, t0, t1], axis=1).reshape(-1, 3, 2).astype(np.float32)


def rasterize_triangles(
    points: np.ndarray, depth: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """int32 image of triangle ids (-1 outside the mesh); where triangles overlap (a turned
    head folds the mesh) the nearest one wins, as if far triangles were painted first.

    Vectorised scanline fill (a Python loop of fillConvexPoly calls costs ~1.5 us per
    triangle): every (triangle, row) pair gets its pixel span from the three edges, every
    span its pixels, and each pixel keeps the nearest triangle's rank. A pixel belongs to a
    triangle when its centre lies within half a pixel of it (along the edge's minor axis,
    as a drawn 8-connected edge reaches), so neighbours share their edge pixels and no
    hairline gaps open between them.
    """
    h, w = shape
    order = np.argsort(-depth[triangles].mean(axis=1))  # larger z is farther: painted first
    corners = triangles[order]
    px, py = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    xs = [px[corners[:, k]] for k in range(3)]
    ys = [py[corners[:, k]] for k in range(3)]
    area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (ys[1] - ys[0]) * (xs[2] - xs[0])
    sign = np.where(area < 0, -1.0, 1.0)
    left = np.maximum(np.floor(np.minimum(np.minimum(xs[0], xs[1]), xs[2]) + 0.5), 0)
    right = np.minimum(np.floor(np.maximum(np.maximum(xs[0], xs[1]), xs[2]) + 0.5), w - 1)
    top = np.maximum(np.floor(np.minimum(np.minimum(ys[0], ys[1]), ys[2]) + 0.5), 0)
    bottom = np.minimum(np.floor(np.maximum(np.maximum(ys[0], ys[1]), ys[2]) + 0.5), h - 1)
    # each edge as a*x + b*y + c >= 0 (inside, half a pixel of slack), solved for x per row:
    # a lower bound (a > 0) or an upper bound (a < 0) x = slope * y + offset; a == 0 bounds rows
    lower, upper = [], []
    for k in range(3):
        x0, y0, dx, dy = xs[k], ys[k], xs[(k + 1) % 3] - xs[k], ys[(k + 1) % 3] - ys[k]
        unit = sign / np.maximum(np.maximum(np.abs(dx), np.abs(dy)), 1e-12)
        a, b = -dy * unit, dx * unit
        c = 0.5 - (a * x0 + b * y0)
        flat = a == 0
        safe = np.where(flat, 1.0, a)
        slope, offset = -b / safe, -c / safe
        lower.append((np.where(a > 0, slope, 0.0), np.where(a > 0, offset, -np.inf)))
        upper.append((np.where(a < 0, slope, 0.0), np.where(a < 0, offset, np.inf)))
        with np.errstate(divide="ignore", invalid="ignore"):
            limit = -c / b
        top = np.where(flat & (b > 0), np.maximum(top, np.ceil(limit)), top)
        bottom = np.where(flat & (b < 0), np.minimum(bottom, np.floor(limit)), bottom)
    rows = np.maximum(bottom - top + 1, 0).astype(np.intp)
    pair = np.repeat(np.arange(len(corners)), rows)  # (triangle, row) pairs, far triangles first
    y = (np.arange(len(pair)) - np.repeat(np.cumsum(rows) - rows, rows) + np.repeat(top, rows)).astype(np.float64)
    xl, xr = np.take(left, pair), np.take(right, pair)
    for (ls, lo), (us, uo) in zip(lower, upper, strict=True):
        np.maximum(xl, np.take(ls, pair) * y + np.take(lo, pair), out=xl)
        np.minimum(xr, np.take(us, pair) * y + np.take(uo, pair), out=xr)
    xl, xr = np.ceil(xl), np.floor(xr)
    count = np.maximum(xr - xl + 1, 0).astype(np.intp)
    first = (y * w + xl).astype(np.intp) - (np.cumsum(count) - count)  # flat index of each span's start
    pixel = np.arange(int(count.sum())) + np.repeat(first, count)
    rank = np.full(h * w, -1, np.int32)
    np.maximum.at(rank, pixel, np.repeat(pair.astype(np.int32), count))  # the nearest (latest) wins
    return np.append(order, -1).astype(np.int32)[rank].reshape(h, w)


def maps_from_ids(
    ids: np.ndarray, matrices: np.ndarray, usable: np.ndarray, outside: tuple[float, ...] = (0, 0, 0, 0, -1, -1)
) -> tuple[np.ndarray, np.ndarray]:
    """remap() maps for a triangle-id image and per-triangle affines; outside the mesh (and on
    unusable triangles) the affine `outside` applies (default: -1, nothing to sample).

    One gather per affine coefficient (contiguous columns) and in-place sums: a (h, w, 6)
    gather and strided products cost twice as much.
    """
    table = np.concatenate([matrices.reshape(-1, 6), [outside]]).astype(np.float32)
    table[:-1][~usable] = outside
    a, b, c, d, e, f = (np.take(column, ids) for column in np.ascontiguousarray(table.T))  # id -1: last row
    h, w = ids.shape
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    a *= xs
    c *= ys
    a += c
    a += e
    b *= xs
    d *= ys
    b += d
    b += f
    return a, b
