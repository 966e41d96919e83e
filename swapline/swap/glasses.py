"""Whether a face wears glasses, and where its lenses are.

The skin a target shows through its lenses has the lenses' tone (tinted, lit by their
reflections, shifted by their power) and ends at the frames: transferred as the target's
light, it drew the glasses again, as pale ghost lenses, on a source face that wears none.
So where a target wears glasses, the skin round its eyes does not vote for the tone.

A frame's bridge is the sign: a thin bar darker than the skin on both sides of it, crossing
the nose between the inner eye corners from one corner to the other, where a bare nose has at
most a crease. The morphological black-hat of the lightness finds thin dark lines.
"""

from __future__ import annotations

import cv2
import numpy as np

from swapline.faces.topology import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, MeshTopology

_INNER_CORNERS = [133, 362]  # FaceMesh's inner eye corners
# Mean black-hat along the darkest row across the nose: on the 48 tests/data faces, the 13 with
# framed glasses 46-116, rimless glasses 38, the 34 bare faces 6-38. Moved, scaled, turned and
# re-encoded a little (as video frames are), one face's score spreads over about 4 levels
# (raul_grijalva_1: 42-45): a ramp, not a threshold, so that a video does not flicker.
BRIDGE_RAMP = (39.0, 47.0)


def bridge_score(gray: np.ndarray, points: np.ndarray, iod: float) -> float:
    """How dark a bar crosses the nose between the inner eye corners: the face turned upright
    and scaled to 100 px between the outer eye corners, the black-hat (14 px) averaged along
    each row of the band from 25 px above the corners to 6 below; the largest."""
    a, b = points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER]
    angle = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
    centre = (a + b) / 2
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 100.0 / max(iod, 1e-6))
    turn[:, 2] += np.array([100.0, 60.0]) - centre
    upright = cv2.warpAffine(gray, turn, (200, 120), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inner = points[_INNER_CORNERS] @ turn[:, :2].T + turn[:, 2]
    x0, x1 = int(inner[:, 0].min()) + 2, int(inner[:, 0].max()) - 2
    y = int(round(float(inner[:, 1].mean())))
    if x1 - x0 < 4 or not 25 <= y <= 114:
        return 0.0
    hat = cv2.morphologyEx(upright, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    return float(hat[y - 25 : y + 6, x0:x1].mean(axis=1).max())


def glasses_likelihood(gray: np.ndarray, points: np.ndarray, iod: float) -> float:
    """0 (bare) .. 1 (framed glasses), along BRIDGE_RAMP. gray: the face's image (uint8),
    points its landmarks there."""
    low, high = BRIDGE_RAMP
    return float(np.clip((bridge_score(gray, points, iod) - low) / (high - low), 0.0, 1.0))


def lens_zone(points: np.ndarray, mesh: MeshTopology, shape: tuple[int, int], iod: float) -> np.ndarray:
    """float32 [0, 1]: where a pair of glasses' lenses and frames lie, from the landmarks alone:
    each eye and the bridge between them grown by 0.3 IOD each way (large round lenses reach
    that far below the eye). Drawn and grown on a grid a quarter the size (a region, and a
    wide dilation costs ~3 ms at full size)."""
    f = 0.25
    small = (max(1, round(shape[0] * f)), max(1, round(shape[1] * f)))
    at = (points + 0.5) * f - 0.5
    zone = np.zeros(small, np.uint8)
    for ring in (mesh.left_eye, mesh.right_eye):
        cv2.fillPoly(zone, [np.round(at[ring]).astype(np.int32)], 1)
    corners = [tuple(int(v) for v in np.round(at[i])) for i in _INNER_CORNERS]
    cv2.line(zone, corners[0], corners[1], 1, max(1, int(0.1 * iod * f)))
    reach = int(0.6 * iod * f) | 1
    zone = cv2.dilate(zone, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
    return cv2.resize(zone.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
