"""Still images: EXIF rotation, grayscale, palette and alpha handled on the way in; metadata out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from swapline.errors import SwaplineError
from swapline.io.atomic import atomic_output
from swapline.trust.provenance import PROVENANCE_KEY

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_EXIF_IMAGE_DESCRIPTION = 0x010E
_EXIF_SOFTWARE = 0x0131


@dataclass(eq=False)
class LoadedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 BGR, upright (EXIF orientation applied)
    alpha: np.ndarray | None  # (H, W) uint8 when the file has transparency
    path: Path


def read_image(path: Path | str) -> LoadedImage:
    path = Path(path)
    if not path.exists():
        raise SwaplineError(f"{path}: no such file")
    if path.is_dir():
        raise SwaplineError(f"{path}: is a folder, not an image")
    if path.suffix.lower() not in FORMATS:
        raise SwaplineError(f"{path}: unsupported image format {path.suffix or '(none)'!r} (use jpg, png or webp)")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SwaplineError(f"{path}: not a readable image ({exc.__class__.__name__})") from exc
    alpha = None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.array(rgba.getchannel("A"))
        rgb = rgba.convert("RGB")
    else:
        rgb = image.convert("RGB")  # L, I;16, CMYK, P, ... all become 8-bit RGB
    pixels = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    if pixels.shape[0] < 8 or pixels.shape[1] < 8:
        raise SwaplineError(f"{path}: image is too small ({pixels.shape[1]}x{pixels.shape[0]})")
    return LoadedImage(pixels=pixels, alpha=alpha, path=path)


def check_output_path(output: Path | str, inputs: list[Path | str]) -> Path:
    """Refuse an output that would overwrite an input, has no known format, or has no folder."""
    output = Path(output)
    if output.suffix.lower() not in FORMATS:
        raise SwaplineError(f"{output}: unsupported output format {output.suffix or '(none)'!r} (use jpg, png or webp)")
    for item in inputs:
        item = Path(item)
        if output.resolve() == item.resolve() or (output.exists() and item.exists() and output.samefile(item)):
            raise SwaplineError(f"{output}: output would overwrite an input; choose another name")
    if not output.parent.resolve().is_dir():
        raise SwaplineError(f"{output}: folder {output.parent} does not exist")
    return output


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
