"""The visible AI-generated label stamped on every output image and frame.

The label is rendered once per frame size (Pillow + a bundled CJK-capable font, since OpenCV's
Hershey fonts cannot draw 合成) and composited onto a small corner region of each frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from swapline.errors import SwaplineError

DEFAULT_FONT = Path(__file__).resolve().parent / "fonts" / "wqy-microhei.ttf"
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
OPPOSITE = {
    "top-left": "bottom-right",
    "bottom-right": "top-left",
    "top-right": "bottom-left",
    "bottom-left": "top-right",
}
# The core text is fixed: a user can add a translated line, never remove or reword the claim.
CORE_TEXT = "AI-generated · AI合成"
TRANSLATIONS = {
    "de": "KI-generiert",
    "el": "Δημιουργήθηκε από ΤΝ",
    "es": "Generado por IA",
    "fr": "Généré par IA",
    "it": "Generato dall'IA",
    "ja": "AI生成",
    "ko": "AI 생성",
    "nl": "Gegenereerd door AI",
    "pl": "Wygenerowane przez AI",
    "pt": "Gerado por IA",
    "ru": "Создано ИИ",
    "tr": "Yapay zekâ ile üretildi",
    "vi": "Tạo bởi AI",
}
MIN_SIZE = 0.03  # text height, as a fraction of the shorter side, at least...
MIN_PX = 14  # ...and at least this many pixels


@dataclass(frozen=True)
class LabelSettings:
    """Where and how large the label is; what it says is fixed (plus an optional translation)."""

    language: str | None = None  # adds a line in this language (see TRANSLATIONS)
    corner: str = "bottom-right"  # a second copy goes in the opposite corner, so a crop keeps one
    size: float = 0.035  # text height as a fraction of the image's shorter side (>= MIN_SIZE)
    min_px: int = MIN_PX
    opacity: float = 0.65  # of the dark box behind the text
    font: Path | None = None

    def __post_init__(self) -> None:
        if self.corner not in CORNERS:
            raise SwaplineError(f"label corner must be one of {', '.join(CORNERS)}, not {self.corner!r}")
        if self.language is not None and self.language not in TRANSLATIONS:
            raise SwaplineError(f"label language must be one of {', '.join(TRANSLATIONS)}, not {self.language!r}")
        if not self.size >= MIN_SIZE:
            raise SwaplineError(f"label size must be at least {MIN_SIZE} of the shorter side, not {self.size}")
        if not self.min_px >= MIN_PX:
            raise SwaplineError(f"label text must be at least {MIN_PX} px high, not {self.min_px}")
        if not 0.3 <= self.opacity <= 1.0:
            raise SwaplineError(f"label opacity must be between 0.3 and 1, not {self.opacity}")

    @property
    def lines(self) -> tuple[str, ...]:
        return (CORE_TEXT,) + ((TRANSLATIONS[self.language],) if self.language else ())

    @property
    def text(self) -> str:
        return " / ".join(self.lines)


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


def _check_font(path: Path, text: str) -> None:
    if not path.is_file():
        raise SwaplineError(f"{path}: label font not found")
    missing = [c for c in text if not c.isspace() and ord(c) not in _font_codepoints(path)]
    if missing:
        raise SwaplineError(f"{path}: font has no glyph for {''.join(missing)!r} in the label text")


def _text_mask(lines: tuple[str, ...], font_path: Path, px: int, pad: int) -> np.ndarray:
    """Coverage (0-1) of the lines, stacked, on a box with `pad` pixels around them."""
    font = _font(font_path, px)
    boxes = [font.getbbox(line) for line in lines]
    step = round(px * 1.25)
    width = max(right - left for left, _, right, _ in boxes) + 2 * pad
    height = step * (len(lines) - 1) + (boxes[-1][3] - boxes[0][1]) + 2 * pad
    text = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(text)
    for index, (line, (left, _top, _, _)) in enumerate(zip(lines, boxes, strict=True)):
        draw.text((pad - left, pad - boxes[0][1] + index * step), line, fill=255, font=font)
    return np.asarray(text, np.float32) / 255.0


@dataclass(frozen=True, eq=False)
class RenderedLabel:
    x: int
    y: int
    alpha: np.ndarray  # (h, w, 1) float32 coverage of the whole label (box and text)
    premultiplied: np.ndarray  # (h, w, 3) float32 colour x alpha, BGR
    text_mask: np.ndarray  # (h, w) bool, where the glyphs are
    keep: np.ndarray  # (h, w, 3) float32 1 - alpha, per channel (no broadcast on every frame)


@functools.cache
def _render_box(settings: LabelSettings, width: int, height: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(alpha, text coverage, px) of one copy of the label for a frame of this size."""
    font_path = Path(settings.font or DEFAULT_FONT)
    _check_font(font_path, "".join(settings.lines))
    px = max(settings.min_px, round(min(width, height) * settings.size))
    lines = settings.lines
    font = _font(font_path, px)
    if max(font.getbbox(line)[2] for line in lines) > 0.9 * width:  # narrow image: one claim per line
        lines = (*CORE_TEXT.split(" · "), *lines[1:])
    pad = max(2, px // 3)
    text_a = _text_mask(lines, font_path, px, pad)
    box_h, box_w = text_a.shape
    box = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(box).rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=pad, fill=255)
    box_a = np.asarray(box, np.float32) / 255.0 * settings.opacity
    return text_a + box_a * (1.0 - text_a), text_a, px  # white text over a dark box


