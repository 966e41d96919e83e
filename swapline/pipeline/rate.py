"""Adaptive frame rate: with no face in view for a while, look for one less often."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdaptiveRateSettings:
    enabled: bool = True
    idle_after_s: float = 1.0  # no face for this long -> idle
    idle_fps: float = 15.0  # processing rate while idle; full rate again as soon as a face appears


class AdaptiveRate:
    def __init__(self, settings: AdaptiveRateSettings | None = None):
        self.settings = settings or AdaptiveRateSettings()
        self._last_face: float | None = None
        self._last_processed: float | None = None
        self.skipped = 0

    def idle(self, now: float) -> bool:
        if not self.settings.enabled:
            return False
        if self._last_face is None:
            self._last_face = now  # start "active": a face usually appears at once
        return now - self._last_face > self.settings.idle_after_s

    def should_process(self, now: float) -> bool:
        if not self.idle(now) or self._last_processed is None:
            return True
        if now - self._last_processed >= 1.0 / self.settings.idle_fps:
            return True
        self.skipped += 1
        return False

    def observe(self, now: float, found_face: bool) -> None:
        self._last_processed = now
        if found_face:
            self._last_face = now
