import numpy as np
import pytest

from swapline.errors import SwaplineError
from swapline.trust import LabelSettings, LabelStamp, has_label, label_score
from swapline.trust.label import CORNERS, OPPOSITE, render_label
from tests.conftest import load

PHOTOS = ["obama.jpg", "biden.jpg", "biden2.jpg", "obama3.jpg", "astronaut.png", "obama_and_biden.jpg"]


@pytest.mark.parametrize("name", PHOTOS)
def test_label_is_found_where_stamped_and_not_elsewhere(name):
    image = load(name)
    assert not has_label(image)
    LabelStamp().apply(image)
    assert has_label(image)


@pytest.mark.parametrize("corner", CORNERS)
def test_label_corner_is_configurable(corner):
    image = load("obama.jpg")
    settings = LabelSettings(corner=corner)
    LabelStamp(settings).apply(image)
    scores = {c: label_score(image, settings, c) for c in CORNERS}
    stamped = {corner, OPPOSITE[corner]}  # a second copy opposite, so a crop of one side keeps one
    assert all(scores[c] > 0.9 for c in stamped) and all(scores[c] < 0.55 for c in set(CORNERS) - stamped)


def test_label_survives_jpeg_compression():
    import cv2

    image = load("biden2.jpg")
    LabelStamp().apply(image)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert has_label(cv2.imdecode(encoded, cv2.IMREAD_COLOR))


def test_cjk_text_renders_as_distinct_glyphs():
    # A font without CJK glyphs draws the same empty box for every character ("tofu").
    from pathlib import Path

    from swapline.trust.label import DEFAULT_FONT, _text_mask

    a = _text_mask(("合合合合",), Path(DEFAULT_FONT), 24, 2) > 0.5
    b = _text_mask(("成成成成",), Path(DEFAULT_FONT), 24, 2) > 0.5
    assert a.sum() > 50 and b.sum() > 50
    assert a.shape == b.shape and (a != b).mean() > 0.05
    # and 合 has the glyph's strokes, not a hollow rectangle: ink is spread over its box
    assert 0.1 < a.mean() < 0.6


def test_label_size_scales_with_the_image():
    small = render_label(LabelSettings(), 320, 240).alpha.shape
    large = render_label(LabelSettings(), 1920, 1080).alpha.shape
    bigger = render_label(LabelSettings(size=0.07), 1920, 1080).alpha.shape
    assert large[0] > 2.5 * small[0] and bigger[0] > large[0]


def test_missing_glyph_is_a_clear_error(tmp_path):
    import shutil

    from fontTools.ttLib import TTFont

    from swapline.trust.label import DEFAULT_FONT

    font = TTFont(str(DEFAULT_FONT))  # the bundled font without its CJK glyphs
    for table in font["cmap"].tables:
        table.cmap = {k: v for k, v in table.cmap.items() if k < 0x3000}
    path = tmp_path / "latin.ttf"
    font.save(str(path))
    assert shutil.os.path.getsize(path) > 0
    with pytest.raises(SwaplineError, match="no glyph"):
        render_label(LabelSettings(font=path), 640, 480)


def test_every_translation_renders_with_the_bundled_font():
    from swapline.trust.label import TRANSLATIONS

    for language in TRANSLATIONS:
        label = render_label(LabelSettings(language=language), 640, 480)
        assert label.text_mask.sum() > 100


def test_label_on_transparent_image_is_opaque():
    image = np.zeros((200, 300, 3), np.uint8)
    alpha = np.zeros((200, 300), np.uint8)
    LabelStamp().apply(image, alpha)
    assert has_label(image)
    assert alpha.max() == 255


def test_label_fits_a_narrow_image():
    image = np.full((400, 90, 3), 128, np.uint8)
    LabelStamp().apply(image)
    assert has_label(image)
