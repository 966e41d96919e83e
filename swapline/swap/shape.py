"""Identity shape: the target mesh's inner face moved toward the source's proportions.

A texture-only swap keeps the target's eye spacing, nose length and mouth width, and those carry
much of what makes a face recognisable. Per frame the source's 3D landmarks are fitted to the
target's by a similarity (Procrustes: the target's pose and scale, none of its shape), on the
points that expressions hardly move. The difference between the fitted source and the target is
the identity offset. Expression stays the target's: each eye and the lips move as a whole (a
transform from their corners), so lid gap / eye width and the lips' opening are the target's;
near the face outline the offset fades out, so the target's outline joins smoothly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from swapline.faces.topology import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, MeshTopology, face_mesh

# FaceMesh indices: eye corners (outer, inner), lip corners, inner-lip midpoints, lid midpoints.
RIGHT_EYE_CORNERS = (RIGHT_EYE_OUTER, 133)
LEFT_EYE_CORNERS = (LEFT_EYE_OUTER, 362)
MOUTH_CORNERS = (61, 291)
INNER_LIP_MID = (13, 14)
RIGHT_LIDS = (159, 145)
LEFT_LIDS = (386, 374)


@dataclass(frozen=True)
class ShapeSettings:
    strength: float = 1.0  # 0 = the target's face shape, 1 = the source's inner-face proportions
    outline: float = 0.0  # how far the face outline itself follows (the target's background is not moved)
    fade_iod: float = 0.35  # the offset fades in over this distance from the outline (x inter-ocular)


@dataclass(frozen=True, eq=False)
class _Groups:
    anchors: np.ndarray  # points that expressions hardly move: used for the pose fit
    right_eye: np.ndarray
    left_eye: np.ndarray
    lips: np.ndarray  # everything on or inside the outer lip ring
    oval: np.ndarray


def _inside(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test for every point against a closed ring."""
    x, y = points[:, 0:1], points[:, 1:2]
    ax, ay = ring[:, 0][None], ring[:, 1][None]
    bx, by = np.roll(ring[:, 0], -1)[None], np.roll(ring[:, 1], -1)[None]
    crosses = (ay > y) != (by > y)
    at = ax + (y - ay) * (bx - ax) / np.where(by == ay, 1e-9, by - ay)
    return (crosses & (x < at)).sum(axis=1) % 2 == 1


@functools.cache
def _groups(mesh: MeshTopology, lips: tuple[int, ...]) -> _Groups:
    lips_idx = np.asarray(lips, np.int32)
    expressive = np.zeros(468, bool)
    expressive[np.concatenate([mesh.right_eye, mesh.left_eye, lips_idx])] = True
    return _Groups(
        anchors=np.flatnonzero(~expressive),
        right_eye=np.asarray(mesh.right_eye),
        left_eye=np.asarray(mesh.left_eye),
        lips=lips_idx,
        oval=np.asarray(mesh.face_oval),
    )


@dataclass(frozen=True, eq=False)
class _Centred:
    """Points less their mean, and what the fit needs of them: made once for the fixed side."""

    mean: np.ndarray
    centred: np.ndarray
    spread: float  # mean squared distance from the mean

    @classmethod
    def of(cls, points: np.ndarray) -> _Centred:
        mean = points.mean(axis=0)
        centred = points - mean
        return cls(mean, centred, float((centred**2).sum() / len(points)))


