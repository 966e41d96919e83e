"""Identity encoder: dlib's ResNet face descriptor (128-d; distance < 0.6 means same person).

Used once per source face (to pick which target face to replace) and by the quality
benchmark, never per frame. Optional: `pip install 'swapline[identity]'`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from swapline.errors import SwaplineError
from swapline.faces.face import Face

SAME_PERSON_DISTANCE = 0.6


def _dlib_model_files() -> tuple[Path, Path]:
    # face_recognition_models imports pkg_resources, which new setuptools lacks: find its
    # data folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SwaplineError("identity encoder needs the 'identity' extra: pip install 'swapline[identity]'")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    shape = models / "shape_predictor_5_face_landmarks.dat"
    resnet = models / "dlib_face_recognition_resnet_model_v1.dat"
    for file in (shape, resnet):
        if not file.is_file():
            raise SwaplineError(f"{file}: dlib model file missing; reinstall face-recognition-models")
    return shape, resnet


class DlibFaceEncoder:
    """128-d descriptor of a face, from dlib's 5-point alignment and ResNet."""

    name = "dlib_resnet"

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise SwaplineError(
                "identity encoder needs the 'identity' extra: pip install 'swapline[identity]'"
            ) from exc
        shape, resnet = _dlib_model_files()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(shape))
        self._resnet = dlib.face_recognition_model_v1(str(resnet))

    def encode(self, image: np.ndarray, face: Face) -> np.ndarray:
        rgb = np.ascontiguousarray(image[:, :, 2::-1])
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        shape = self._shape(rgb, self._dlib.rectangle(x1, y1, x2, y2))
        return np.asarray(self._resnet.compute_face_descriptor(rgb, shape), np.float32)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
