"""Skin model of the source face: where the source shows something other than skin (a hair
fringe, a microphone, a glasses frame) on a part of the face that should be skin, the target
is kept there instead.
"""

from __future__ import annotations

import cv2
import numpy as np

from swapline.faces.topology import MeshTopology

# The underside of the nose (nostrils, columella): dark in every face, never an occluder.
_NOSTRILS = np.array([64, 98, 97, 2, 326, 327, 294, 48, 278, 4, 1])


def feature_mask(points: np.ndarray, mesh: MeshTopology, shape: tuple[int, int], grow: float) -> np.ndarray:
    """uint8 mask of eyes, brows and lips (which are not skin but belong to the face), grown by `grow` px."""
    mask = np.zeros(shape, np.uint8)
    for ring in (mesh.left_eye, mesh.right_eye, mesh.lips_outer):
        cv2.fillPoly(mask, [np.round(points[ring]).astype(np.int32)], 255)
    for group in (mesh.left_eyebrow, mesh.right_eyebrow, _NOSTRILS):
        hull = cv2.convexHull(np.round(points[group]).astype(np.int32))
        cv2.fillPoly(mask, [hull], 255)
    size = max(3, int(grow) | 1)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def expected_skin(points: np.ndarray, mesh: MeshTopology, shape: tuple[int, int], iod: float) -> np.ndarray:
    """Bool mask of the face oval minus its features: everything here should look like skin."""
    oval = np.zeros(shape, np.uint8)
    cv2.fillPoly(oval, [np.round(points[mesh.face_oval]).astype(np.int32)], 255)
    features = feature_mask(points, mesh, shape, grow=0.12 * iod)
    return (oval > 0) & (features == 0)


