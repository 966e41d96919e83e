"""The invisible mark in every output frame: a payload that survives JPEG, H.264, resizing,
cropping and brightness changes, and that anyone can check with the tool's public key.

`Watermarker.embed` adds a precomputed pattern to the luma in place (two saturating uint8
operations on the BGR frame), cheap enough for every live frame. The pattern repeats every TILE
rows, so what is cached is one band of TILE rows per frame width and payload (1.5 MB at 4K, not
two full frames), added band by band down the frame. `Watermarker.decode` finds the pattern's
offset and scale blindly and reads the payload; `decode_frames` pools the frames of a video,
which is what lets a mark survive strong compression. How the mark is built: `swapline.trust.mark`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from swapline.errors import SwaplineError
from swapline.trust.mark import payload as code
from swapline.trust.mark.detect import (
    Peak,
    false_positive_bound,
    find_peak,
    soft_bits,
    spectra,
    sync_strength,
    threshold,
)
from swapline.trust.mark.pattern import DEFAULT_KEY, TILE, layout_for
from swapline.trust.mark.payload import Payload

__all__ = ["DEFAULT_KEY", "MarkReport", "Payload", "WatermarkSettings", "Watermarker", "job_id_now"]

CACHED_BANDS = 4  # band patterns kept (each 2 x TILE x w x 3 bytes: 3 MB at 4K)


def job_id_now() -> int:
    """A job id that also says when: Unix seconds (fits 32 bits until 2106)."""
    return int(time.time()) & 0xFFFFFFFF


@dataclass(frozen=True)
class WatermarkSettings:
    """How strong the mark is, which key it uses and what the decoder searches."""

    key: str | None = None  # optional user key, mixed with DEFAULT_KEY; decoding needs the same one
    strength: float = 2.5  # RMS of the pattern in grey levels: PSNR ~40 dB at 2.5
    # copy size / original size that the decoder tries (0.75 and 2/3: 720p re-encoded as 540p, 480p)
    scales: tuple[float, ...] = (1.0, 0.75, 2 / 3, 0.5)
    false_positive: float = 1e-6  # per decoded image (or video), for an unmarked input or a wrong key

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 8.0:
            raise SwaplineError(f"mark strength must be in (0, 8] grey levels, not {self.strength}")
        if not self.scales or not all(0.2 <= s <= 4.0 for s in self.scales):
            raise SwaplineError(f"mark scales must be between 0.2 and 4, not {self.scales}")
        if not 0.0 < self.false_positive <= 0.01:
            raise SwaplineError(f"mark false-positive rate must be in (0, 0.01], not {self.false_positive}")


@dataclass(frozen=True)
class MarkReport:
    """A mark that was found: what it says (None if too damaged to read) and how sure we are."""

    payload: Payload | None
    bits_corrected: int | None  # of code.CODE_BITS
    confidence: float  # z of the sync correlation peak (standard deviations under "no mark")
    threshold: float  # the z a detection needs
    false_positive_bound: float  # chance of a z this high without the mark
    scale: float  # copy size / original size
    offset: tuple[float, float]  # (dy, dx) of the tile grid, in the checked image's pixels
    frames: int = 1  # frames pooled

    def to_dict(self) -> dict:
        data = asdict(self)
        data["payload"] = asdict(self.payload) if self.payload else None
        return data


class Watermarker:
    """Embeds and reads the mark for one key; build once per session (patterns are cached)."""

    def __init__(self, settings: WatermarkSettings | None = None):
        self.settings = settings or WatermarkSettings()
        self.layout = layout_for(self.settings.key, code.CODE_BITS)
        self.threshold = threshold(self.settings.false_positive, len(self.settings.scales))
        self._tiles: dict[Payload, np.ndarray] = {}
        self._bands: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    # -- embedding ---------------------------------------------------------------------------

    def _tile(self, payload: Payload) -> np.ndarray:
        tile = self._tiles.get(payload)
        if tile is None:
            tile = self.layout.pattern(code.encode(payload)) * np.float32(self.settings.strength)
            with self._lock:
                if len(self._tiles) >= 8:
                    self._tiles.clear()
                self._tiles[payload] = tile
        return tile

    def band_pattern(self, width: int, payload: Payload) -> tuple[np.ndarray, np.ndarray]:
        """The rounded pattern for TILE rows of a frame this wide, split into what is added and
        what is subtracted (BGR: the same amount on each channel). Rows y and y + TILE of the
        full-frame pattern are equal, so these rows stand for every band of the frame."""
        key = (width, payload)
        with self._lock:
            cached = self._bands.get(key)
            if cached is not None:
                self._bands.move_to_end(key)
                return cached
        band = np.rint(np.tile(self._tile(payload), (1, -(-width // TILE)))[:, :width])
        plus = np.repeat(np.clip(band, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
        minus = np.repeat(np.clip(-band, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
        with self._lock:
            self._bands[key] = (plus, minus)
            while len(self._bands) > CACHED_BANDS:
                self._bands.popitem(last=False)
        return plus, minus

    def embed(self, frame_bgr: np.ndarray, payload: Payload) -> None:
        """Add the mark to a BGR uint8 frame in place (the same amount to B, G and R: luma only)."""
        import cv2

        if frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise SwaplineError(f"the mark needs a BGR uint8 frame, not {frame_bgr.dtype} {frame_bgr.shape}")
        plus, minus = self.band_pattern(frame_bgr.shape[1], payload)
        in_place = frame_bgr.flags.c_contiguous  # a row range of it is contiguous too
        for top in range(0, frame_bgr.shape[0], TILE):
            rows = frame_bgr[top : top + TILE]
            add, sub = plus[: rows.shape[0]], minus[: rows.shape[0]]
            if in_place:
                cv2.add(rows, add, dst=rows)  # saturating; a pixel gets plus or minus, never both
                cv2.subtract(rows, sub, dst=rows)
            else:  # a view: OpenCV would write into a copy
                rows[...] = cv2.subtract(cv2.add(np.ascontiguousarray(rows), add), sub)

    # -- decoding ----------------------------------------------------------------------------

    def analyse(self, image: np.ndarray) -> list[np.ndarray | None]:
        """The key-independent part of decoding one image (reusable across keys)."""
        return spectra(image, self.settings.scales)

    def peak(self, analysed: list[list[np.ndarray | None]]) -> Peak | None:
        """The best sync peak over analysed frames (summed), whether or not it passes the threshold."""
        summed: list[np.ndarray | None] = []
        for index in range(len(self.settings.scales)):
            parts = [frame[index] for frame in analysed if frame[index] is not None]
            summed.append(np.sum(parts, axis=0) if parts else None)
        return find_peak(summed, self.layout)

    def detect(self, analysed: list[list[np.ndarray | None]]) -> MarkReport | None:
        """Decode from analysed frames: None unless the sync peak passes the threshold."""
        found = self.peak(analysed)
        if found is None or found.z < self.threshold:
            return None
        specs = [frame[found.scale_index] for frame in analysed if frame[found.scale_index] is not None]
        if len(specs) > 1:  # weight frames by how much mark each kept (compression drops it unevenly)
            weights = np.clip([sync_strength(spec, self.layout, found) for spec in specs], 0.0, None)
            if weights.any():
                specs = [w * spec for w, spec in zip(weights, specs, strict=True)]
        decoded = code.decode(soft_bits(np.sum(specs, axis=0), self.layout, found))
        scale = self.settings.scales[found.scale_index]
        return MarkReport(
            payload=decoded[0] if decoded else None,
            bits_corrected=decoded[1] if decoded else None,
            confidence=round(found.z, 2),
            threshold=round(self.threshold, 2),
            false_positive_bound=false_positive_bound(found.z, len(self.settings.scales)),
            scale=scale,
            offset=(round(found.dy * scale, 2), round(found.dx * scale, 2)),
            frames=len(analysed),
        )

    def decode(self, image_bgr: np.ndarray) -> MarkReport | None:
        """The mark in one image, or None if there is none (with this key)."""
        return self.detect([self.analyse(image_bgr)])

    def decode_frames(self, frames: Iterable[np.ndarray]) -> MarkReport | None:
        """The mark in a video's frames, pooled: compression that wipes it from some frames spares others."""
        analysed = [self.analyse(frame) for frame in frames]
        return self.detect(analysed) if analysed else None
