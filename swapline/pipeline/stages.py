"""Processing stages of the live pipeline; each has one method, process(frame) -> frame."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from swapline.faces.stream import FaceStream
from swapline.pipeline.frames import Frame
from swapline.pipeline.rate import AdaptiveRate
from swapline.pipeline.thermal import ThermalGovernor

if TYPE_CHECKING:
    from swapline.session import SwapSession


class TrackStage:
    """Finds the faces to swap: the session's face stream (tracking, cuts, selection, smoothing)."""

    name = "track"

    def __init__(self, stream: FaceStream, rate: AdaptiveRate, governor: ThermalGovernor):
        self.stream = stream
        self.rate = rate
        self.governor = governor

    def process(self, frame: Frame) -> Frame:
        self.stream.tracker.light = self.governor.update()
        now = time.monotonic()
        if not self.rate.should_process(now):
            frame.faces = []
            return frame
        frame.faces = self.stream.update(frame.image, frame.captured_at, frame.timings)
        self.rate.observe(now, bool(frame.faces))
        return frame


class ComposeStage:
    """Swaps the chosen faces and stamps the label (always, face or not): the session's compose."""

    name = "compose"

    def __init__(self, session: SwapSession, source, governor: ThermalGovernor):
        self.session = session
        self.source = source
        self.governor = governor

    def process(self, frame: Frame) -> Frame:
        self.session.compose(frame.image, frame.faces, self.source, light=self.governor.light, timings=frame.timings)
        return frame


class SequentialStages:
    """Several stages run one after the other in one thread (the single-core layout)."""

    def __init__(self, name: str, stages: list):
        self.name = name
        self.stages = stages

    def process(self, frame: Frame) -> Frame:
        for stage in self.stages:
            frame = stage.process(frame)
        return frame


class StallStage:
    """Wraps a stage and sleeps stall_ms every `every` frames: hiccups on demand, for benchmarks."""

    def __init__(self, inner, stall_ms: float, every: int):
        self.inner = inner
        self.name = inner.name
        self.stall_s = stall_ms / 1000.0
        self.every = max(1, every)
        self._count = 0

    def process(self, frame: Frame) -> Frame:
        self._count += 1
        if self.stall_s > 0 and self._count % self.every == 0:
            time.sleep(self.stall_s)
            frame.timings["stall"] = self.stall_s * 1000.0
        return self.inner.process(frame)