def skin_validity(
    texture_bgr: np.ndarray, points: np.ndarray, mesh: MeshTopology, iod: float, threshold: float = 3.5
) -> np.ndarray:
    """float32 [0, 1]: 0 where the source's forehead is covered by something that is not skin.

    What covers a forehead (a hair fringe, a hat brim) comes in from the top of the face: so on
    the forehead (above the brows), pixels far from the skin's colour (Mahalanobis distance in
    Lab, fitted on the central face) that connect to the top border of the face count as an
    occluder. Cheeks and jaw are left alone: their darker pixels are shadows far more often
    than objects, and the tests show a colour model cannot tell them apart reliably.
    """
    shape = texture_bgr.shape[:2]
    skin_area = expected_skin(points, mesh, shape, iod)
    lab = cv2.cvtColor(texture_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    centre = np.zeros(shape, np.uint8)
    core = points[[50, 280, 4, 168]]  # cheeks, nose tip, between the eyes: rarely occluded
    cv2.fillConvexPoly(centre, np.round(cv2.convexHull(core.astype(np.float32))).astype(np.int32)[:, 0], 255)
    sample = lab[(centre > 0) & skin_area]
    if len(sample) < 50:
        return np.ones(shape, np.float32)
    mean = sample.mean(axis=0)
    covariance = np.cov(sample.T) + np.eye(3) * 4.0  # floor: very even skin must not flag its own shading
    diff = lab - mean
    distance = np.sqrt(np.einsum("...i,ij,...j->...", diff, np.linalg.inv(covariance), diff))
    # forehead: above the brows, measured along the face's own vertical axis
    eye_line = points[263] - points[33]
    down = np.array([-eye_line[1], eye_line[0]]) / max(float(np.linalg.norm(eye_line)), 1e-6)
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    depth = xs * down[0] + ys * down[1]
    brows = points[np.concatenate([mesh.left_eyebrow, mesh.right_eyebrow])] @ down
    forehead = skin_area & (depth < brows.max())
    candidate = ((distance > threshold) & forehead).astype(np.uint8)
    k = max(3, int(0.08 * iod) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, kernel)  # drop speckles (pores, shine)
    top = np.zeros(shape, np.uint8)  # the face's top border
    cv2.polylines(top, [np.round(points[mesh.face_oval]).astype(np.int32)], True, 1, thickness=k)
    count, labels = cv2.connectedComponents(candidate)
    touching = np.unique(labels[(top > 0) & (candidate > 0)])
    occluder = (np.isin(labels, touching[touching > 0]) * 255).astype(np.uint8)
    occluder = cv2.dilate(occluder, kernel)
    return 1.0 - cv2.GaussianBlur(occluder, (0, 0), k / 2).astype(np.float32) / 255.0


def target_occluders(
    target_bgr: np.ndarray, points: np.ndarray, mesh: MeshTopology, iod: float, threshold: float = 5.0
) -> np.ndarray:
    """float32 [0, 1]: 1 where something stands in front of the target's face (a microphone, a
    hand, a card), to be kept in front of the swapped face.

    A per-target skin model (Lab mean and covariance on the cheeks and nose) marks pixels of the
    face oval, features left out, that are far from the skin's colour; of those, only blobs that
    reach the face's outline count (objects come in from outside; shadows and pores do not) and
    only if they cover a real part of the face. Made on a half-size grid (it is a region, not
    detail) and brought up with a soft edge a pixel or two wide.
    """
    shape = target_bgr.shape[:2]
    scale = 0.5 if min(shape) >= 96 else 1.0
    small = (max(4, round(shape[1] * scale)), max(4, round(shape[0] * scale)))
    image = cv2.resize(target_bgr, small, interpolation=cv2.INTER_AREA) if scale != 1.0 else target_bgr
    lab = cv2.cvtColor(image.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_BGR2LAB)
    local = (points + 0.5) * scale - 0.5
    grid = (small[1], small[0])
    area = expected_skin(local, mesh, grid, iod * scale)
    centre = np.zeros(grid, np.uint8)
    core = cv2.convexHull(local[[50, 280, 4, 168]].astype(np.float32))
    cv2.fillConvexPoly(centre, np.round(core).astype(np.int32)[:, 0], 1)
    sample = lab[(centre > 0) & area]
    if len(sample) < 30:
        return np.zeros(shape, np.float32)
    diff = lab - sample.mean(axis=0)
    inverse = np.linalg.inv(np.cov(sample.T) + np.eye(3) * 9.0)
    distance = np.sqrt(np.einsum("...i,ij,...j->...", diff, inverse, diff))
    candidate = ((distance > threshold) & area).astype(np.uint8)
    k = max(3, int(0.06 * iod * scale) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, kernel)
    border = np.zeros(grid, np.uint8)
    cv2.polylines(border, [np.round(local[mesh.face_oval]).astype(np.int32)], True, 1, thickness=2 * k)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidate)
    touching = set(np.unique(labels[(border > 0) & (candidate > 0)]).tolist()) - {0}
    big = {i for i in touching if stats[i, cv2.CC_STAT_AREA] >= 0.01 * area.sum()}
    if not big:
        return np.zeros(shape, np.float32)
    # an object also covers eyes, brows or lips next to it: grow the blobs through the whole oval
    oval = np.zeros(grid, np.uint8)
    cv2.fillPoly(oval, [np.round(local[mesh.face_oval]).astype(np.int32)], 1)
    wide = cv2.morphologyEx(((distance > threshold) & (oval > 0)).astype(np.uint8), cv2.MORPH_OPEN, kernel)
    _, wide_labels = cv2.connectedComponents(wide | candidate)
    seeds = np.unique(wide_labels[np.isin(labels, list(big))])
    occluder = np.isin(wide_labels, seeds[seeds > 0]).astype(np.float32)
    occluder = cv2.dilate(occluder, np.ones((5, 5), np.uint8))  # cover the object's own edge
    if scale != 1.0:
        occluder = cv2.resize(occluder, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(occluder * 2.0, 0.0, 1.0)
