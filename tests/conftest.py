from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def load(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


@pytest.fixture(scope="session")
def analyser():
    from swapline.faces import FaceAnalyser

    return FaceAnalyser()


@pytest.fixture(scope="session")
def encoder():
    from swapline.faces.encoder import DlibFaceEncoder

    return DlibFaceEncoder()


@pytest.fixture(scope="session")
def photos(analyser):
    """name -> (image, largest face with landmarks) for every single-person test photo."""
    names = [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "obama_partial_face.jpg",
        "biden.jpg",
        "biden2.jpg",
        "astronaut.png",
    ]
    result = {}
    for name in names:
        image = load(name)
        faces = analyser.faces(image)
        assert faces, name
        result[name] = (image, faces[0])
    return result
