import cv2
import numpy as np
import pytest
from PIL import Image

from swapline.errors import SwaplineError
from swapline.io import check_output_path, read_image, read_provenance, write_image
from swapline.io.images import _to_bgr
from tests.conftest import DATA, load


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


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _write_16bit_grey(path):
    cv2.imwrite(str(path), _grey(load("obama.jpg")).astype(np.uint16) * 257)


def _write_16bit_colour(path):
    cv2.imwrite(str(path), load("obama.jpg").astype(np.uint16) * 257)


def _write_cmyk_jpeg(path):
    Image.open(DATA / "obama.jpg").convert("CMYK").save(path, quality=95)


def _write_palette(path):
    Image.open(DATA / "obama.jpg").convert("P", palette=Image.Palette.ADAPTIVE).save(path)


def _write_grey_alpha(path):
    Image.open(DATA / "obama.jpg").convert("LA").save(path)


@pytest.mark.parametrize(
    ("name", "write", "grey", "tolerance"),
    [
        ("grey16.png", _write_16bit_grey, True, 0.5),  # Pillow's own I;16 -> RGB clips to two levels
        ("colour16.png", _write_16bit_colour, False, 0.5),
        ("cmyk.jpg", _write_cmyk_jpeg, False, 2.0),
        ("palette.png", _write_palette, False, 4.0),
        ("grey_alpha.png", _write_grey_alpha, True, 0.5),
    ],
)
def test_deep_and_unusual_modes_read_like_the_8bit_original(tmp_path, analyser, name, write, grey, tolerance):
    path = tmp_path / name
    write(path)
    loaded = read_image(path)
    original = load("obama.jpg")
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == original.shape
    got, want = (_grey(loaded.pixels), _grey(original)) if grey else (loaded.pixels, original)
    assert np.abs(got.astype(int) - want).mean() <= tolerance
    if grey:  # three equal channels
        assert np.array_equal(loaded.pixels[:, :, 0], loaded.pixels[:, :, 2])
    assert (loaded.alpha is not None) == (name == "grey_alpha.png")
    assert analyser.faces(loaded.pixels)


def test_16bit_grey_keeps_exif_rotation(tmp_path):
    grey16 = _grey(load("obama.jpg")).astype(np.uint16) * 257
    stored = Image.fromarray(grey16).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone16.png"
    stored.save(path, exif=exif.tobytes())
    loaded = read_image(path)
    assert np.abs(loaded.pixels[:, :, 1].astype(int) - (grey16 >> 8)).max() <= 1


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32bit_int_and_float_grey_are_scaled_by_their_range(mode):
    grey = _grey(load("obama.jpg"))
    values = grey.astype(np.int32) * 257 if mode == "I" else grey.astype(np.float32) / 255
    image = Image.fromarray(values)
    assert image.mode == mode
    pixels, alpha = _to_bgr(image)
    assert alpha is None and pixels.dtype == np.uint8
    assert np.abs(pixels[:, :, 0].astype(int) - grey).max() <= 1
