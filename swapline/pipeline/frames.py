"""A frame in flight: its pixels plus when it was captured and what each stage spent on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swapline.faces.face import Face


@dataclass(eq=False)
class Frame:
    seq: int
    captured_at: float  # time.monotonic() seconds
    image: np.ndarray
    faces: list[Face] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> ms


class EndOfStream:
    """Sentinel passed down the pipeline when the source ends or fails."""

    def __init__(self, error: str | None = None):
        self.error = error
