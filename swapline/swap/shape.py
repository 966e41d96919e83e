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
NOSE_BRIDGE = 168
RIGHT_CHEEK_OUTLINE, LEFT_CHEEK_OUTLINE = 234, 454  # the face outline at the eyes' height
RIGHT_LIDS = (159, 145)
LEFT_LIDS = (386, 374)


@dataclass(frozen=True)
class ShapeSettings:
    strength: float = 1.0  # 0 = the target's face shape, 1 = the source's inner-face proportions
    outline: float = 0.0  # how far the face outline itself follows (the target's background is not moved)
    fade_iod: float = 0.35  # the offset fades in over this distance from the outline (x inter-ocular)
    # Around each eye and the lips, points go from the group's own motion (at its edge) to the
    # source's shape over this distance (x inter-ocular): no fold where the two meet.
    blend_iod: float = 0.1


@dataclass(frozen=True, eq=False)
class _Groups:
    anchors: np.ndarray  # points that expressions hardly move: used for the pose fit
    right_eye: np.ndarray
    left_eye: np.ndarray
    lips: np.ndarray  # everything on or inside the outer lip ring
    oval: np.ndarray

    @property
    def rigid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The groups that move as a whole: each eye (its corners), the lips (theirs)."""
        return self.right_eye, self.left_eye, self.lips


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
        # each point's distance from each rigid group, in 3D on the source (x its inter-ocular
        # distance): where a group's own motion fades into the source's shape; once, not per frame
        iod = max(float(np.linalg.norm(self.source[LEFT_EYE_OUTER] - self.source[RIGHT_EYE_OUTER])), 1e-6)
        g = self.groups
        self._from_group = [_distances(self.source, self.source[group]).min(axis=1) / iod for group in g.rigid]
        self._blends: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {}

    def _blend(self, blend_iod: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per rigid group: the points its own motion reaches, and its weight there (1 on the group)."""
        if blend_iod not in self._blends:
            zones = []
            for group, distance in zip(self.groups.rigid, self._from_group, strict=True):
                near = np.union1d(np.flatnonzero(distance < blend_iod), group)
                weight = np.clip(1.0 - distance[near] / max(blend_iod, 1e-9), 0.0, 1.0)
                weight[np.isin(near, group)] = 1.0
                zones.append((near, weight[:, None]))
            self._blends[blend_iod] = zones
        return self._blends[blend_iod]

    def offsets(self, target: np.ndarray, settings: ShapeSettings) -> np.ndarray:
        """(468, 2) image-plane offsets that move the target's points toward the source's shape."""
        g = self.groups
        t = target.astype(np.float64)
        scale, rotation, shift = similarity_3d(self._anchors, t[g.anchors])
        fitted = (scale * self.source @ rotation.T + shift)[:, :2]
        flat = t[:, :2]
        iod = max(float(np.linalg.norm(t[LEFT_EYE_OUTER, :2] - t[RIGHT_EYE_OUTER, :2])), 1e-6)
        moved = fitted.copy()
        for (near, weight), (a, b), along_only in zip(
            self._blend(settings.blend_iod),
            (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS, MOUTH_CORNERS),
            (False, False, True),
            strict=True,
        ):
            # the group's own motion weighs 1 at the group and fades into the source's shape
            # with the distance from it
            own = _similarity_2d(t[a, :2], t[b, :2], fitted[a], fitted[b], flat[near], along_only=along_only)
            moved[near] += weight * (own - moved[near])
        offset = moved - flat
        fade = np.clip(_distance_to(flat, flat[g.oval]) / (settings.fade_iod * iod), 0.0, 1.0)
        weight = settings.strength * (settings.outline + (1.0 - settings.outline) * fade)
        offset *= weight[:, None]
        return _unfold(flat, offset, self.mesh.triangles, g.rigid, _SPREAD_IOD * iod).astype(np.float32)


def _distances(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, M) distances: |p - q|^2 = |p|^2 + |q|^2 - 2 p.q, one product and no (N, M, 2) array."""
    squared = (points**2).sum(axis=1)[:, None] + (others**2).sum(axis=1)[None, :] - 2.0 * points @ others.T
    return np.sqrt(np.maximum(squared, 0.0))


def _distance_to(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest of others."""
    return _distances(points, others).min(axis=1)