def similarity_3d(src: np.ndarray | _Centred, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, R, t) minimising |scale * R @ src + t - dst| (Umeyama); points as rows. src may
    come pre-centred (_Centred.of) when it is fitted again and again."""
    fixed = src if isinstance(src, _Centred) else _Centred.of(src)
    mu_s, mu_d = fixed.mean, dst.mean(axis=0)
    a, b = fixed.centred, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(a))
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / max(fixed.spread, 1e-12))
    return scale, rotation, mu_d - scale * rotation @ mu_s


def _similarity_2d(a0, a1, b0, b1, points, along_only: bool = False) -> np.ndarray:
    """Map points by the 2D transform taking segment a0-a1 onto b0-b1. along_only: scale only
    along the segment (the perpendicular keeps its length: a mouth's opening stays)."""
    va, vb = a1 - a0, b1 - b0
    la, lb = max(float(np.hypot(*va)), 1e-6), float(np.hypot(*vb))
    ua, ub = va / la, vb / max(lb, 1e-6)
    rel = points - (a0 + a1) / 2
    along, across = rel @ ua, rel @ np.array([-ua[1], ua[0]])
    k = lb / la
    along = along * k
    across = across * (1.0 if along_only else k)
    return (b0 + b1) / 2 + along[:, None] * ub + across[:, None] * np.array([-ub[1], ub[0]])


class IdentityShape:
    """The source's 3D landmarks, and the target mesh re-shaped toward them for each frame."""

    def __init__(self, source_landmarks: np.ndarray, mesh: MeshTopology | None = None):
        self.mesh = mesh or face_mesh()
        self.source = source_landmarks.astype(np.float64)
        lips = np.flatnonzero(_inside(self.source[:, :2], self.source[self.mesh.lips_outer, :2]))
        self.groups = _groups(self.mesh, tuple(sorted({*lips.tolist(), *self.mesh.lips_outer.tolist()})))
        self._anchors = _Centred.of(self.source[self.groups.anchors])  # the source side of every frame's fit

    def offsets(self, target: np.ndarray, settings: ShapeSettings) -> np.ndarray:
        """(468, 2) image-plane offsets that move the target's points toward the source's shape."""
        g = self.groups
        t = target.astype(np.float64)
        scale, rotation, shift = similarity_3d(self._anchors, t[g.anchors])
        fitted = (scale * self.source @ rotation.T + shift)[:, :2]
        moved = fitted.copy()
        for group, (i, j) in ((g.right_eye, RIGHT_EYE_CORNERS), (g.left_eye, LEFT_EYE_CORNERS)):
            moved[group] = _similarity_2d(t[i, :2], t[j, :2], fitted[i], fitted[j], t[group, :2])
        i, j = MOUTH_CORNERS
        moved[g.lips] = _similarity_2d(t[i, :2], t[j, :2], fitted[i], fitted[j], t[g.lips, :2], along_only=True)
        offset = moved - t[:, :2]
        iod = max(float(np.linalg.norm(t[LEFT_EYE_OUTER, :2] - t[RIGHT_EYE_OUTER, :2])), 1e-6)
        flat = t[:, :2]
        outline = flat[g.oval]  # |p - q|^2 = |p|^2 + |q|^2 - 2 p.q: one product, no (468, 36, 2) array
        squared = (flat**2).sum(axis=1)[:, None] + (outline**2).sum(axis=1)[None, :] - 2.0 * flat @ outline.T
        to_oval = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
        fade = np.clip(to_oval / (settings.fade_iod * iod), 0.0, 1.0)
        weight = settings.strength * (settings.outline + (1.0 - settings.outline) * fade)
        offset *= weight[:, None]
        rigid = (g.right_eye, g.left_eye, g.lips)
        return _unfold(t[:, :2], offset, self.mesh.triangles, rigid).astype(np.float32)


def _unfold(
    points: np.ndarray, offset: np.ndarray, triangles: np.ndarray, rigid: tuple[np.ndarray, ...] = ()
) -> np.ndarray:
    """Damp the offsets where a triangle that faces the camera would flip over, vertex by vertex.

    The flips come from slivers (a few per mille of the largest triangle's area, at the nose's
    sides): holding the whole face back for one of them (a global scale) left about a quarter of
    the quality set's pairs with no identity shape at all. A flipping triangle's corners are
    halved a few times, then held still; a triangle whose corners all stay is the target's own.
    The rigid groups (each eye, the lips) keep one factor for all their points: they move as a
    whole, so their expression stays the target's.
    """

    def areas(p):  # signed area of every (T, 3, 2) triangle
        e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        return e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]

    before = areas(points[triangles])
    front = np.sign(before.sum()) or 1.0
    tried = triangles[before * front > 1e-3 * np.abs(before).max()]
    at, moves = points[tried], offset[tried]
    factor = np.ones(len(points))
    for step in range(len(points)):  # each step past the halvings holds at least one more corner
        flipped = areas(at + factor[tried][..., None] * moves) * front <= 0
        if not flipped.any():
            break
        held = np.zeros(len(points), bool)
        held[tried[flipped]] = True
        factor[held] = factor[held] * 0.5 if step < _HALVINGS else 0.0
        for group in rigid:
            factor[group] = factor[group].min()
    return offset * factor[:, None]


# Halvings of a flipping triangle's corners before they are held still.
_HALVINGS = 4


# --- measures of pose and expression (kept by the swap; checked by the quality bench) ---


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap over the inter-ocular distance."""
    iod = float(np.linalg.norm(landmarks[LEFT_EYE_OUTER, :2] - landmarks[RIGHT_EYE_OUTER, :2]))
    top, bottom = INNER_LIP_MID
    return float(np.linalg.norm(landmarks[top, :2] - landmarks[bottom, :2])) / max(iod, 1e-6)


def eye_openings(landmarks: np.ndarray) -> tuple[float, float]:
    """Lid gap over eye width, (right eye, left eye) as the person sees them."""
    result = []
    for (upper, lower), (outer, inner) in ((RIGHT_LIDS, RIGHT_EYE_CORNERS), (LEFT_LIDS, LEFT_EYE_CORNERS)):
        width = float(np.linalg.norm(landmarks[outer, :2] - landmarks[inner, :2]))
        result.append(float(np.linalg.norm(landmarks[upper, :2] - landmarks[lower, :2])) / max(width, 1e-6))
    return result[0], result[1]


def relative_pose_degrees(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of the rotation that takes landmarks a onto landmarks b, in degrees."""
    anchors = _groups(face_mesh(), tuple(face_mesh().lips_outer.tolist())).anchors
    _, r, _ = similarity_3d(a[anchors].astype(np.float64), b[anchors].astype(np.float64))
    yaw = math.degrees(math.asin(float(np.clip(-r[2, 0], -1.0, 1.0))))
    pitch = math.degrees(math.atan2(float(r[2, 1]), float(r[2, 2])))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[0, 0])))
    return yaw, pitch, roll
