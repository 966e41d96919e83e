"""Neural adapters run end to end through tiny ONNX models with the real signatures."""

import cv2
import numpy as np
import pytest

from swapline.errors import SwaplineError
from swapline.faces.neural_detectors import ScrfdDetector, YoloFaceDetector, hard_nms, letterbox
from swapline.models.loading import OnnxModel
from swapline.models.store import ModelStore
from swapline.runtime import SessionFactory
from swapline.swap.align import TEMPLATES, five_points, paste_back, warp_face
from swapline.swap.neural import (
    ArcFaceEncoder,
    BisenetParser,
    GfpganEnhancer,
    HyperswapSwapper,
    InswapperSwapper,
    SimSwapSwapper,
    XsegOccluder,
)
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
    assert bad.returncode == 1 and len(lines) == 1 and "not a swapper model swapline knows" in lines[0]
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


# -- HyperSwap, mask models, routing by signature ---------------------------------------------------


@pytest.fixture(scope="module")
def more_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("more_models")
    centre = np.zeros((256, 256), np.float32)
    centre[64:192, 64:192] = 1.0  # the model's own mask: the middle of the crop only
    right = np.zeros((256, 256), np.float32)
    right[:, 128:] = 1.0  # the occluder sees the face on the crop's right half only
    return {
        "hyperswap": synth.hyperswap(folder / "hyperswap.onnx", "identity"),
        "hyperswap_gray": synth.hyperswap(folder / "hyperswap_gray.onnx", "gray", centre),
        "occluder": synth.occluder(folder / "xseg.onnx", right),
        "parser": synth.parser(folder / "bisenet.onnx"),
        "scrfd": synth.scrfd(folder / "scrfd.onnx", seed=0, score_bias=-0.75),
    }


def test_hyperswap_takes_the_normed_identity_and_round_trips(photos, models, more_models, store, sessions):
    encoder = ArcFaceEncoder(models["arcface"], store, sessions)
    swapper = HyperswapSwapper(more_models["hyperswap"], encoder, store, sessions)
    image, face = photos["obama.jpg"]
    registered = swapper.register(image, face)
    assert registered.identity.shape == (1, 512)
    assert np.allclose(registered.identity[0], encoder.encode(image, face), atol=1e-6)  # no emap, no converter
    target, target_face = photos["biden2.jpg"]
    output = target.copy()
    assert swapper.swap(output, target_face, registered)  # [-1, 1] in and out: the face comes back
    x0, y0, x1, y1 = target_face.box.astype(int)
    inner = np.s_[y0 + 20 : y1 - 20, x0 + 20 : x1 - 20]
    assert np.abs(output[inner].astype(int) - target[inner].astype(int)).mean() < 6


