"""A target's glasses: found on every framed pair in tests/data and on no bare face, and the
skin seen through them does not come back as pale ghost lenses on the swapped face."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from swapline.faces.topology import face_mesh, inter_ocular_distance
from swapline.swap import MeshSwapper, MeshSwapSettings
from swapline.swap.glasses import BRIDGE_RAMP, bridge_score, glasses_likelihood
from tests.conftest import DATA, load

FRAMED = {
    "derrick_van_orden_1.jpg",
    "eleanor_holmes_norton_1.jpg",
    "eleanor_holmes_norton_2.jpg",
    "grace_hopper_1.jpg",
    "jerry_nadler_1.jpg",
    "jerry_nadler_2.jpg",
    "jim_clyburn_1.jpg",
    "jim_clyburn_2.jpg",
    "raul_grijalva_1.jpg",
    "raul_grijalva_2.jpg",
    "sydney_kamlager-dove_1.jpg",
    "sydney_kamlager-dove_2.jpg",
    "zoe_lofgren_2.jpg",
}


def test_glasses_are_found_on_every_framed_pair_and_on_no_bare_face(analyser):
    # elizabeth_warren_1's rimless glasses have no bar across the nose: not found, and not
    # needed (their lenses barely change the skin's tone)
    likelihood = {}
    for path in sorted([*DATA.glob("*.jpg"), *DATA.glob("*.png"), *(DATA / "dev").glob("*.jpg")]):
        image = load(str(path.relative_to(DATA)))
        face = analyser.faces(image)[0]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        likelihood[path.name] = glasses_likelihood(gray, face.landmarks[:, :2], inter_ocular_distance(face.landmarks))
    assert len(likelihood) == 48
    assert min(likelihood[name] for name in FRAMED) > 0.8  # measured 0.91 at least
    assert max(v for name, v in likelihood.items() if name not in FRAMED) < 0.1  # measured 0 (biden2: 0)


def ghost(analyser, source_name, target_name, **settings):
    """Mean lightness of the swapped face where the target's frames were (dark pixels between
    the brows and the nose tip, away from the eyes and the face's edge) minus that of the skin
    round them: the frames' shape drawn again (as lens edges, as a tint) reads far from 0."""
    mesh = face_mesh()
    source, target = load(source_name), load(target_name)
    face = analyser.faces(target)[0]
    points, iod = face.landmarks[:, :2], inter_ocular_distance(face.landmarks)

    def disc(fraction):
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(fraction * iod) | 1,) * 2)

    oval = np.zeros(target.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(points[mesh.face_oval]).astype(np.int32)], 1)
    inner = cv2.erode(oval, disc(0.3)) > 0
    rows = np.arange(target.shape[0])[:, None]
    band = (rows > points[np.concatenate([mesh.left_eyebrow, mesh.right_eyebrow]), 1].max()) & (rows < points[4, 1])
    eyes = np.zeros(target.shape[:2], np.uint8)
    for ring in (mesh.left_eye, mesh.right_eye):
        cv2.fillPoly(eyes, [np.round(points[ring]).astype(np.int32)], 1)
    gray = cv2.cvtColor(target, cv2.COLOR_BGR2GRAY)
    frames = (gray < 60) & inner & band & (cv2.dilate(eyes, disc(0.15)) == 0)
    around = (cv2.dilate(frames.astype(np.uint8), disc(0.12)) > 0) & ~frames & inner & (gray >= 60)
    assert frames.sum() > 500 and around.sum() > 1000
    swapper = MeshSwapper(replace(MeshSwapSettings(), **settings))
    out = target.copy()
    assert swapper.swap(out, face, swapper.register(source, analyser.faces(source)[0]))
    lightness = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)[..., 0].astype(np.float32)
    return float(lightness[frames].mean() - lightness[around].mean())


@pytest.mark.parametrize("target", ["dev/sydney_kamlager-dove_1.jpg", "dev/jim_clyburn_2.jpg"])
def test_a_targets_glasses_leave_no_ghost_lenses(analyser, target):
    # measured: sydney_kamlager-dove_1 -2.8 (-8.1 with the lenses' skin voting), jim_clyburn_2
    # -1.1 (-4.6); the rest is the source's own shading under its brows
    assert abs(ghost(analyser, "astronaut.png", target)) < 4.0


def test_without_the_step_the_lenses_come_back(analyser):
    # the grey a lens lays on the skin is also left out by skip_target_grey: both off
    voting = ghost(
        analyser, "astronaut.png", "dev/sydney_kamlager-dove_1.jpg", skip_target_lenses=False, skip_target_grey=False
    )
    assert voting < -6.0, voting


def test_a_face_near_the_bar_does_not_flicker_between_frames(analyser):
    # raul_grijalva_1's thin frames score near the middle of the ramp; moved, scaled, turned
    # and re-encoded a little, as video frames are, its score spreads over a few levels, across
    # the ramp's middle: a threshold there would switch the tone round the eyes on and off from
    # frame to frame, the ramp moves it a little (measured: scores 40-45, likelihood sd 0.17)
    image = load("dev/raul_grijalva_1.jpg")
    rng = np.random.default_rng(0)
    scores, values, centre = [], [], (image.shape[1] / 2, image.shape[0] / 2)
    for _ in range(10):
        turn = cv2.getRotationMatrix2D(centre, rng.uniform(-2, 2), rng.uniform(0.95, 1.05))
        turn[:, 2] += rng.uniform(-2, 2, 2)
        frame = cv2.warpAffine(image, turn, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)
        frame = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR)
        face = analyser.faces(frame)[0]
        gray, iod = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), inter_ocular_distance(face.landmarks)
        scores.append(bridge_score(gray, face.landmarks[:, :2], iod))
        values.append(glasses_likelihood(gray, face.landmarks[:, :2], iod))
    middle = sum(BRIDGE_RAMP) / 2
    assert min(scores) < middle < max(scores), scores  # a threshold would flip
    assert np.std(values) < 0.25, values
