"""FaceMesh topology as data: triangles and named landmark rings (see data/face_mesh.json)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "face_mesh.json"

# Landmarks used to place and rotate the tracking ROI (outer eye corners) and to measure
# inter-ocular distance.
RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263


@dataclass(frozen=True, eq=False)
class MeshTopology:
    triangles: np.ndarray  # (898, 3) int32
    face_oval: np.ndarray  # closed ring along the mesh border
    lips_inner: np.ndarray
    lips_outer: np.ndarray
    left_eye: np.ndarray
    right_eye: np.ndarray
    left_eyebrow: np.ndarray
    right_eyebrow: np.ndarray
    mirror: np.ndarray  # landmark i's left/right partner (i itself on the midline)
    mirror_triangles: np.ndarray  # index of each triangle's mirror image


@functools.cache
def face_mesh() -> MeshTopology:
    raw = json.loads(DATA.read_text())

    def ring(key: str) -> np.ndarray:
        return np.asarray(raw[key], dtype=np.int32)

    triangles = ring("triangles").reshape(-1, 3)
    mirror = ring("mirror")
    index = {tuple(sorted(t)): k for k, t in enumerate(triangles.tolist())}
    mirror_triangles = np.array([index[tuple(sorted(mirror[t]))] for t in triangles.tolist()], np.int32)
    return MeshTopology(
        triangles=triangles,
        face_oval=ring("face_oval"),
        lips_inner=ring("lips_inner"),
        lips_outer=ring("lips_outer"),
        left_eye=ring("left_eye"),
        right_eye=ring("right_eye"),
        left_eyebrow=ring("left_eyebrow"),
        right_eyebrow=ring("right_eyebrow"),
        mirror=mirror,
        mirror_triangles=mirror_triangles,
    )


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners, the scale unit for landmark errors."""
    return float(np.linalg.norm(landmarks[LEFT_EYE_OUTER, :2] - landmarks[RIGHT_EYE_OUTER, :2]))
