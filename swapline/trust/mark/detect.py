"""Finding the mark: fold the luma onto one tile, whiten, search the tile offset, read the bits.

Folding (summing every TILE x TILE block) adds the repeated mark coherently while the picture
averages out, and a crop only shifts the mark cyclically inside the folded tile. Whitening
keeps only the phase of each Fourier bin, so strong picture frequencies cannot drown the rest.
The offset is the peak of the cyclic cross-correlation with the sync bins, over all TILE^2
shifts at each scale tried; a resized copy is folded at the scaled period.

The detection statistic z is that peak over its standard deviation under "no mark with this
key": each sync bin then adds a cosine of a phase that is uniform and independent of the image
(the key's), so z is a sum of independent random-phase cosines. Since E[exp(l cos U)] =
I0(l) <= exp(l^2 / 4), z is sub-Gaussian with variance 1: P(z >= t) <= exp(-t^2 / 2) at one
shift, and over the TILE^2 * len(scales) shifts tried, P(false detection) <= that count times
exp(-t^2 / 2). `threshold` inverts that bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from swapline.trust.mark.pattern import TILE, Layout

MIN_SIDE = 32  # pixels (at the original scale) below which a copy is not searched
RINGS = 4  # frequency rings over which the decoder estimates how much of the mark survived


def threshold(false_positive: float, scales: int, tile: int = TILE) -> float:
    """z above which a mark is reported: tile^2 * scales * exp(-z^2 / 2) = false_positive."""
    return math.sqrt(2.0 * math.log(tile * tile * scales / false_positive))


def false_positive_bound(z: float, scales: int, tile: int = TILE) -> float:
    """The chance that an unmarked image (or a wrong key) reaches z somewhere."""
    return min(1.0, tile * tile * scales * math.exp(-0.5 * z * z))


def luma(image: np.ndarray) -> np.ndarray:
    """Luma (BT.601, as the mark was added) of a BGR, BGRA or grey uint8 image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a BGR, BGRA or grey image, got shape {image.shape}")


def _cover(length: int, period: int) -> np.ndarray:
    """How many pixels of a line of this length fold onto each position of the period."""
    full, rest = divmod(length, period)
    return full + (np.arange(period) < rest)


def _fold(y: np.ndarray, period: int) -> np.ndarray:
    """Sum of all period x period blocks of y minus its mean (zero beyond the edges)."""
    h, w = y.shape
    columns = -(-w // period)
    rows = np.zeros((period, columns * period), np.float64)
    for top in range(0, h, period):  # whole row bands at a time: a few large contiguous adds
        band = y[top : top + period]
        rows[: band.shape[0], :w] += band
    folded = rows.reshape(period, columns, period).sum(axis=1)
    mean = folded.sum() / (h * w)
    return folded - mean * np.outer(_cover(h, period), _cover(w, period))


def _whiten(spectrum: np.ndarray) -> np.ndarray:
    return spectrum / np.maximum(np.abs(spectrum), 1e-12)


def _at_scale(y: np.ndarray, scale: float, tile: int) -> np.ndarray | None:
    """Whitened rfft2 (tile x tile//2+1) of the luma folded at the mark's period at this scale."""
    h, w = y.shape
    if min(h, w) / scale < MIN_SIDE:
        return None
    period = tile * scale
    if abs(period - round(period)) < 1e-6:  # fold at the small period; pad the spectrum (exact)
        p = int(round(period))
        small = np.fft.rfft2(_fold(y, p))
        spec = np.zeros((tile, tile // 2 + 1), np.complex128)
        limit = min(p, tile) // 2  # frequencies both grids hold unambiguously
        rows = np.fft.fftfreq(p, 1.0 / p).round().astype(int)
        keep = np.abs(rows) < limit
        spec[rows[keep] % tile, :limit] = small[keep, :limit]
        return _whiten(spec)
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    resized = cv2.resize(y.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    return _whiten(np.fft.rfft2(_fold(resized, tile)))


def spectra(image: np.ndarray, scales: tuple[float, ...], tile: int = TILE) -> list[np.ndarray | None]:
    """Per scale, the whitened folded spectrum of an image (independent of the key, so reusable)."""
    y = luma(image)
    return [_at_scale(y, scale, tile) for scale in scales]


@dataclass(frozen=True)
class Peak:
    """The best synchronisation peak: its z, which scale, and the tile offset (pixels, sub-pixel)."""

    z: float
    scale_index: int
    dy: float
    dx: float


def _subpixel(surface: np.ndarray, i: int, j: int) -> tuple[float, float]:
    n = surface.shape[0]

    def vertex(a: float, b: float, c: float) -> float:
        curve = a - 2.0 * b + c
        return 0.0 if curve >= 0 else float(np.clip(0.5 * (a - c) / curve, -0.5, 0.5))

    dy = vertex(surface[(i - 1) % n, j], surface[i, j], surface[(i + 1) % n, j])
    dx = vertex(surface[i, (j - 1) % n], surface[i, j], surface[i, (j + 1) % n])
    return i + dy, j + dx


def find_peak(summed: list[np.ndarray | None], layout: Layout) -> Peak | None:
    """The highest z over every shift and scale, for spectra summed over frames."""
    best: Peak | None = None
    sync = layout.sync_spectrum
    rows, cols = layout.rows[: layout.n_sync], layout.cols[: layout.n_sync]
    for index, spec in enumerate(summed):
        if spec is None:
            continue
        power = np.sum(np.abs(spec[rows, cols]) ** 2)
        if power <= 0:
            continue
        sigma = math.sqrt(2.0 * power) / layout.tile**2
        surface = np.fft.irfft2(spec * np.conj(sync), s=(layout.tile, layout.tile)) / sigma
        i, j = np.unravel_index(int(np.argmax(surface)), surface.shape)
        z = float(surface[i, j])
        if best is None or z > best.z:
            dy, dx = _subpixel(surface, int(i), int(j))
            best = Peak(z, index, dy, dx)
    return best


def bin_values(spec: np.ndarray, layout: Layout, peak: Peak) -> np.ndarray:
    """Each layout bin's in-phase value once the offset is undone (positive where the mark agrees)."""
    ky, kx = layout.signed
    ramp = np.exp(2j * np.pi * (ky * peak.dy + kx * peak.dx) / layout.tile)
    return np.real(spec[layout.rows, layout.cols] * ramp * np.conj(layout.phase))


def soft_bits(spec: np.ndarray, layout: Layout, peak: Peak) -> np.ndarray:
    """Soft code bits (> 0 reads as 1), each bin weighted by how much of the mark its ring kept."""
    values = bin_values(spec, layout, peak)
    ky, kx = layout.signed
    radius = np.hypot(ky, kx)
    edges = np.quantile(radius[: layout.n_sync], np.linspace(0.0, 1.0, RINGS + 1)[1:-1])
    ring = np.searchsorted(edges, radius)
    sync_ring = ring[: layout.n_sync]
    kept = np.array([values[: layout.n_sync][sync_ring == r].mean() for r in range(RINGS)])
    weights = np.clip(kept, 0.0, None)
    if not weights.any():
        weights = np.ones(RINGS)
    message = values[layout.n_sync :] * weights[ring[layout.n_sync :]]
    return np.bincount(layout.bit_of, weights=message, minlength=layout.n_bits)


def sync_strength(spec: np.ndarray, layout: Layout, peak: Peak) -> float:
    """How much of the sync pattern one frame holds at the peak's offset (for weighting frames)."""
    return float(bin_values(spec, layout, peak)[: layout.n_sync].mean())
