"""The visible AI-generated label stamped on every output image and frame.

The label is rendered once per frame size (Pillow + a bundled CJK-capable font, since OpenCV's
Hershey fonts cannot draw 合成) and composited onto a small corner region of each frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from swapline.errors import SwaplineError

DEFAULT_FONT = Path(__file__).resolve().parent / "fonts" / "wqy-microhei.ttf"
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@dataclass(frozen=True)
class LabelSettings:
    text: str = "AI-generated · AI合成"
    corner: str = "bottom-right"
    size: float = 0.035  # text height as a fraction of the image's shorter side
    min_px: int = 12
    opacity: float = 0.65  # of the dark box behind the text
    font: Path | None = None

    def __post_init__(self) -> None:
        if self.corner not in CORNERS:
            raise SwaplineError(f"label corner must be one of {', '.join(CORNERS)}, not {self.corner!r}")
        if not self.text.strip():
            raise SwaplineError("the AI-generated label cannot be empty")


@functools.cache
def _font_codepoints(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    try:
        return frozenset(TTFont(str(path), lazy=True, fontNumber=0).getBestCmap())
    except Exception as exc:
        raise SwaplineError(f"{path}: not a usable font ({exc})") from exc


@functools.cache
def _font(path: Path, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), px)


@dataclass(frozen=True, eq=False)
class RenderedLabel:
    x: int
    y: int
    alpha: np.ndarray  # (h, w, 1) float32 coverage of the whole label (box and text)
    premultiplied: np.ndarray  # (h, w, 3) float32 colour x alpha, BGR
    text_mask: np.ndarray  # (h, w) bool, where the glyphs are


@functools.cache
def render_label(settings: LabelSettings, width: int, height: int) -> RenderedLabel:
    font_path = settings.font or DEFAULT_FONT
    if not Path(font_path).is_file():
        raise SwaplineError(f"{font_path}: label font not found")
    missing = [c for c in settings.text if not c.isspace() and ord(c) not in _font_codepoints(Path(font_path))]
    if missing:
        raise SwaplineError(f"{font_path}: font has no glyph for {''.join(missing)!r} in the label text")
    px = max(settings.min_px, round(min(width, height) * settings.size))
    font = _font(Path(font_path), px)
    left, top, right, bottom = font.getbbox(settings.text)
    if right - left > 0.9 * width:  # narrow image: shrink the text so the whole label fits
        px = max(6, int(px * 0.9 * width / (right - left)))
        font = _font(Path(font_path), px)
        left, top, right, bottom = font.getbbox(settings.text)
    pad = max(2, px // 3)
    box_w = min(width, right - left + 2 * pad)
    box_h = min(height, bottom - top + 2 * pad)
    text = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(text).text((pad - left, pad - top), settings.text, fill=255, font=font)
    box = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(box).rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=pad, fill=255)
    text_a = np.asarray(text, np.float32) / 255.0
    box_a = np.asarray(box, np.float32) / 255.0 * settings.opacity
    alpha = text_a + box_a * (1.0 - text_a)  # white text over a dark box
    margin = max(2, px // 2)
    x = margin if settings.corner.endswith("left") else width - box_w - margin
    y = margin if settings.corner.startswith("top") else height - box_h - margin
    return RenderedLabel(
        x=max(0, x),
        y=max(0, y),
        alpha=alpha[..., None],
        premultiplied=np.repeat((text_a * 255.0)[..., None], 3, axis=2),
        text_mask=text_a > 0.5,
    )


class LabelStamp:
    """Stamps the label onto frames in place; rendering is cached per frame size."""

    def __init__(self, settings: LabelSettings | None = None, warm_size: tuple[int, int] = (640, 480)):
        self.settings = settings or LabelSettings()
        # Loading the font and its character map takes ~100 ms: pay it here, not on frame one.
        render_label(self.settings, *warm_size)

    def apply(self, image: np.ndarray, alpha_channel: np.ndarray | None = None) -> None:
        h, w = image.shape[:2]
        label = render_label(self.settings, w, h)
        lh, lw = label.alpha.shape[:2]
        region = image[label.y : label.y + lh, label.x : label.x + lw, :3]
        blended = region.astype(np.float32) * (1.0 - label.alpha) + label.premultiplied
        region[...] = np.clip(blended, 0, 255).astype(np.uint8)
        if alpha_channel is not None:
            spot = alpha_channel[label.y : label.y + lh, label.x : label.x + lw]
            spot[...] = np.maximum(spot, (label.alpha[..., 0] * 255).astype(np.uint8))


def label_score(image: np.ndarray, settings: LabelSettings | None = None, corner: str | None = None) -> float:
    """Correlation between the image and the label's glyph pattern at one corner (1.0 = exact)."""
    settings = settings or LabelSettings()
    if corner is not None:
        settings = LabelSettings(**{**settings.__dict__, "corner": corner})
    h, w = image.shape[:2]
    label = render_label(settings, w, h)
    lh, lw = label.text_mask.shape
    region = image[label.y : label.y + lh, label.x : label.x + lw]
    if region.shape[:2] != (lh, lw):
        return 0.0
    gray = region[..., :3].astype(np.float32).mean(axis=2) if region.ndim == 3 else region.astype(np.float32)
    pattern = label.text_mask.astype(np.float32)
    gray = gray - gray.mean()
    pattern = pattern - pattern.mean()
    denom = float(np.sqrt((gray**2).sum() * (pattern**2).sum()))
    return float((gray * pattern).sum() / denom) if denom > 0 else 0.0


def has_label(image: np.ndarray, settings: LabelSettings | None = None, threshold: float = 0.6) -> bool:
    """True when the AI-generated label is visible in any corner (for tests and audits)."""
    return any(label_score(image, settings, corner) >= threshold for corner in CORNERS)
