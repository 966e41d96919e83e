"""Thermal governor: above a temperature, switch to a lighter mode; back below it, with hysteresis."""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

try:  # imported with this module: at the first reading it cost ~70 ms on the first live frame
    import psutil
except ImportError:  # optional: /sys/class/thermal is read instead
    psutil = None

log = logging.getLogger("swapline.thermal")


def read_cpu_temperature() -> float | None:
    """Hottest CPU/SoC temperature in C from psutil or /sys/class/thermal; None when no sensor."""
    if psutil is not None:
        readings = getattr(psutil, "sensors_temperatures", lambda: {})() or {}
        values = [t.current for entries in readings.values() for t in entries if t.current]
        if values:
            return float(max(values))
    values = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        try:
            with open(path) as handle:
                values.append(int(handle.read().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(values) if values else None


@dataclass(frozen=True)
class ThermalSettings:
    enabled: bool = True
    hot_c: float = 65.0  # switch to light mode above this
    cool_c: float = 60.0  # and back below this
    check_every_s: float = 2.0


class ThermalGovernor:
    """`light` is True while the machine runs hot; read it as often as you like (cheap)."""

    def __init__(
        self,
        settings: ThermalSettings | None = None,
        sensor: Callable[[], float | None] = read_cpu_temperature,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings or ThermalSettings()
        self.sensor = sensor
        self.clock = clock
        self.light = False
        self.last_reading: float | None = None
        self.has_sensor: bool | None = None
        self.switches: list[tuple[float, str]] = []
        self._next_check = 0.0

    def update(self) -> bool:
        """Read the sensor if it is time to; returns the current mode (True = light)."""
        if not self.settings.enabled or self.has_sensor is False:
            return self.light
        now = self.clock()
        if now < self._next_check:
            return self.light
        self._next_check = now + self.settings.check_every_s
        reading = self.sensor()
        if reading is None:
            if self.has_sensor is None:
                log.warning("no temperature sensor found: thermal governor off")
            self.has_sensor = False
            return self.light
        self.has_sensor = True
        self.last_reading = reading
        if not self.light and reading >= self.settings.hot_c:
            self.light = True
            self.switches.append((now, "light"))
            log.warning("CPU at %.0f C: light mode", reading)
        elif self.light and reading <= self.settings.cool_c:
            self.light = False
            self.switches.append((now, "normal"))
            log.warning("CPU at %.0f C: normal mode", reading)
        return self.light
