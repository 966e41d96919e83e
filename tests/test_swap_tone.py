"""Tone and light from the target (Lab skin model, additive low-frequency transfer, highlights
compressed) and the seam the swap adds, on real dev-set photos."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from swapline.bench.quality import sharpness_ratio, tone_seam
from swapline.swap import MeshSwapper, MeshSwapSettings
from tests.conftest import load


@pytest.fixture(scope="module")
def faces(analyser):
    names = (
        "dev/jim_clyburn_1.jpg",
        "dev/zoe_lofgren_2.jpg",
        "dev/sydney_kamlager-dove_2.jpg",
        "astronaut.png",
        "dev/derrick_van_orden_1.jpg",
        "dev/frederica_wilson_2.jpg",
        "obama.jpg",
        "dev/mark_takano_1.jpg",
        "dev/marie_gluesenkamp_perez_1.jpg",
        "dev/mary_peltola_1.jpg",
        "dev/derrick_van_orden_2.jpg",
    )
    return {name: (load(name), analyser.faces(load(name))[0]) for name in names}


def painted_shine(image, face, amount):
    """image with a soft highlight of `amount` levels painted on the right cheek, and its weight."""
    cheek = face.landmarks[205, :2]
    iod = float(np.linalg.norm(face.landmarks[263, :2] - face.landmarks[33, :2]))
    spot = np.zeros(image.shape[:2], np.float32)
    cv2.circle(spot, (int(cheek[0]), int(cheek[1])), max(2, int(0.08 * iod)), 1.0, -1)
    spot = cv2.GaussianBlur(spot, (0, 0), 0.05 * iod)
    return np.clip(image.astype(np.float32) + amount * spot[..., None], 0, 255).astype(np.uint8), spot


def swap(faces, source, target, source_image=None, **settings):
    swapper = MeshSwapper(replace(MeshSwapSettings(), **settings))
    image, face = faces[source]
    out = faces[target][0].copy()
    assert swapper.swap(out, faces[target][1], swapper.register(image if source_image is None else source_image, face))
    return out


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("dev/jim_clyburn_1.jpg", "dev/zoe_lofgren_2.jpg"),  # dark source, pale target
        ("dev/sydney_kamlager-dove_2.jpg", "dev/jim_clyburn_1.jpg"),
        ("astronaut.png", "dev/derrick_van_orden_1.jpg"),  # pale source, white-bearded target
        ("astronaut.png", "dev/frederica_wilson_2.jpg"),  # pale source, dark target
    ],
)
def test_the_face_meets_its_surroundings_as_the_targets_did(faces, source, target):
    # the tone seam (CIEDE2000 across the oval) may exceed the target's own by <= 6
    image, face = faces[target]
    out = swap(faces, source, target)
    across, change = tone_seam(out, image, face)
    own, _ = tone_seam(image, image, face)
    assert across - own <= 6.0, (across, own, change)


def test_a_dark_source_on_a_pale_target_keeps_its_own_contrast(faces):
    # a light ratio of ~3 multiplied into the texture tripled pores and shine: now the detail
    # follows the light by its square root at most
    image, face = faces["dev/zoe_lofgren_2.jpg"]
    out = swap(faces, "dev/jim_clyburn_1.jpg", "dev/zoe_lofgren_2.jpg")
    assert sharpness_ratio(out, image, face) < 1.6


def test_the_sources_shine_is_compressed(faces):
    # a specular highlight painted on the source's cheek arrives lower than without the step
    image, face = faces["obama.jpg"]
    shiny, _ = painted_shine(image, face, 120.0)
    target = "astronaut.png"
    plain = swap(faces, "obama.jpg", target).astype(np.float32)
    with_shine = swap(faces, "obama.jpg", target, source_image=shiny).astype(np.float32)
    rise = float((with_shine - plain).mean(axis=2).max())
    kept = swap(faces, "obama.jpg", target, source_image=shiny, match_lighting=False).astype(np.float32)
    bare = swap(faces, "obama.jpg", target, match_lighting=False).astype(np.float32)
    lone = float((kept - bare).mean(axis=2).max())
    assert lone > 50, lone  # without the step the shine comes along (blurred a little by the warp)
    assert rise < 0.8 * lone, (rise, lone)  # measured 53 vs 68 (the old ratio transfer: 73)


def test_the_targets_highlight_is_laid_on_the_swapped_face(faces):
    # a lamp's glint painted on the target's cheek: the swapped cheek shows it (the scene's
    # light), where without the step only its blurred tone came through
    image, face = faces["astronaut.png"]
    shiny, spot = painted_shine(image, face, 90.0)
    source_image, source_face = faces["obama.jpg"]

    def rise(**settings):
        swapper = MeshSwapper(replace(MeshSwapSettings(), **settings))
        registered = swapper.register(source_image, source_face)
        outs = []
        for target in (image, shiny):
            out = target.copy()
            assert swapper.swap(out, face, registered)
            outs.append(out.astype(np.float32).mean(axis=2))
        return float((outs[1] - outs[0])[spot > 0.5].mean())

    relit, without = rise(), rise(target_highlights=False)
    assert relit > 15.0 and relit > without + 10.0, (relit, without)  # measured 20 vs 3.5


def test_a_ruddy_source_on_a_pale_target_does_not_turn_grey_green(faces):
    """mark_takano_1's eyelids and temples are much less red than his cheeks; that difference
    added in full to marie_gluesenkamp_perez_1's pale skin took it past grey into green round
    the eyes. Share of the target's skin in the oval (its a* at least 2: the fringe, brows and
    eyes left out) with a* below 2 after the swap (the source's eyes and brows count too),
    measured: unscaled 15.1%, scaled 10.0%."""
    from swapline.faces.topology import face_mesh

    image, face = faces["dev/marie_gluesenkamp_perez_1.jpg"]
    oval = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(face.landmarks[face_mesh().face_oval, :2]).astype(np.int32)], 1)

    def grey(pixels):
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2LAB)[..., 1].astype(np.float32) - 128.0 < 2.0

    skin = (oval > 0) & ~grey(image)
    source, target = "dev/mark_takano_1.jpg", "dev/marie_gluesenkamp_perez_1.jpg"
    scaled = float(grey(swap(faces, source, target))[skin].mean())
    unscaled = float(grey(swap(faces, source, target, scale_colour_detail=False))[skin].mean())
    assert unscaled > scaled + 0.03, (unscaled, scaled)  # the defect, as it was
    assert scaled < 0.12, scaled


def chroma_in(image, face, ring):
    """Median Lab chroma of image inside the convex hull of these landmarks."""
    area = np.zeros(image.shape[:2], np.uint8)
    hull = cv2.convexHull(face.landmarks[list(ring), :2].astype(np.float32))
    cv2.fillConvexPoly(area, np.round(hull).astype(np.int32), 1)
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    return float(np.median(np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)[area > 0]))


CHIN = (17, 200, 175, 152, 377, 148, 176, 400)  # below the lower lip, down to the chin
CHEEKS = ((50, 101, 118, 123), (280, 330, 347, 352))


@pytest.mark.parametrize("target", ["dev/derrick_van_orden_1.jpg", "dev/derrick_van_orden_2.jpg"])
def test_a_white_beard_lays_no_grey_veil_on_the_swapped_chin(faces, target):
    """A white beard on pale skin is within the skin's own colour spread, so it voted for the
    tone and the clean-shaven source's chin came out grey. Chin chroma over cheek chroma of the
    swap (mary_peltola_1's own chin reads about as colourful as her cheeks), measured: 0.68 /
    0.69 with skip_target_grey, 0.46 / 0.56 without."""
    image, face = faces[target]

    def ratio(out):
        return chroma_in(out, face, CHIN) / np.mean([chroma_in(out, face, cheek) for cheek in CHEEKS])

    kept = ratio(swap(faces, "dev/mary_peltola_1.jpg", target))
    veiled = ratio(swap(faces, "dev/mary_peltola_1.jpg", target, skip_target_grey=False))
    assert kept > 0.62 and kept > veiled + 0.1, (kept, veiled)
