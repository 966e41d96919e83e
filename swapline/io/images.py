"""Still images: EXIF rotation, 16-bit, grey, palette, CMYK and alpha handled on the way in; metadata out."""

from __future__ import annotations

import errno
import json
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from swapline.errors import SwaplineError
from swapline.io.atomic import atomic_output
from swapline.io.paths import check_output_path as check_path
from swapline.trust.provenance import PROVENANCE_KEY

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_EXIF_IMAGE_DESCRIPTION = 0x010E
_EXIF_SOFTWARE = 0x0131


@dataclass(eq=False)
class LoadedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 BGR, upright (EXIF orientation applied)
    alpha: np.ndarray | None  # (H, W) uint8 when the file has transparency
    path: Path


# The largest input read_image decodes by default, checked from the header before any pixel is
# decoded. A 100 MP photo already takes 300 MB as BGR (plus working copies); far larger "photos"
# are decompression bombs (a few KB of PNG can declare 50000x50000), not faces to swap.
MAX_PIXELS = 100_000_000


def check_input_file(path: Path, what: str = "an image") -> None:
    """One line for an input that is missing, a folder, a symlink loop or cannot be looked at.

    Path.exists() calls a symlink loop "no such file" and Path.resolve() raises RuntimeError.
    """
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError) as exc:
        code = getattr(exc, "errno", None)
        if code == errno.ELOOP:
            raise SwaplineError(f"{path}: symlink loop") from None
        if code in (errno.ENOENT, errno.ENOTDIR):
            raise SwaplineError(f"{path}: no such file") from None
        raise SwaplineError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(mode):
        raise SwaplineError(f"{path}: is a folder, not {what}")


def read_image(path: Path | str, *, max_pixels: int | None = MAX_PIXELS) -> LoadedImage:
    """Read a JPEG, PNG or WebP upright as 8-bit BGR (and alpha).

    An image over `max_pixels` (None: no limit) is refused from its header, before decoding.
    """
    path = Path(path)
    check_input_file(path)
    if path.suffix.lower() not in FORMATS:
        raise SwaplineError(f"{path}: unsupported image format {path.suffix or '(none)'!r} (use jpg, png or webp)")
    try:
        with open(path, "rb") as fp, warnings.catch_warnings():
            # our limit replaces Pillow's: no DecompressionBombWarning on stderr between the two
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _decode(fp, path, max_pixels)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        if getattr(exc, "strerror", None):  # the file itself: permission, I/O error
            raise SwaplineError(f"{path}: cannot be read ({exc.strerror})") from exc
        raise SwaplineError(f"{path}: not a readable image ({exc.__class__.__name__})") from exc
    pixels, alpha = _to_bgr(image)
    return LoadedImage(pixels=pixels, alpha=alpha, path=path)


def _decode(fp: BinaryIO, path: Path, max_pixels: int | None) -> Image.Image:
    """Check the size from the header, then decode and turn upright."""
    opened = _open_header(fp)
    width, height = opened.size
    if max_pixels is not None and width * height > max_pixels:
        raise SwaplineError(
            f"{path}: image is {width}x{height} ({_megapixels(width * height)} MP), "
            f"over the {_megapixels(max_pixels)} MP limit"
        )
    if width < 8 or height < 8:
        raise SwaplineError(f"{path}: image is too small ({width}x{height})")
    opened.load()
    return ImageOps.exif_transpose(opened)


def _open_header(fp: BinaryIO) -> ImageFile.ImageFile:
    """Image.open for JPEG, PNG and WebP data without Pillow's size check: above twice its
    MAX_IMAGE_PIXELS that raises before the size can be read, so read_image's limit decides."""
    Image.init()  # registers the plugins (once)
    prefix = fp.read(16)
    for fmt in ("JPEG", "PNG", "WEBP"):
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is not None and (accept is None or accept(prefix) is True):
            fp.seek(0)
            return factory(fp, fp.name)
    fp.seek(0)
    return Image.open(fp)  # other data behind a known suffix: Pillow's own checks apply


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.1f}".removesuffix(".0") if mp >= 1 else f"{mp:.2g}"


def _to_bgr(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode as 8-bit BGR and alpha: deeper samples are scaled down, never clipped.

    Pillow's own conversion of 16-bit grey (I;16) to RGB clips at 255, leaving two grey levels.
    """
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[:, :, 2::-1]), np.ascontiguousarray(rgba[:, :, 3])
    if mode.startswith("I") or mode == "F":
        return cv2.cvtColor(_grey_to_8bit(np.asarray(image)), cv2.COLOR_GRAY2BGR), None
    rgb = np.asarray(image.convert("RGB"))  # L, 1, P, CMYK, YCbCr, ... are 8-bit already
    return np.ascontiguousarray(rgb[:, :, ::-1]), None


def _grey_to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit samples keep their top byte (>> 8). Modes I (32-bit) and F (float) declare no
    depth: they are scaled by the smallest usual range that holds them (0..1 for floats, 0..255,
    0..65535), else by their maximum; negative values become 0."""
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        return (values >> 8).astype(np.uint8)
    ranges = ([1.0] if values.dtype.kind == "f" else []) + [255.0, 65535.0]
    values = np.clip(values.astype(np.float32), 0, None)
    top = float(values.max(initial=0))
    full = next((r for r in ranges if top <= r), top)
    return np.rint(values * (255.0 / full)).astype(np.uint8)


def check_output_path(output: Path | str, inputs: list[Path | str]) -> Path:
    """An image output: jpg, png or webp, not an input, in a folder that exists."""
    return check_path(output, inputs, FORMATS)


def write_image(
    path: Path | str,
    pixels: np.ndarray,
    alpha: np.ndarray | None = None,
    provenance: dict | None = None,
    quality: int = 95,
) -> Path:
    """Write atomically; the provenance record goes into PNG text or EXIF metadata."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SwaplineError(f"{path}: unsupported output format {path.suffix!r}")
    rgb = np.ascontiguousarray(pixels[:, :, 2::-1])
    if alpha is not None and fmt != "JPEG":
        image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    else:
        image = Image.fromarray(rgb, "RGB")
    options: dict = {}
    if provenance is not None:
        record = json.dumps(provenance)  # ASCII: EXIF text fields are ASCII-only
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt(PROVENANCE_KEY, record)
            options["pnginfo"] = info
        else:
            exif = Image.Exif()
            exif[_EXIF_IMAGE_DESCRIPTION] = record
            exif[_EXIF_SOFTWARE] = provenance.get("generator", "swapline")
            options["exif"] = exif.tobytes()
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    try:
        with atomic_output(path) as tmp:
            image.save(tmp, format=fmt, **options)
    except OSError as exc:
        raise SwaplineError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def read_provenance(path: Path | str) -> dict | None:
    """The provenance record of an output written by swapline, or None."""
    with Image.open(path) as image:
        text = image.info.get(PROVENANCE_KEY)
        if text is None:
            text = image.getexif().get(_EXIF_IMAGE_DESCRIPTION)
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
