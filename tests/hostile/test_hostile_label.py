"""The label cannot be faked, removed, shrunk away or skipped; it survives crops and resizes."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from swapline.errors import SwaplineError
from swapline.trust import LabelSettings, LabelStamp, has_label
from swapline.trust.label import CORE_TEXT, MIN_PX, render_label
from tests.conftest import DATA, load


@pytest.mark.parametrize("text", [".", "\u200b", "Authentic photo, not edited"])
def test_the_label_text_cannot_be_replaced_from_the_cli(tmp_path, text):
    out = tmp_path / "out.png"
    args = ["swap", "-s", DATA / "obama.jpg", "-t", DATA / "biden2.jpg", "-o", out, "--label-text", text]
    result = subprocess.run([sys.executable, "-m", "swapline", *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 1 and "label text cannot be changed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_the_core_text_is_always_there():
    assert "AI-generated" in CORE_TEXT and "AI合成" in CORE_TEXT
    for settings in (LabelSettings(), LabelSettings(language="de"), LabelSettings(language="ja")):
        assert settings.lines[0] == CORE_TEXT
    with pytest.raises(TypeError):
        LabelSettings(text="Authentic photo")  # there is no way to set the text


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"min_px": 1}, "at least 14 px"), ({"size": 1e-4}, "at least 0.03"), ({"language": "xx"}, "language")],
)
def test_a_tiny_or_unknown_label_is_refused(changes, message):
    with pytest.raises(SwaplineError, match=message):
        LabelSettings(**changes)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (396, 900), (1920, 1080), (90, 400)])
def test_the_text_is_at_least_14_px_and_3_percent(width, height):
    label = render_label(LabelSettings(), width, height)
    rows = np.flatnonzero(label.text_mask.any(axis=1))
    # the glyph rows of one line span at least the minimum text height (ink is a bit less than the em)
    assert rows.max() - rows.min() + 1 >= 0.7 * max(MIN_PX, 0.03 * min(width, height))


@pytest.mark.parametrize("side", ["bottom", "top", "left", "right"])
def test_cropping_one_side_leaves_a_label(side):
    image = load("biden2.jpg")
    LabelStamp().apply(image)
    h, w = image.shape[:2]
    cut = {"bottom": np.s_[: int(h * 0.85)], "top": np.s_[int(h * 0.15) :]}.get(side)
    if cut is None:
        cut = np.s_[:, : int(w * 0.85)] if side == "right" else np.s_[:, int(w * 0.15) :]
    assert has_label(np.ascontiguousarray(image[cut]))


def test_a_resized_label_is_found_down_to_400_px():
    image = np.ascontiguousarray(cv2.resize(load("biden2.jpg"), (396, 900)))
    LabelStamp().apply(image)
    half = cv2.resize(image, (198, 450), interpolation=cv2.INTER_AREA)
    assert has_label(half)
    big = cv2.resize(load("obama.jpg"), (1600, 1200))
    LabelStamp().apply(big)
    assert has_label(cv2.resize(big, (533, 400), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("name", ["obama.jpg", "biden2.jpg", "astronaut.png", "obama_and_biden.jpg"])
def test_no_label_found_on_untouched_photos(name):
    assert not has_label(load(name))


def test_the_public_api_cannot_return_an_unlabelled_swap():
    from swapline.io import read_image
    from swapline.session import SwapSession

    session = SwapSession()
    assert not hasattr(session, "swapper")  # the swapper is internal to the session that stamps
    source = session.register_source(read_image(DATA / "obama.jpg").pixels)
    frame = read_image(DATA / "biden2.jpg").pixels
    session.swap_frame(frame, source)
    assert has_label(frame)