@functools.cache
def render_label(settings: LabelSettings, width: int, height: int, corner: str | None = None) -> RenderedLabel:
    """One copy of the label placed in `corner` (default: the settings' corner), clipped to the frame."""
    alpha, text_a, px = _render_box(settings, width, height)
    corner = corner or settings.corner
    margin = max(2, px // 2)
    box_h, box_w = alpha.shape
    x = margin if corner.endswith("left") else width - box_w - margin
    y = margin if corner.startswith("top") else height - box_h - margin
    x, y = max(0, x), max(0, y)
    alpha, text_a = alpha[: height - y, : width - x], text_a[: height - y, : width - x]
    return RenderedLabel(
        x=x,
        y=y,
        alpha=alpha[..., None],
        premultiplied=np.repeat((text_a * 255.0)[..., None], 3, axis=2),
        text_mask=text_a > 0.5,
        keep=np.ascontiguousarray(np.repeat(1.0 - alpha[..., None], 3, axis=2), np.float32),
    )


class LabelStamp:
    """Stamps the label onto frames in place (two copies: the chosen and the opposite corner)."""

    def __init__(self, settings: LabelSettings | None = None, warm_size: tuple[int, int] = (640, 480)):
        self.settings = settings or LabelSettings()
        # Loading the font and its character map takes ~100 ms: pay it here, not on frame one.
        self._copies(*warm_size)

    def _copies(self, width: int, height: int) -> tuple[RenderedLabel, ...]:
        first = render_label(self.settings, width, height)
        second = render_label(self.settings, width, height, OPPOSITE[self.settings.corner])
        overlap = abs(first.y - second.y) < first.alpha.shape[0] or abs(first.x - second.x) < first.alpha.shape[1]
        return (first,) if overlap else (first, second)  # a tiny frame has room for one

    def apply(self, image: np.ndarray, alpha_channel: np.ndarray | None = None) -> None:
        h, w = image.shape[:2]
        for label in self._copies(w, h):
            lh, lw = label.alpha.shape[:2]
            region = image[label.y : label.y + lh, label.x : label.x + lw, :3]
            # within [0, 255] by construction (white text over a box: 255 x coverage at most)
            if image.shape[2] == 3:
                blended = cv2.multiply(region, label.keep, dtype=cv2.CV_32F)
            else:  # a 4-channel frame: its 3 colour channels are not one OpenCV image
                blended = region.astype(np.float32) * label.keep
            blended += label.premultiplied
            region[...] = blended.astype(np.uint8)
            if alpha_channel is not None:
                spot = alpha_channel[label.y : label.y + lh, label.x : label.x + lw]
                spot[...] = np.maximum(spot, (label.alpha[..., 0] * 255).astype(np.uint8))


@dataclass(frozen=True)
class LabelMatch:
    score: float  # normalised correlation with the label's glyphs (1.0 = exact)
    corner: str
    px: int  # text height at which it was found


@functools.cache
def _templates(font: Path | None) -> tuple[tuple[int, np.ndarray], ...]:
    """The core text's glyph coverage at text heights from 7 to 64 px (geometric steps of 4%)."""
    font_path = Path(font or DEFAULT_FONT)
    _check_font(font_path, CORE_TEXT)
    # Scaled down from one large rendering, as a resized label is: rendering small would round
    # each glyph's advance differently. Steps of 4%: thin strokes make a few % of scale matter.
    big_px = 64
    big = _text_mask((CORE_TEXT,), font_path, big_px, 1)
    templates = []
    for px in sorted({round(7 * 1.04**k, 1) for k in range(58)}):
        if px > big_px:
            break
        size = (max(1, round(big.shape[1] * px / big_px)), max(1, round(big.shape[0] * px / big_px)))
        templates.append((round(px), cv2.resize(big, size, interpolation=cv2.INTER_AREA)))
    return tuple(templates)


def _corner_regions(gray: np.ndarray) -> dict[str, np.ndarray]:
    h, w = gray.shape
    rh, rw = max(1, int(h * 0.3)), max(1, int(w * 0.6))
    return {
        "top-left": gray[:rh, :rw],
        "top-right": gray[:rh, w - rw :],
        "bottom-left": gray[h - rh :, :rw],
        "bottom-right": gray[h - rh :, w - rw :],
    }


def _in_place_score(gray: np.ndarray, settings: LabelSettings, corner: str) -> float:
    """Correlation with the glyphs exactly where this frame size puts the label (an untouched output)."""
    h, w = gray.shape
    label = render_label(settings, w, h, corner)
    lh, lw = label.text_mask.shape
    region = gray[label.y : label.y + lh, label.x : label.x + lw]
    pattern = label.text_mask.astype(np.float32)
    region, pattern = region - region.mean(), pattern - pattern.mean()
    denom = float(np.sqrt((region**2).sum() * (pattern**2).sum()))
    return float((region * pattern).sum() / denom) if denom > 0 else 0.0


def find_label(
    image: np.ndarray, font: Path | None = None, corners: tuple[str, ...] = CORNERS, enough: float = 1.0
) -> LabelMatch | None:
    """The best match of the label's core text near the given corners, at any scale.

    First where an untouched output has it (cheap); then, unless that already scored `enough`,
    a multi-scale normalised cross-correlation of the glyph pattern over each corner's region,
    so resized and cropped copies are found too. None when no region is large enough to look in.
    """
    gray = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    settings = LabelSettings(font=font)
    best: LabelMatch | None = None
    for corner in corners:
        score = _in_place_score(gray, settings, corner)
        if best is None or score > best.score:
            best = LabelMatch(score, corner, _render_box(settings, gray.shape[1], gray.shape[0])[2])
    if best is not None and best.score >= enough:
        return best
    regions = _corner_regions(gray)
    for px, template in _templates(font):
        th, tw = template.shape
        for corner in corners:
            region = regions[corner]
            if region.shape[0] < th or region.shape[1] < tw:
                continue
            score = float(cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED).max())
            if best is None or score > best.score:
                best = LabelMatch(score, corner, px)
    return best


def label_score(image: np.ndarray, settings: LabelSettings | None = None, corner: str | None = None) -> float:
    """How well the label's core text matches at one corner (or the best corner), at any scale."""
    match = find_label(image, (settings or LabelSettings()).font, (corner,) if corner else CORNERS)
    return match.score if match else 0.0


def has_label(image: np.ndarray, settings: LabelSettings | None = None, threshold: float = 0.55) -> bool:
    """True when the AI-generated label is visible in any corner, at any scale (tests, audits, verify)."""
    match = find_label(image, (settings or LabelSettings()).font, enough=threshold)
    return match is not None and match.score >= threshold