def test_hyperswap_mask_output_limits_the_paste(photos, models, more_models, store, sessions):
    swapper = HyperswapSwapper(
        more_models["hyperswap_gray"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions
    )
    image, face = photos["biden2.jpg"]
    crop, matrix = warp_face(image, five_points(face), "arcface_128_v2", 256)
    output = image.copy()
    swapper.swap(output, face, swapper.register(*photos["obama.jpg"]))
    inverse = cv2.invertAffineTransform(matrix)

    def at(x, y):  # frame pixel of crop point (x, y)
        px, py = inverse @ np.array([x, y, 1.0])
        return int(round(py)), int(round(px))

    inside, outside = at(128, 100), at(40, 128)  # in the model's mask (mid-gray there); out of it
    assert np.abs(output[inside].astype(int) - 128).max() <= 3
    assert np.array_equal(output[outside], image[outside])  # outside its mask: the target untouched


def test_occluder_mask_keeps_occluded_pixels(photos, models, more_models, store, sessions):
    occluder = XsegOccluder(more_models["occluder"], store, sessions)
    crop = np.full((128, 128, 3), 90, np.uint8)
    mask = occluder.crop_mask(crop)
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert mask[:, :50].max() == 0.0 and mask[:, 80:].min() == 1.0  # softened only inside the face side
    image, face = photos["biden2.jpg"]
    frame_mask = occluder.mask(image, face)
    assert frame_mask.shape == image.shape[:2] and 0 < frame_mask.mean() < 0.5
    # a swapper with the occluder blends only where the face shows: the left of the crop stays
    swapper = InswapperSwapper(
        models["inswapper_gray"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions, (occluder,)
    )
    output = image.copy()
    swapper.swap(output, face, swapper.register(*photos["obama.jpg"]))
    _, matrix = warp_face(image, five_points(face), "arcface_128_v2", 128)
    inverse = cv2.invertAffineTransform(matrix)
    for x, changed in ((30, False), (100, True)):
        px, py = (inverse @ np.array([x, 64, 1.0])).round().astype(int)
        assert (not np.array_equal(output[py, px], image[py, px])) == changed


def test_parser_mask_is_the_face_classes(more_models, store, sessions):
    parser = BisenetParser(more_models["parser"], store, sessions)  # 3 outputs: only the first is read
    crop = np.zeros((200, 200, 3), np.uint8)
    crop[:, :100] = (40, 40, 230)  # red (BGR): class 1, skin
    crop[:, 100:] = (230, 40, 40)  # blue: class 0, background
    mask = parser.crop_mask(crop)
    assert mask.shape == (200, 200)
    assert mask[:, :80].min() == 1.0 and mask[:, 100:].max() == 0.0
    only_hair = BisenetParser(more_models["parser"], store, sessions, regions=(17,))
    assert only_hair.crop_mask(crop).max() == 0.0


def test_local_files_are_routed_by_signature(models, more_models, sessions):
    from swapline.models.signature import identify

    expected = {
        models["inswapper"]: ("swapper", "inswapper_128"),
        models["simswap"]: ("swapper", "simswap_256"),
        more_models["hyperswap"]: ("swapper", "hyperswap_1a_256"),
        more_models["scrfd"]: ("detector", "scrfd_2.5g"),
        more_models["occluder"]: ("masker", "xseg_3"),
        more_models["parser"]: ("masker", "bisenet_resnet_34"),
        models["arcface"]: ("recognizer", "w600k_r50"),
    }
    for path, (kind, name) in expected.items():
        found = identify(sessions.load(path), kind)
        assert found is not None and found.name == name, path.name
    assert identify(sessions.load(models["gfpgan"]), "swapper") is None


def test_fp16_twin_is_chosen_only_on_a_gpu():
    from swapline.models.registry import variant

    assert variant("inswapper_128", fp16=True) == "inswapper_128_fp16"
    assert variant("inswapper_128", fp16=False) == "inswapper_128"
    assert variant("simswap_256", fp16=True) == "simswap_256"  # no twin: itself
    assert variant("/some/file.onnx", fp16=True) == "/some/file.onnx"
    assert not SessionFactory().fp16  # CPU here: the fp32 model


def test_io_binding_path_gives_the_same_output_with_two_outputs(photos, models, more_models, store, sessions):
    swapper = HyperswapSwapper(
        more_models["hyperswap_gray"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions
    )
    source = swapper.register(*photos["obama.jpg"])
    image, face = photos["biden2.jpg"]
    plain = image.copy()
    swapper.swap(plain, face, source)
    swapper._init_binding(force=True)
    bound = image.copy()
    swapper.swap(bound, face, source)
    assert np.array_equal(bound, plain)


# -- detectors: letterbox and suppression as InsightFace does them ------------------------------------


def test_letterbox_truncates_and_maps_back_by_the_fitted_height():
    image = np.zeros((705, 1003, 3), np.uint8)
    canvas, scale = letterbox(image, 640)
    assert canvas.shape == (640, 640, 3)
    assert scale == 449 / 705  # int(640 * 705 / 1003) = int(449.85): InsightFace's det_scale, not 640 / 1003


def test_overlapping_detections_keep_the_best_box_unaveraged(tmp_path, store, sessions):
    counts = [(640 // s) ** 2 * 2 for s in (8, 16, 32)]
    scores = [np.zeros((n, 1)) for n in counts]
    boxes = [np.zeros((n, 4)) for n in counts]
    kps = [np.zeros((n, 10)) for n in counts]
    first, second = (5 * 40 + 10) * 2, (5 * 40 + 10) * 2 + 1  # two anchors of one cell, stride 16
    scores[1][first], scores[1][second] = 0.8, 0.9
    boxes[1][first] = [2, 3, 4, 5]
    boxes[1][second] = [2.5, 3, 4, 5]  # nearly the same box: suppressed, not blended in
    path = synth.constant_outputs(tmp_path / "scrfd.onnx", [1, 3, "H", "W"], scores + boxes + kps, "input.1")
    faces = ScrfdDetector(path, store, sessions).detect(np.zeros((480, 640, 3), np.uint8))
    assert len(faces) == 1 and faces[0].score == pytest.approx(0.9)
    assert np.allclose(faces[0].box, [160 - 40, 80 - 48, 160 + 64, 80 + 80])
    assert np.array_equal(hard_nms(np.array([[0, 0, 10, 10], [0, 0, 10, 10.0]]), np.array([0.7, 0.7]), 0.4, True), [0])


# -- registry: size and SHA-256 pinned per source -------------------------------------------------------


@pytest.fixture
def mirrors():
    from tests.test_model_store import Server

    servers = [Server(), Server()]
    yield servers
    for server in servers:
        server.close()


def _pinned_store(tmp_path, sources, **changes):
    import dataclasses

    from swapline.models.registry import spec

    model = dataclasses.replace(
        spec("w600k_mbf"), name="tiny", filename="tiny.onnx", urls=tuple(s.url for s in sources), pins=tuple(sources)
    )
    model = dataclasses.replace(model, **changes)
    return ModelStore(home=tmp_path, retries=0, backoff_s=0.0, models={"tiny": model})


def test_each_mirror_is_checked_against_its_own_digest(tmp_path, mirrors):
    import hashlib

    from swapline.models.registry import Source
    from tests.test_model_store import model_bytes

    first, second = mirrors
    second.body = model_bytes(1)  # the same file name, other bytes on the second host
    digests = [hashlib.sha256(s.body).hexdigest() for s in mirrors]
    sources = [Source(s.url, d, len(s.body)) for s, d in zip(mirrors, digests, strict=True)]
    first.default = "wrong"  # the first host sends bytes that match no pin: refused, the next is tried
    store = _pinned_store(tmp_path, sources)
    path = store.fetch("tiny")
    assert path.read_bytes() == second.body and len(second.requests) == 1
    assert not (tmp_path / "models" / "tiny.onnx.sha256").exists()  # pinned: nothing trusted on first use
    assert store.accepted_hashes("tiny") == frozenset(digests)
    OnnxModel("tiny", "recognizer", store=store, sessions=SessionFactory())  # loads: matches a pin
    path.write_bytes(model_bytes(2))  # same size, no pin's digest
    with pytest.raises(SwaplineError, match="changed since it was downloaded"):
        OnnxModel("tiny", "recognizer", store=store, sessions=SessionFactory())


def test_a_mirror_that_sends_a_wrong_file_is_reported_even_if_the_next_is_missing(tmp_path, mirrors):
    import hashlib

    from swapline.models.registry import Source

    first, second = mirrors
    first.default, second.default = "wrong", "404"
    sources = [Source(s.url, hashlib.sha256(s.body).hexdigest(), len(s.body)) for s in mirrors]
    with pytest.raises(SwaplineError, match="failed its SHA-256 check; removed"):
        _pinned_store(tmp_path, sources).fetch("tiny")
    assert len(second.requests) == 1  # the second mirror was tried


def test_a_digest_published_once_is_reported_not_enforced(tmp_path, mirrors, caplog):
    import hashlib
    import logging

    from swapline.models.registry import Source

    source = Source(mirrors[0].url, published_once="ab" * 32)
    store = _pinned_store(tmp_path, [source])
    with caplog.at_level(logging.WARNING, logger="swapline.models"):
        store.fetch("tiny")
    assert any("published once" in r.getMessage() for r in caplog.records)
    assert store.recorded_hash("tiny") == hashlib.sha256(mirrors[0].body).hexdigest()  # trust on first use


def test_a_stale_first_use_record_does_not_override_the_pins(tmp_path, mirrors):
    import hashlib

    from swapline.models.registry import Source
    from tests.test_model_store import model_bytes

    store = _pinned_store(tmp_path, [Source(mirrors[0].url)])  # unpinned: first use records the hash
    path = store.fetch("tiny")
    pinned = _pinned_store(tmp_path, [Source(mirrors[0].url, hashlib.sha256(model_bytes(3)).hexdigest())])
    assert pinned.accepted_hashes("tiny") == {hashlib.sha256(model_bytes(3)).hexdigest()}
    assert pinned.verify("tiny") == "checksum mismatch: removed" and not path.exists()


def test_registry_pins_every_published_digest():
    from swapline.models.registry import registry

    known = registry()
    assert known["inswapper_128"].source(known["inswapper_128"].urls[2]).sha256.startswith("e4a3f08c")
    assert len(known["inswapper_128"].pinned_digests) == 2  # facefusion's file and ezioruan's differ
    assert known["w600k_r50"].fully_pinned and len(known["w600k_r50"].pinned_digests) == 2
    assert not known["simswap_256"].fully_pinned
    assert known["simswap_256"].trust().startswith("first use (sha256 5b6374b2")
    assert known["arcface_converter_simswap"].trust() == "first use"
    assert known["inswapper_128"].trust().startswith("pinned sha256 a290273e…, 555 MB")
    for name in ("xseg_3", "bisenet_resnet_34", "hyperswap_1a_256"):
        assert known[name].fully_pinned, name


def test_models_list_says_how_each_download_is_checked():
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "400"}
    done = subprocess.run([sys.executable, "-m", "swapline", "models", "list"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") > 3}
    assert "pinned sha256 a290273e…, 555 MB" in rows["inswapper_128"]
    assert "first use" in rows["arcface_converter_simswap"]
    assert "published once" in rows["simswap_256"]


def test_a_gpu_session_loads_the_fp16_twin_unless_told_not_to(tmp_path):
    from swapline.runtime import RuntimeSettings

    gpu_build = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    offline = ModelStore(home=tmp_path, offline=True)  # nothing downloaded: the error names the file tried
    on_gpu = SessionFactory(RuntimeSettings(), available=gpu_build)
    with pytest.raises(SwaplineError, match="inswapper_128_fp16 is not downloaded"):
        InswapperSwapper("inswapper_128", None, offline, on_gpu)
    fp32 = SessionFactory(RuntimeSettings(prefer_fp16=False), available=gpu_build)
    with pytest.raises(SwaplineError, match="inswapper_128 is not downloaded"):
        InswapperSwapper("inswapper_128", None, offline, fp32)


def test_the_standin_float16_twin_keeps_float32_inputs_and_outputs_and_the_result(tmp_path):
    import onnxruntime as ort

    from swapline.bench.standin import to_fp16, write_standin_generator

    fp32 = write_standin_generator(tmp_path / "g.onnx", channels=8, blocks=1)
    fp16 = to_fp16(fp32, tmp_path / "g_fp16.onnx")
    feeds = {
        "target": RNG.uniform(0, 1, (1, 3, 128, 128)).astype(np.float32),
        "source": RNG.normal(size=(1, 512)).astype(np.float32),
    }
    runs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, fp16)]
    assert [i.type for i in runs[1].get_inputs()] == ["tensor(float)"] * 2
    assert runs[1].get_outputs()[0].type == "tensor(float)"
    (want,), (got,) = (r.run(None, feeds) for r in runs)
    assert got.dtype == np.float32 and np.abs(got - want).max() < 0.02
    import onnx

    kinds = {i.name: i.data_type for i in onnx.load(str(fp16)).graph.initializer}
    assert kinds.pop("emap") == onnx.TensorProto.FLOAT  # read by the latent code, not the graph
    assert onnx.TensorProto.FLOAT16 in kinds.values()
    assert onnx.TensorProto.FLOAT not in kinds.values()  # every weight the graph computes with is float16


def test_a_hand_in_front_stays_in_front_of_a_neural_swap(photos, models, store, sessions):
    """The hands a session finds (Face.hands) limit the paste-back of any generator."""
    from swapline.bench.composites import hand
    from swapline.faces.hands import HandFinder

    image, face = photos["biden2.jpg"]
    covered, mask = hand(image, face)
    xy = face.landmarks[:, :2]
    found = HandFinder(sessions).around(covered, xy.mean(axis=0), float(np.ptp(xy, axis=0).max()))
    assert len(found) == 1
    swapper = InswapperSwapper(
        models["inswapper_gray"], ArcFaceEncoder(models["arcface"], store, sessions), store, sessions
    )
    source = swapper.register(*photos["obama.jpg"])
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    changes = {}
    for hands in ((), tuple(h.points for h in found)):
        output = covered.copy()
        swapper.swap(output, face.replace(hands=hands), source)
        changes[len(hands)] = np.abs(output.astype(int) - covered.astype(int)).max(axis=2)
    assert np.percentile(changes[1][inner], 99) <= 2  # the hand kept
    assert changes[0][inner].mean() > 20  # without it the mid-gray generator paints over the hand
    assert changes[1][~mask].max() > 100  # and the rest of the face is still swapped
