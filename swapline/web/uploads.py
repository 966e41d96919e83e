"""Source photos sent by the page: checked, decoded and kept in memory only (never written to disk)."""

from __future__ import annotations

import io
import secrets
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from swapline.errors import SwaplineError

# Kept sources are scaled down to this longest side: plenty for any swapper's crop, and a few of
# them fit in memory whatever size the uploads were.
KEEP_SIDE = 2048
_SIGNATURES = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}


class UploadRefused(SwaplineError):
    """An upload the server will not take; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def _kind(data: bytes) -> str | None:
    for magic, kind in _SIGNATURES.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_upload(data: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A JPEG, PNG or WebP upload as upright BGR, with read_image's checks (the pixel limit is
    read from the header, before anything is decoded)."""
    from swapline.io.images import _decode, _to_bgr  # read_image's own steps, on bytes instead of a path

    if len(data) > max_bytes:
        raise UploadRefused(f"the photo is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit", 413)
    kind = _kind(data)
    if kind is None:
        raise UploadRefused("not a JPEG, PNG or WebP photo", 415)
    buffer = io.BytesIO(data)
    buffer.name = f"photo.{kind}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _decode(buffer, Path(buffer.name), max_pixels)
        pixels, _alpha = _to_bgr(image)
    except SwaplineError as exc:
        raise UploadRefused(str(exc), 413 if "limit" in str(exc) else 422) from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise UploadRefused(f"not a readable photo ({exc.__class__.__name__})") from None
    scale = KEEP_SIDE / max(pixels.shape[:2])
    if scale < 1.0:
        pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return pixels


@dataclass(frozen=True, eq=False)
class SourcePhoto:
    pixels: np.ndarray  # BGR, at most KEEP_SIDE on its longest side
    box: tuple[float, float, float, float]  # the face that will be used (the largest), in pixels

    def to_json(self, source_id: str) -> dict:
        height, width = self.pixels.shape[:2]
        return {"source": source_id, "width": width, "height": height, "box": [round(v, 1) for v in self.box]}


class SourcePhotos:
    """Uploaded photos by id, in memory; the least recently used go when there are too many."""

    def __init__(self, limit: int = 8):
        self.limit = limit
        self._photos: OrderedDict[str, SourcePhoto] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, photo: SourcePhoto) -> str:
        source_id = secrets.token_urlsafe(12)
        with self._lock:
            self._photos[source_id] = photo
            while len(self._photos) > self.limit:
                self._photos.popitem(last=False)
        return source_id

    def get(self, source_id: object) -> SourcePhoto:
        with self._lock:
            photo = self._photos.get(source_id) if isinstance(source_id, str) else None
            if photo is None:
                raise UploadRefused("unknown source photo: choose the photo again", 404)
            self._photos.move_to_end(source_id)
            return photo
