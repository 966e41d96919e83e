"""The one place that imports c2pa-python (an optional extra) and configures it for offline use."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from types import ModuleType

from swapline.errors import SwaplineError
from swapline.trust.c2pa.settings import MISSING_EXTRA


def sdk() -> ModuleType | None:
    """The c2pa module, or None when the extra is not installed."""
    try:
        import c2pa
    except ImportError:
        return None
    return c2pa


def credentials_available() -> bool:
    """True when the 'c2pa' extra is installed, so outputs can be signed and checked."""
    return sdk() is not None


def require_sdk() -> ModuleType:
    module = sdk()
    if module is None:
        raise SwaplineError(MISSING_EXTRA)
    return module


def context(c2pa: ModuleType, thumbnails: bool = False, trust_anchors: str | None = None):
    """An SDK context that never goes online: no remote manifests, no OCSP."""
    config: dict = {
        "builder": {"thumbnail": {"enabled": thumbnails}},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    }
    if trust_anchors is not None:
        config["trust"] = {"user_anchors": trust_anchors}
    return c2pa.Context(c2pa.Settings.from_dict(config))


# What swapline writes, spelled out: mimetypes' answers depend on the system's mime.types.
_MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
}


def media_type(path: Path) -> str:
    """The MIME type the SDK is told; unknown types are hashed as plain bytes (sidecar)."""
    suffix = path.suffix.lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def embeddable(c2pa: ModuleType, mime: str) -> bool:
    """True when the SDK can put a manifest inside files of this type."""
    return mime.lower() in c2pa.Builder.get_supported_mime_types()
