"""Our adapters against InsightFace's own classes (insightface 2.1: INSwapper, ArcFaceONNX, SCRFD), on
the same synthetic models (the real input/output names and shapes, random weights), the same photo
and the same keypoints. Needs `pip install insightface==2.1 --no-deps scikit-image tqdm`; skipped
where insightface is not installed.

Where the two differ, by design:
- the generated face: InsightFace truncates (astype(uint8) of 255 x output), we round, and its input
  blob is x * (1/255) where ours is x / 255; so a pixel may differ by one level, never more;
- the aligned crop's border: InsightFace pads with black, we replicate the edge (the faces here are
  well inside the photo, so the crops are identical).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

insightface = pytest.importorskip("insightface")

from insightface.app.common import Face as ReferenceFace  # noqa: E402
from insightface.model_zoo import SCRFD, ArcFaceONNX  # noqa: E402
from insightface.model_zoo.inswapper import INSwapper  # noqa: E402
from insightface.utils import face_align  # noqa: E402

from swapline.bench.standin import write_standin_generator  # noqa: E402
from swapline.faces.face import Face  # noqa: E402
from swapline.faces.neural_detectors import ScrfdDetector  # noqa: E402
from swapline.models.store import ModelStore  # noqa: E402
from swapline.runtime import RuntimeSettings, SessionFactory  # noqa: E402
from swapline.swap.align import five_points, warp_face  # noqa: E402
from swapline.swap.neural import ArcFaceEncoder, InswapperSwapper, NeuralSource  # noqa: E402
from tests import synthetic_models as synth  # noqa: E402
from tests.conftest import load  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conformance")
    weights = np.random.default_rng(3).normal(size=(3, 512)).astype(np.float32)
    return {
        "arcface": synth.arcface(folder / "w600k_r50.onnx", weights),
        # inswapper_128's names and shapes, random weights, the 512x512 emap as last initializer
        "inswapper": write_standin_generator(folder / "inswapper_128.onnx", channels=8, blocks=1, seed=5),
        "scrfd": synth.scrfd(folder / "scrfd_2.5g.onnx", seed=0, score_bias=-0.75),
        "store": ModelStore(home=folder, offline=True),
        "sessions": SessionFactory(RuntimeSettings(providers=("CPUExecutionProvider",))),
    }


@pytest.fixture(scope="module")
def target(photos):
    """A photo and the 5 keypoints both implementations are given (from our landmarks)."""
    image, face = photos["obama.jpg"]
    kps = five_points(face).astype(np.float32)
    return image, kps, Face(box=face.box, score=1.0, keypoints=kps)


def test_alignment_matrix_matches_insightface(target):
    image, kps, face = target
    for template, size in (("arcface_112_v2", 112), ("arcface_128_v2", 128), ("arcface_128_v2", 256)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = face_align.estimate_norm(kps, size)
        crop, matrix = warp_face(image, five_points(face), template, size)
        assert np.allclose(matrix, reference, rtol=0, atol=1e-9), template
        assert np.array_equal(crop, cv2.warpAffine(image, reference, (size, size), borderValue=0.0))


def test_arcface_embedding_matches_insightface(target, models):
    image, kps, face = target
    reference = ArcFaceONNX(str(models["arcface"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference.get(image, ReferenceFace(kps=kps))
    ours = ArcFaceEncoder(models["arcface"], models["store"], models["sessions"]).raw_embedding(image, face)
    assert np.abs(ours - expected).max() < 1e-5 * max(1.0, np.abs(expected).max())
    assert abs(float(np.linalg.norm(ours)) - float(np.linalg.norm(expected))) < 1e-4


def test_inswapper_latent_and_crop_match_insightface(target, models, photos):
    image, kps, face = target
    source_image, source_face = photos["biden.jpg"]
    source_kps = five_points(source_face).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedding = ArcFaceONNX(str(models["arcface"])).get(source_image, ReferenceFace(kps=source_kps))
        reference = INSwapper(str(models["inswapper"]))
    ref_source = ReferenceFace(kps=source_kps, embedding=embedding)
    expected_latent = ref_source.normed_embedding.reshape(1, -1) @ reference.emap
    expected_latent /= np.linalg.norm(expected_latent)

    encoder = ArcFaceEncoder(models["arcface"], models["store"], models["sessions"])
    swapper = InswapperSwapper(models["inswapper"], encoder, models["store"], models["sessions"])
    source = swapper.register(source_image, Face(box=source_face.box, score=1.0, keypoints=source_kps))
    assert np.abs(source.identity - expected_latent).max() < 1e-5

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_crop, expected_matrix = reference.get(image, ReferenceFace(kps=kps), ref_source, paste_back=False)
    crop, matrix = warp_face(image, five_points(face), "arcface_128_v2", 128)
    ours = swapper.generate(crop, NeuralSource(expected_latent.astype(np.float32), face))
    assert np.allclose(matrix, expected_matrix, rtol=0, atol=1e-9)
    difference = np.abs(ours.astype(int) - expected_crop.astype(int))
    assert difference.max() <= 1  # rounding (ours) against truncation (InsightFace)
    assert difference.mean() < 0.75  # and mostly the same level: a real difference would show here


def _odd_sized(name: str) -> np.ndarray:
    """A crop whose letterbox side is fractional (705 x 1003: 449.85 px), where int() and round() differ."""
    return np.ascontiguousarray(load(name)[:705, :1003])


@pytest.mark.parametrize("name", ["obama_and_biden.jpg", "biden2.jpg"])
def test_scrfd_boxes_and_keypoints_are_identical_to_insightface(models, name):
    image = _odd_sized(name) if name == "obama_and_biden.jpg" else load(name)
    reference = SCRFD(str(models["scrfd"]))
    reference.prepare(-1)
    expected_boxes, expected_kps = reference.detect(image, input_size=(640, 640))
    detector = ScrfdDetector(models["scrfd"], models["store"], models["sessions"], max_faces=100_000)
    faces = detector.detect(image)
    assert len(expected_boxes) > 20  # enough boxes, many of them overlapping, for NMS to matter
    assert len(faces) == len(expected_boxes)
    # same boxes, keypoints and scores, to the last bit; our order is largest first, theirs best first
    ours = sorted(tuple(f.box) + (f.score,) + tuple(f.keypoints.ravel()) for f in faces)
    theirs = sorted(tuple(b) + tuple(k.ravel()) for b, k in zip(expected_boxes, expected_kps, strict=True))
    assert np.array_equal(np.array(ours, np.float32), np.array(theirs, np.float32))
