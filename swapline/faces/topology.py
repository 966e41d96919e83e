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


@functools.cache
def face_mesh() -> MeshTopology:
    raw = json.loads(DATA.read_text())

    def ring(key: str) -> np.ndarray:
        return np.asarray(raw[key], dtype=np.int32)

    return MeshTopology(
        triangles=ring("triangles").reshape(-1, 3),
        face_oval=ring("face_oval"),
        lips_inner=ring("lips_inner"),
        lips_outer=ring("lips_outer"),
        left_eye=ring("left_eye"),
        right_eye=ring("right_eye"),
    )


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners, the scale unit for landmark errors."""
    return float(np.linalg.norm(landmarks[LEFT_EYE_OUTER, :2] - landmarks[RIGHT_EYE_OUTER, :2]))
