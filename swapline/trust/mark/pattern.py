"""The key's frequency layout and the tile added to the luma.

The mark is a TILE x TILE pattern repeated over the frame, so any crop still holds whole
periods. It lives on Fourier bins of the tile in a mid band (BAND, cycles per pixel): high
enough that the picture itself interferes little, low enough to survive JPEG, H.264 and
halving the size. Each bin (one per conjugate pair) gets a phase from the key; SYNC_SHARE of
the bins carry a fixed synchronisation pattern (found by correlation after a crop), the rest
carry the code bits, each bit on its own equal set of bins. Disjoint bins keep the bits from
interfering with each other.

All randomness comes from SHAKE-256 of the key, so a mark made today decodes with any later
numpy. Changing TILE, BAND, SYNC_SHARE or DEFAULT_KEY makes a new, incompatible mark.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

TILE = 128
BAND = (0.06, 0.20)
SYNC_SHARE = 0.2
DEFAULT_KEY = "swapline/mark/v1"  # public: the mark is a label anyone may check, not a secret


def _stream(seed: bytes, label: bytes, n: int) -> bytes:
    return hashlib.shake_256(seed + label).digest(n)


def key_seed(key: str | None) -> bytes:
    """The tool's key, mixed with the user's optional key."""
    return hashlib.sha256(f"{DEFAULT_KEY}\0{key or ''}".encode()).digest()


def _band_bins(tile: int) -> tuple[np.ndarray, np.ndarray]:
    """In-band bins of the rfft2 half-plane, one per conjugate pair (kx > 0, or kx == 0 and ky > 0)."""
    ky = np.fft.fftfreq(tile)[:, None]
    kx = np.fft.rfftfreq(tile)[None, :]
    radius = np.hypot(ky, kx)
    half = (kx > 0) | ((kx == 0) & (ky > 0))
    rows, cols = np.nonzero((radius >= BAND[0]) & (radius <= BAND[1]) & half)
    return rows, cols


@dataclass(frozen=True, eq=False)
class Layout:
    """Which bins carry the sync pattern and which carry each code bit, with their phases."""

    rows: np.ndarray  # rfft2 row of each bin: sync bins first, then message bins
    cols: np.ndarray
    phase: np.ndarray  # unit phasors
    n_sync: int
    bit_of: np.ndarray  # message bin -> code bit
    n_bits: int
    tile: int = TILE

    @functools.cached_property
    def signed(self) -> tuple[np.ndarray, np.ndarray]:
        """Signed frequencies (cycles per tile) of every bin, for sub-pixel phase ramps."""
        rows = np.where(self.rows >= self.tile // 2, self.rows - self.tile, self.rows)
        return rows.astype(np.float64), self.cols.astype(np.float64)

    def spectrum(self, amplitudes: np.ndarray) -> np.ndarray:
        """The rfft2 half-spectrum with these amplitudes on the layout's bins (kx == 0 mirrored)."""
        spec = np.zeros((self.tile, self.tile // 2 + 1), np.complex128)
        values = amplitudes * self.phase
        spec[self.rows, self.cols] = values
        edge = self.cols == 0
        spec[(-self.rows[edge]) % self.tile, 0] = np.conj(values[edge])
        return spec

    @functools.cached_property
    def sync_spectrum(self) -> np.ndarray:
        amplitudes = np.zeros(self.rows.size)
        amplitudes[: self.n_sync] = 1.0
        return self.spectrum(amplitudes)

    def pattern(self, bits: np.ndarray) -> np.ndarray:
        """The tile (float32, unit RMS) carrying these code bits (0/1)."""
        amplitudes = np.ones(self.rows.size)
        amplitudes[self.n_sync :] = 2.0 * bits[self.bit_of] - 1.0
        tile = np.fft.irfft2(self.spectrum(amplitudes), s=(self.tile, self.tile))
        return (tile / np.sqrt(np.mean(tile**2))).astype(np.float32)


@functools.lru_cache(maxsize=16)
def layout_for(key: str | None, n_bits: int) -> Layout:
    """The layout for a key: a permutation of the band's bins and a phase per bin, from SHAKE-256."""
    seed = key_seed(key)
    rows, cols = _band_bins(TILE)
    count = rows.size
    order = np.argsort(np.frombuffer(_stream(seed, b"order", 8 * count), np.uint64), kind="stable")
    turns = np.frombuffer(_stream(seed, b"phase", 8 * count), np.uint64) / 2.0**64
    per_bit = int(count * (1.0 - SYNC_SHARE)) // n_bits
    n_sync = count - per_bit * n_bits
    return Layout(
        rows=rows[order],
        cols=cols[order],
        phase=np.exp(2j * np.pi * turns),
        n_sync=n_sync,
        bit_of=np.arange(per_bit * n_bits) % n_bits,
        n_bits=n_bits,
    )
