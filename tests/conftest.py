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


class LockstepSource:
    """A camera stand-in that hands out the next frame only once the sink has taken the last one.

    Deterministic pacing for pipeline tests: however busy the machine, no frame is overwritten,
    so counts can be asserted exactly. Pair it with LockstepSink (and a large max latency).
    """

    def __init__(self, images):
        import threading

        self._images = iter(images)
        self.turn = threading.Semaphore(1)

    def read(self):
        import time

        self.turn.acquire()
        image = next(self._images, None)
        return None if image is None else (image, time.monotonic())

    def close(self) -> None:
        pass


class LockstepSink:
    """Wraps a sink; each frame written lets the LockstepSource deliver the next."""

    def __init__(self, inner, source: LockstepSource):
        self.inner, self.source = inner, source

    def write(self, frame, stats) -> bool:
        keep_going = self.inner.write(frame, stats)
        self.source.turn.release()
        return keep_going

    def close(self) -> None:
        self.inner.close()
