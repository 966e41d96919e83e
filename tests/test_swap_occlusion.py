"""What stands in front of the target's face stays in front: objects composited over real dev-set
faces (a dark microphone-like cylinder over the chin, a coloured and a light grey card over a
cheek); and on clear portraits (beards, glasses, dark skin, hair over the face) nothing is found."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from swapline.bench.composites import card, dim_and_cool, grey_card, microphone, wide_card, wide_grey_card
from swapline.faces.topology import face_mesh, inter_ocular_distance
from swapline.swap import MeshSwapper, MeshSwapSettings
from swapline.swap.skin import target_hair, target_occluders
from tests.conftest import DATA, load

# Clear portraits the swap must leave exactly as without the step: beards (dark, grey, white),
# glasses (thin, heavy black), dark skin, hair over the forehead and down the side of the face,
# a headscarf, white hair.
CLEAR = (
    "dev/mark_takano_2.jpg",
    "dev/doris_matsui_1.jpg",
    "dev/greg_casar_1.jpg",
    "dev/maxwell_frost_2.jpg",
    "dev/derrick_van_orden_1.jpg",
    "dev/ami_bera_2.jpg",
    "dev/jim_clyburn_2.jpg",
    "dev/sydney_kamlager-dove_1.jpg",
    "dev/jasmine_crockett_1.jpg",
    "dev/marie_gluesenkamp_perez_1.jpg",
    "dev/ilhan_omar_2.jpg",
    "dev/zoe_lofgren_1.jpg",
)
# Targets of the object tests (source -> target): the original two, dark skin with a beard
# line, glasses with a grey-haired target, a moustache with glasses, pale skin with glasses.
PAIRS = (
    ("dev/grace_hopper_1.jpg", "dev/mark_takano_2.jpg"),
    ("dev/jim_clyburn_2.jpg", "dev/doris_matsui_1.jpg"),
    ("dev/nancy_pelosi_1.jpg", "dev/jim_clyburn_1.jpg"),
    ("dev/grace_hopper_1.jpg", "dev/eleanor_holmes_norton_2.jpg"),
    ("dev/doris_matsui_1.jpg", "dev/raul_grijalva_1.jpg"),
    ("dev/maxwell_frost_2.jpg", "dev/jerry_nadler_2.jpg"),  # pale skin: a grey card is as light
)


# Targets covered from above, and what covers them: a black fringe down to the brows, a grey
# headscarf's edge.
COVERED = (
    ("dev/marie_gluesenkamp_perez_1.jpg", "dark"),
    ("dev/doris_matsui_1.jpg", "dark"),
    ("dev/ilhan_omar_2.jpg", "grey"),
)
# Bald or short-haired targets, one with a blown highlight down a cheek (cory_booker_1).
BARE_FOREHEADS = (
    "dev/john_fetterman_1.jpg",
    "dev/cory_booker_1.jpg",
    "dev/jerry_nadler_1.jpg",
    "dev/derrick_van_orden_1.jpg",
)


@pytest.fixture(scope="module")
def dev_faces(analyser):
    names = set(CLEAR) | {name for pair in PAIRS for name in pair} | {"dev/sydney_kamlager-dove_1.jpg"}
    names |= {name for name, _ in COVERED} | set(BARE_FOREHEADS)
    result = {}
    for name in sorted(names):
        image = load(name)
        result[name] = (image, analyser.faces(image)[0])
    return result


def swapped(source, target_image, target_face, **settings):
    swapper = MeshSwapper(replace(MeshSwapSettings(), **settings))
    out = target_image.copy()
    assert swapper.swap(out, target_face, swapper.register(*source))
    return out


@pytest.mark.parametrize("make", [microphone, card, grey_card, wide_card, wide_grey_card])
@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_an_object_in_front_of_the_face_stays_in_front(dev_faces, make, source, target):
    """Cards and a microphone over a cheek or the chin; the wide cards also cover much of the
    cheeks and nose, where the skin's colour is sampled (the sample's other colour is left out)."""
    image, face = dev_faces[target]
    occluded, mask = make(image, face)
    # the object sits on the face: landmarks of the clean photo are where the face is
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # its pixels, edge left out
    out = swapped(dev_faces[source], occluded, face, target_occluders=True)
    kept = np.abs(out.astype(int) - occluded.astype(int)).max(axis=2)[inner]
    assert np.percentile(kept, 99) <= 2, make.__name__
    # without the step the swap paints over it
    over = swapped(dev_faces[source], occluded, face, target_occluders=False)
    assert np.abs(over.astype(int) - occluded.astype(int)).max(axis=2)[inner].mean() > 5
    # and the rest of the face was still swapped
    oval_change = np.abs(out.astype(int) - occluded.astype(int)).max(axis=2)[~mask].mean()
    assert oval_change > 1


@pytest.mark.parametrize("name", CLEAR)
def test_a_clear_face_has_no_occluders(dev_faces, name):
    # no object: the swap with the step on equals the swap without it
    image, face = dev_faces[name]
    a = swapped(dev_faces["dev/grace_hopper_1.jpg"], image, face, target_occluders=True)
    b = swapped(dev_faces["dev/grace_hopper_1.jpg"], image, face, target_occluders=False)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, name


def test_no_photo_in_the_test_data_has_occluders(analyser):
    """Every face of every photo in tests/data and tests/data/dev: under 1% of the oval flagged."""
    mesh = face_mesh()
    worst = {}
    for path in sorted([*DATA.glob("*.jpg"), *DATA.glob("*.png"), *(DATA / "dev").glob("*.jpg")]):
        image = load(str(path.relative_to(DATA)))
        for k, face in enumerate(analyser.faces(image)):
            points = face.landmarks[:, :2].astype(np.float32)
            flagged = target_occluders(image, points, mesh, inter_ocular_distance(face.landmarks)) > 0.5
            oval = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(oval, [np.round(points[mesh.face_oval]).astype(np.int32)], 1)
            worst[f"{path.name}#{k}"] = float(flagged[oval > 0].mean())
    assert len(worst) >= 45
    assert max(worst.values()) < 0.01, sorted(worst.items(), key=lambda item: -item[1])[:3]


CHEEKS = ([50, 101, 36, 205, 187, 123, 117, 118], [280, 330, 266, 425, 411, 352, 346, 347])


def cheek_colour(image, face):
    """Mean Lab colour of both cheeks (the mean is taken in RGB, then converted)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    for ring in CHEEKS:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(face.landmarks[ring, :2]).astype(np.int32)), 1)
    rgb = image[mask > 0][:, ::-1].astype(np.float64).mean(axis=0) / 255.0
    return rgb2lab(rgb[None, None])[0, 0]


