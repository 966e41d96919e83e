import numpy as np
import pytest
from PIL import Image

from swapline.errors import SwaplineError
from swapline.io import check_output_path, read_image, read_provenance, write_image
from tests.conftest import DATA


def test_exif_rotation_is_applied(tmp_path):
    upright = Image.open(DATA / "obama.jpg")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone stores...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif.tobytes())
    loaded = read_image(path)
    assert loaded.pixels.shape[:2] == (upright.height, upright.width)


def test_grayscale_and_rgba_are_read_as_bgr(tmp_path):
    gray = tmp_path / "gray.png"
    Image.open(DATA / "obama.jpg").convert("L").save(gray)
    assert read_image(gray).pixels.shape[2] == 3 and read_image(gray).alpha is None
    rgba = tmp_path / "rgba.png"
    Image.open(DATA / "obama.jpg").convert("RGBA").save(rgba)
    loaded = read_image(rgba)
    assert loaded.alpha is not None and loaded.alpha.shape == loaded.pixels.shape[:2]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_written_outputs_carry_provenance(tmp_path, suffix):
    pixels = np.full((32, 48, 3), 100, np.uint8)
    path = write_image(tmp_path / f"out{suffix}", pixels, provenance={"ai_generated": True, "visible_label": "AI合成"})
    record = read_provenance(path)
    assert record == {"ai_generated": True, "visible_label": "AI合成"}
    assert not list(tmp_path.glob("*.partial"))


def test_output_checks(tmp_path):
    source = DATA / "obama.jpg"
    with pytest.raises(SwaplineError, match="overwrite an input"):
        check_output_path(source, [source])
    with pytest.raises(SwaplineError, match="unsupported output format"):
        check_output_path(tmp_path / "out.gif", [source])
    with pytest.raises(SwaplineError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.png", [source])


def test_corrupt_and_unsupported_inputs(tmp_path):
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes((DATA / "obama.jpg").read_bytes()[:300])
    with pytest.raises(SwaplineError, match="not a readable image"):
        read_image(corrupt)
    with pytest.raises(SwaplineError, match="unsupported image format"):
        read_image(DATA / "README.md")
    with pytest.raises(SwaplineError, match="no such file"):
        read_image(tmp_path / "missing.png")
