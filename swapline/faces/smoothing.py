"""One Euro filter for landmarks: steady on a still head, no lag on fast motion.

The cutoff frequency rises with speed (Casiez et al., 2012): slow movement (jitter) is
smoothed hard, fast movement passes through. Speed is measured in face widths per second
(inter-ocular distances), so the same settings suit small and large faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from swapline.faces.topology import inter_ocular_distance


@dataclass(frozen=True)
class OneEuroSettings:
    enabled: bool = True
    min_cutoff_hz: float = 1.5  # cutoff at rest: lower = steadier
    beta: float = 2.0  # how fast the cutoff rises with speed (per IOD/s)
    derivative_cutoff_hz: float = 1.0


def _alpha(cutoff_hz: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters one face's (468, 3) landmarks over time."""

    def __init__(self, settings: OneEuroSettings | None = None):
        self.settings = settings or OneEuroSettings()
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def __call__(self, landmarks: np.ndarray, t: float) -> np.ndarray:
        s = self.settings
        if not s.enabled:
            return landmarks
        if self._value is None or self._time is None or t <= self._time:
            self._value, self._speed, self._time = landmarks.astype(np.float32), np.zeros_like(landmarks), t
            return landmarks
        dt = t - self._time
        scale = max(inter_ocular_distance(landmarks), 1.0)
        raw_speed = (landmarks - self._value) / dt / scale
        a_d = _alpha(s.derivative_cutoff_hz, dt)
        self._speed = a_d * raw_speed + (1 - a_d) * self._speed
        cutoff = s.min_cutoff_hz + s.beta * np.abs(self._speed)
        tau = 1.0 / (2.0 * np.pi * cutoff)
        alpha = 1.0 / (1.0 + tau / dt)
        self._value = (alpha * landmarks + (1 - alpha) * self._value).astype(np.float32)
        self._time = t
        return self._value