@pytest.mark.parametrize("target", ["dev/jim_clyburn_1.jpg", "dev/sydney_kamlager-dove_1.jpg"])
def test_a_pale_source_on_dark_skin_in_dim_cool_light_keeps_the_targets_skin_colour(dev_faces, target):
    # dim and bluish: x0.45, blue x1.1, red x0.85; the swapped skin must not turn grey or lavender
    image, face = dev_faces[target]
    dark = dim_and_cool(image)
    out = swapped(dev_faces["dev/nancy_pelosi_1.jpg"], dark, face, target_occluders=True)
    difference = float(deltaE_ciede2000(cheek_colour(out, face), cheek_colour(dark, face)))
    assert difference < 6.0, difference  # the limit; measured 0.96 and 1.51
    assert np.abs(out.astype(int) - dark.astype(int)).max(axis=2).mean() > 0.5  # it did swap


def _chin(face, shape):
    """The lower face between the mouth corners, from under the lower lip to the chin."""
    lm = face.landmarks[:, :2]
    mask = np.zeros(shape[:2], bool)
    x0, x1 = int(lm[61, 0]), int(lm[291, 0])
    y0, y1 = int(lm[17, 1] + 0.2 * (lm[152, 1] - lm[17, 1])), int(lm[152, 1] - 0.1 * (lm[152, 1] - lm[17, 1]))
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("target", ["dev/greg_casar_1.jpg", "dev/derrick_van_orden_1.jpg"])
def test_the_targets_beard_stays_when_the_settings_keep_it(analyser, target):
    """A dark beard, and a white one on pale skin (as near the skin's colour as its own spread,
    but far less colourful: the colour rule alone kept none of it, 27 against 27)."""
    source = (load("astronaut.png"), analyser.faces(load("astronaut.png"))[0])
    bearded = load(target)
    face = analyser.faces(bearded)[0]
    chin = _chin(face, bearded.shape)

    def chin_change(**settings):
        # the outline held still: it moves the jaw, beard and all, toward the source's, which
        # changes the chin's pixels whether the beard is kept or not
        out = swapped(source, bearded, face, shape_outline=0.0, **settings)
        return float(np.median(np.abs(out.astype(int) - bearded.astype(int)).max(axis=2)[chin]))

    kept, replaced = chin_change(keep_target_beard=True), chin_change()
    assert replaced > 20  # by default the clean-shaven source's chin shows
    assert kept < replaced / 2, (kept, replaced)  # measured 12 against 46.5, 10 against 27