def _unfold(
    points: np.ndarray,
    offset: np.ndarray,
    triangles: np.ndarray,
    rigid: tuple[np.ndarray, ...] = (),
    spread: float = 1.0,
) -> np.ndarray:
    """Damp the offsets where a triangle that faces the camera would fold over, point by point,
    and continuously: a frame-to-frame flicker of the shape is worse than a fold.

    Each facing triangle allows its corners' offsets up to the scale k at which it would shrink
    below _KEEP of its area less a floor of 2% of the largest triangle's (a sliver may fold by a
    hair's breadth but does not hold the face back: the k's of slivers jump with a tenth of a
    pixel of landmark noise); each point takes the least k of its triangles, and each rigid
    group (each eye, the lips: they move as a whole, so their expression stays the target's)
    the least of its points. The k's are roots of each triangle's area as a quadratic in k, so
    they follow the landmarks smoothly: a global scale, or halving the corners of whichever
    triangles flip, switched the shape on and off between frames (landmark jitter on a still
    head 1.1 px on the output against 0.7 on the input).
    Rounds repeat on the damped offsets until every triangle is within its limit; if they do not
    settle, the corners of what still folds are halved, then held still, as a last resort.
    """

    at, moves = points[triangles], offset[triangles]  # (T, 3, 2)
    e1, e2 = at[:, 1] - at[:, 0], at[:, 2] - at[:, 0]
    a0 = _cross(e1, e2)
    front = np.sign(a0.sum()) or 1.0
    a0 = a0 * front
    floor = 2e-2 * np.abs(a0).max()
    facing = a0 > 0
    c = (1.0 - _KEEP) * a0 + floor  # area(k) - (KEEP a0 - floor) = a2 k^2 + a1 k + c, positive at k = 0
    factor = np.ones(len(points))
    for _ in range(_ROUNDS):  # continuous rounds, each on the offsets as damped so far
        scaled = factor[triangles][..., None] * moves
        f1, f2 = scaled[:, 1] - scaled[:, 0], scaled[:, 2] - scaled[:, 0]
        a1, a2 = (_cross(e1, f2) + _cross(f1, e2)) * front, _cross(f1, f2) * front  # area(k) = a0 + a1 k + a2 k^2
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = a1 * a1 - 4.0 * a2 * c
            root = np.sqrt(np.maximum(disc, 0.0))
            quadratic = np.abs(a2) > 1e-9 * np.maximum(np.abs(a1), 1.0)
            r1 = np.where(quadratic, (-a1 - root) / (2.0 * a2), -c / a1)
            r2 = np.where(quadratic, (-a1 + root) / (2.0 * a2), np.inf)
            real = ~quadratic | (disc >= 0)
            r1 = np.where(real & (r1 > 0), r1, np.inf)
            r2 = np.where(real & (r2 > 0), r2, np.inf)
        k = np.where(facing, np.minimum(np.minimum(r1, r2), 1.0), 1.0)
        least = np.ones(len(points))
        np.minimum.at(least, triangles.ravel(), np.repeat(k, 3))
        for group in rigid:
            least[group] = least[group].min()
        held = np.flatnonzero(least < 1.0)
        if not len(held):
            return offset * factor[:, None]  # every triangle within its limit
        # the damping rises from each held-back point (a whole group when one of its points is)
        # by 1 per `spread` pixels: neighbours move alike (unequal factors on one triangle fold
        # it), and it stays continuous
        factor *= np.minimum(1.0, (least[held][None, :] + _distances(points, points[held]) / spread).min(axis=1))
    # the rounds did not settle: what still folds (corners scaled unequally) is halved, then held
    tried = np.flatnonzero(facing)
    # no fold wider than a hair, none at all for big triangles (less rounding: a root sits on its limit)
    limit = np.minimum(_KEEP * a0[tried] - floor, 0.0) - 1e-6 * floor
    at, moves, corners = at[tried], moves[tried], triangles[tried]
    for step in range(len(points)):  # each step past the halvings holds at least one more corner
        moved = at + factor[corners][..., None] * moves
        broken = _cross(moved[:, 1] - moved[:, 0], moved[:, 2] - moved[:, 0]) * front < limit
        if not broken.any():
            break
        held_now = np.zeros(len(points), bool)
        held_now[corners[broken]] = True
        factor[held_now] = factor[held_now] * 0.5 if step < _HALVINGS else 0.0
        for group in rigid:
            factor[group] = factor[group].min()
    return offset * factor[:, None]


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]


# A facing triangle may shrink to this fraction of its area under the identity shape.
_KEEP = 0.2
# Rounds of the continuous damping (each sees the offsets as the last left them).
_ROUNDS = 10
# A held-back point's neighbours get back to the full offset over this distance (x inter-ocular).
_SPREAD_IOD = 0.15
# Halvings of a triangle's corners, where unequal factors still break the limit, before they are held.
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


def half_width_ratio(landmarks: np.ndarray) -> float:
    """How turned a face is, read in the image: the wider half of the face (nose bridge to the
    outline at the eyes' height, along the eye line) over the narrower one; 1 facing the camera.
    On the test photos 1.0-2.3 for faces turned up to ~20 degrees, 4.1 for one turned ~40."""
    eyes = landmarks[LEFT_EYE_OUTER, :2] - landmarks[RIGHT_EYE_OUTER, :2]
    along = eyes / max(float(np.linalg.norm(eyes)), 1e-6)
    bridge = landmarks[NOSE_BRIDGE, :2]
    right = float((bridge - landmarks[RIGHT_CHEEK_OUTLINE, :2]) @ along)
    left = float((landmarks[LEFT_CHEEK_OUTLINE, :2] - bridge) @ along)
    return max(right, left) / max(min(right, left), 1e-3)


def relative_pose_degrees(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of the rotation that takes landmarks a onto landmarks b, in degrees."""
    anchors = _groups(face_mesh(), tuple(face_mesh().lips_outer.tolist())).anchors
    _, r, _ = similarity_3d(a[anchors].astype(np.float64), b[anchors].astype(np.float64))
    yaw = math.degrees(math.asin(float(np.clip(-r[2, 0], -1.0, 1.0))))
    pitch = math.degrees(math.atan2(float(r[2, 1]), float(r[2, 2])))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[0, 0])))
    return yaw, pitch, roll
