"""Neural adapters run end to end through tiny ONNX models with the real signatures."""

import cv2
import numpy as np
import pytest

from swapline.errors import SwaplineError
from swapline.faces.neural_detectors import ScrfdDetector, YoloFaceDetector
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory
from swapline.swap.align import TEMPLATES, five_points, paste_back, warp_face
from swapline.swap.neural import ArcFaceEncoder, GfpganEnhancer, InswapperSwapper, SimSwapSwapper
from tests import synthetic_models as synth

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    emap = RNG.normal(size=(512, 512)).astype(np.float32)
    arc_w = RNG.normal(size=(3, 512)).astype(np.float32)
    return {
        "emap": emap,
        "arc_w": arc_w,
        "arcface": synth.arcface(folder / "arcface.onnx", arc_w),
        "inswapper": synth.generator(folder / "inswapper.onnx", 128, "identity", emap),
        "inswapper_gray": synth.generator(folder / "inswapper_gray.onnx", 128, "gray", emap),
        "simswap": synth.generator(folder / "simswap.onnx", 256, "imagenet"),
        "converter": synth.linear(folder / "converter.onnx", np.eye(512) * 2.0),
        "gfpgan": synth.image_identity(folder / "gfpgan.onnx", 512),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ModelStore(home=tmp_path_factory.mktemp("home"), offline=True)


@pytest.fixture(scope="module")
def sessions():
    return SessionFactory()


def test_alignment_matches_an_independent_reference(photos):
    image, face = photos["obama.jpg"]
    points = five_points(face)
    crop, matrix = warp_face(image, points, "arcface_112_v2", 112)
    reference, _ = cv2.estimateAffinePartial2D(points, TEMPLATES["arcface_112_v2"], method=cv2.LMEDS)
    assert np.abs(matrix - reference).max() < 0.05 * np.abs(reference).max()
    # the eyes land on the template's eyes
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.linalg.norm(mapped[:2] - TEMPLATES["arcface_112_v2"][:2], axis=1).max() < 3


def test_arcface_encoder_preprocessing_matches_numpy(photos, models, store, sessions):
    image, face = photos["biden.jpg"]
    encoder = ArcFaceEncoder(models["arcface"], store, sessions)
    crop, _ = warp_face(image, five_points(face), "arcface_112_v2", 112)
    rgb = crop[:, :, ::-1].astype(np.float64)
    expected = (((rgb - 127.5) / 127.5).mean(axis=(0, 1)) @ models["arc_w"]).astype(np.float64)
    expected /= np.linalg.norm(expected)
    got = encoder.encode(image, face)
    assert np.allclose(got, expected, atol=1e-4) and abs(np.linalg.norm(got) - 1) < 1e-5


def test_inswapper_latent_uses_the_last_initializer(photos, models, store, sessions):
    encoder = ArcFaceEncoder(models["arcface"], store, sessions)
    swapper = InswapperSwapper(models["inswapper"], encoder, store, sessions)
    assert np.array_equal(swapper.emap, models["emap"])
    image, face = photos["obama.jpg"]
    registered = swapper.register(image, face)
    expected = encoder.encode(image, face) @ models["emap"]
    assert np.allclose(registered.identity[0], expected / np.linalg.norm(expected), atol=1e-5)


def test_identity_generator_round_trips_the_face(photos, models, store, sessions):
    # an identity "generator": align -> normalise -> model -> denormalise -> paste back must
    # give the original pixels back (up to two bilinear resamplings)
    swapper = InswapperSwapper(models["inswapper"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions)
    image, face = photos["biden2.jpg"]
    source = swapper.register(*photos["obama.jpg"])
    output = image.copy()
    assert swapper.swap(output, face, source)
    x0, y0, x1, y1 = face.box.astype(int)
    inner = np.s_[y0 + 20 : y1 - 20, x0 + 20 : x1 - 20]
    assert np.abs(output[inner].astype(int) - image[inner].astype(int)).mean() < 6


def test_generator_output_is_pasted_on_the_face_only(photos, models, store, sessions):
    swapper = InswapperSwapper(
        models["inswapper_gray"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions
    )
    image, face = photos["biden2.jpg"]
    output = image.copy()
    swapper.swap(output, face, swapper.register(*photos["obama.jpg"]))
    centre = np.round(five_points(face)[2]).astype(int)  # the nose tip becomes mid-gray (0.5 x 255)
    assert np.abs(output[centre[1] - 3 : centre[1] + 3, centre[0] - 3 : centre[0] + 3].astype(int) - 128).max() <= 2
    changed = np.abs(output.astype(int) - image.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    # only the aligned crop's footprint changed, and the open mouth kept the target's pixels
    assert xs.min() > face.box[0] - face.width and xs.max() < face.box[2] + face.width
    mouth = face.landmarks[[13, 14], :2].mean(axis=0).round().astype(int)
    assert not changed[mouth[1], mouth[0]] or np.abs(output[mouth[1], mouth[0]].astype(int) - 128).max() > 10


def test_simswap_uses_the_converter_and_round_trips(photos, models, store, sessions):
    encoder = ArcFaceEncoder(models["arcface"], store, sessions)
    swapper = SimSwapSwapper(models["simswap"], encoder, models["converter"], store, sessions)
    image, face = photos["obama.jpg"]
    registered = swapper.register(image, face)
    raw = encoder.raw_embedding(image, face)
    assert np.allclose(registered.identity[0], raw / np.linalg.norm(raw), atol=1e-5)  # 2x then normalised
    target, target_face = photos["biden2.jpg"]
    output = target.copy()
    swapper.swap(output, target_face, registered)
    x0, y0, x1, y1 = target_face.box.astype(int)
    inner = np.s_[y0 + 20 : y1 - 20, x0 + 20 : x1 - 20]
    assert np.abs(output[inner].astype(int) - target[inner].astype(int)).mean() < 6


def test_gfpgan_identity_enhancer_leaves_the_face(photos, models, store, sessions):
    enhancer = GfpganEnhancer(models["gfpgan"], store, sessions)
    image, face = photos["biden2.jpg"]
    output = image.copy()
    assert enhancer.enhance(output, face)
    x0, y0, x1, y1 = face.box.astype(int)
    assert np.abs(output[y0:y1, x0:x1].astype(int) - image[y0:y1, x0:x1].astype(int)).mean() < 4


def test_wrong_model_file_is_refused_with_expected_and_found(models, store, sessions):
    with pytest.raises(SwaplineError) as error:
        InswapperSwapper(models["arcface"], None, store, sessions)
    message = str(error.value)
    assert "not a inswapper_128 model" in message
    assert "expected target[1,3,128,128], source[1,512]" in message and "found input.1[?,3,112,112]" in message


def test_paste_back_touches_only_the_face_rectangle():
    frame = np.zeros((400, 600, 3), np.uint8)
    crop = np.full((128, 128, 3), 200, np.uint8)
    matrix = np.array([[0.5, 0.0, -100.0], [0.0, 0.5, -50.0]])  # crop covers x 200..456, y 100..356
    paste_back(frame, crop, matrix, np.ones((128, 128), np.float32))
    ys, xs = np.nonzero(frame[..., 0])
    assert xs.min() >= 199 and xs.max() <= 456 and ys.min() >= 99 and ys.max() <= 356


def test_scrfd_decoding(tmp_path, store, sessions):
    # one confident anchor at stride 16, cell (x=10, y=5), anchor 0: centre (160, 80)
    counts = [(640 // s) ** 2 * 2 for s in (8, 16, 32)]
    scores = [np.zeros((n, 1)) for n in counts]
    boxes = [np.zeros((n, 4)) for n in counts]
    kps = [np.zeros((n, 10)) for n in counts]
    index = (5 * 40 + 10) * 2
    scores[1][index] = 0.9
    boxes[1][index] = [2, 3, 4, 5]  # distances in strides: left, top, right, bottom
    kps[1][index] = [-1, -1, 1, -1, 0, 0, -1, 1, 1, 1]
    path = synth.constant_outputs(tmp_path / "scrfd.onnx", [1, 3, "H", "W"], scores + boxes + kps, "input.1")
    detector = ScrfdDetector(path, store, sessions)
    image = np.zeros((480, 640, 3), np.uint8)  # letterbox scale 1
    faces = detector.detect(image)
    assert len(faces) == 1
    assert np.allclose(faces[0].box, [160 - 32, 80 - 48, 160 + 64, 80 + 80])
    assert np.allclose(faces[0].keypoints[0], [160 - 16, 80 - 16]) and faces[0].score == pytest.approx(0.9)


def test_yoloface_decoding(tmp_path, store, sessions):
    raw = np.zeros((1, 20, 8400))
    raw[0, :5, 100] = [320, 200, 100, 120, 0.8]
    raw[0, 5:20, 100] = [300, 180, 1, 340, 180, 1, 320, 200, 1, 305, 230, 1, 335, 230, 1]
    path = synth.constant_outputs(tmp_path / "yolo.onnx", [1, 3, 640, 640], [raw], "images")
    detector = YoloFaceDetector(path, store, sessions)
    image = np.zeros((1280, 1280, 3), np.uint8)  # letterbox scale 0.5
    faces = detector.detect(image)
    assert len(faces) == 1
    assert np.allclose(faces[0].box, np.array([270, 140, 370, 260]) * 2)
    assert np.allclose(faces[0].keypoints[2], [640, 400])


def run_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "swapline", *map(str, args)], capture_output=True, text=True)


def test_cli_swaps_through_local_model_files(models, tmp_path):
    from tests.conftest import DATA

    def swap(out, *models_args):
        return run_cli("swap", "-s", DATA / "obama.jpg", "-t", DATA / "biden2.jpg", "-o", out, *models_args)

    out = tmp_path / "neural.png"
    ok = swap(
        out,
        "--offline",
        "--swapper",
        models["inswapper_gray"],
        "--encoder",
        models["arcface"],
        "--enhancer",
        models["gfpgan"],
    )
    assert ok.returncode == 0, ok.stderr
    output = cv2.imread(str(out))
    target = cv2.imread(str(DATA / "biden2.jpg"))
    assert np.abs(output.astype(int) - target.astype(int)).mean() > 1  # the gray generator was pasted
    bad = swap(tmp_path / "x.png", "--swapper", models["gfpgan"], "--encoder", models["arcface"])
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 1 and len(lines) == 1 and "not a inswapper_128 model" in lines[0]
    offline = swap(tmp_path / "y.png", "--swapper", "inswapper_128", "--offline")
    assert offline.returncode == 1 and "--offline is set; place the file there by hand" in offline.stderr


def test_io_binding_path_gives_the_same_output(photos, models, store, sessions):
    swapper = InswapperSwapper(models["inswapper"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions)
    source = swapper.register(*photos["obama.jpg"])
    crop = photos["biden2.jpg"][0][100:228, 300:428].copy()
    plain = swapper.generate(crop, source)
    swapper._init_binding(force=True)  # the GPU path, with the identity bound as an OrtValue
    assert swapper.io_binding
    assert np.array_equal(swapper.generate(crop, source), plain)
    assert np.array_equal(swapper.generate(crop, source), plain)  # cached device value reused