@pytest.mark.parametrize("target", ["obama.jpg", "dev/cory_booker_1.jpg", "astronaut.png"])
def test_a_clean_shaven_target_has_no_beard_to_keep(analyser, target):
    # measured 0 for each; the grey rule without its least size flagged the shade of a smile
    # line: 1.4% of obama.jpg's oval, 7.8% of cory_booker_1's
    source = (load("astronaut.png"), analyser.faces(load("astronaut.png"))[0])
    image = load(target)
    face = analyser.faces(image)[0]
    a = swapped(source, image, face, keep_target_beard=True)
    b = swapped(source, image, face)
    oval = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(face.landmarks[face_mesh().face_oval, :2]).astype(np.int32)], 1)
    changed = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 2
    assert changed[oval > 0].mean() < 0.005  # a few stray stubble-like pixels at most


def _oval(face, shape):
    oval = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(face.landmarks[face_mesh().face_oval, :2]).astype(np.int32)], 1)
    return oval > 0


def covering_pixels(image, face, kind):
    """The target's pixels inside the face oval and above the brows that are dark (a black
    fringe) or unsaturated (a grey scarf; skin is saturated), away from their edge by 0.05 IOD:
    a rule of the test's own, not the swapper's."""
    mesh = face_mesh()
    points = face.landmarks[:, :2]
    brows = points[np.concatenate([mesh.left_eyebrow, mesh.right_eyebrow]), 1].min()
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    pixels = hsv[..., 2] < 60 if kind == "dark" else hsv[..., 1] < 60
    region = _oval(face, image.shape) & (np.arange(image.shape[0])[:, None] < brows) & pixels
    size = int(0.1 * inter_ocular_distance(face.landmarks)) | 1
    return cv2.erode(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0


@pytest.mark.parametrize(("target", "kind"), COVERED)
def test_what_covers_the_targets_forehead_stays_in_front(dev_faces, target, kind):
    # a bald source: its forehead was pasted over the fringe up to a straight edge
    image, face = dev_faces[target]
    cover = covering_pixels(image, face, kind)
    assert cover.sum() >= 40
    source = dev_faces["dev/john_fetterman_1.jpg"]
    change = np.abs(swapped(source, image, face).astype(int) - image.astype(int)).max(axis=2)[cover]
    assert change.mean() <= 3 and (change <= 2).mean() >= 0.85, (change.mean(), (change <= 2).mean())
    # without the step the swap paints over it (measured 55-160 levels)
    over = swapped(source, image, face, keep_target_hair=False)
    assert np.abs(over.astype(int) - image.astype(int)).max(axis=2)[cover].mean() > 30


@pytest.mark.parametrize("name", BARE_FOREHEADS)
def test_a_bare_forehead_is_not_taken_for_hair(dev_faces, name):
    image, face = dev_faces[name]
    points = face.landmarks[:, :2].astype(np.float32)
    kept = target_hair(image, points, face_mesh(), inter_ocular_distance(face.landmarks)) > 0.5
    assert kept[_oval(face, image.shape)].mean() < 0.03  # measured 0.000-0.017


@pytest.mark.parametrize("target", ["biden2.jpg", "dev/jim_clyburn_1.jpg"])
def test_a_feed_keeps_a_card_that_hides_where_the_skin_is_sampled(target):
    """Six clear frames, then a card reaching from one cheek nearly to the other: on one frame
    its colour is most of the cheek-and-nose sample, and a still's swap paints it over. A feed
    learned the skin's colour on the clear frames (SkinTracker, Face.skin) and keeps the card
    in front from the second covered frame on."""
    from swapline.session import SwapSession

    image = load(target)
    session = SwapSession()
    covered, mask = card(image, session.find_faces(image)[0], reach=0.9)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    swapper = MeshSwapper()
    hopper = load("dev/grace_hopper_1.jpg")
    source = swapper.register(hopper, session.find_faces(hopper)[0])
    stream = session.stream()
    for n in range(12):
        frame = image if n < 6 else covered
        face = stream.update(frame, n / 30.0)[0].replace(hands=())
        assert face.skin is not None and face.skin.shape == (4, 3)
        if n < 7:
            continue
        out = frame.copy()
        swapper.swap(out, face, source)
        assert np.percentile(np.abs(out.astype(int) - frame.astype(int)).max(axis=2)[inner], 99) <= 2, n
        still = frame.copy()
        swapper.swap(still, face.replace(skin=None), source)
        assert np.percentile(np.abs(still.astype(int) - frame.astype(int)).max(axis=2)[inner], 99) > 50, n
