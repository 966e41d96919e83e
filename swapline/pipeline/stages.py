"""Processing stages of the live pipeline; each has one method, process(frame) -> frame."""

from __future__ import annotations

import time

from swapline.faces.tracker import FaceTracker
from swapline.pipeline.frames import Frame
from swapline.pipeline.rate import AdaptiveRate
from swapline.pipeline.thermal import ThermalGovernor
from swapline.trust import LabelStamp


class TrackStage:
    """Finds the faces: landmarks follow the face, detection only when tracking is lost."""

    name = "track"

    def __init__(self, tracker: FaceTracker, rate: AdaptiveRate, governor: ThermalGovernor):
        self.tracker = tracker
        self.rate = rate
        self.governor = governor

    def process(self, frame: Frame) -> Frame:
        self.tracker.light = self.governor.update()
        now = time.monotonic()
        if not self.rate.should_process(now):
            frame.faces = []
            return frame
        frame.faces = self.tracker.update(frame.image, frame.timings)
        self.rate.observe(now, bool(frame.faces))
        return frame


class ComposeStage:
    """Swaps the tracked faces and stamps the label (always, face or not)."""

    name = "compose"

    def __init__(
        self,
        swapper,
        light_swapper,
        source,
        label: LabelStamp,
        governor: ThermalGovernor,
    ):
        self.swapper = swapper
        self.light_swapper = light_swapper
        self.source = source
        self.label = label
        self.governor = governor

    def process(self, frame: Frame) -> Frame:
        swapper = self.light_swapper if self.governor.light else self.swapper
        start = time.perf_counter()
        for face in frame.faces:
            swapper.swap(frame.image, face, self.source)
        middle = time.perf_counter()
        self.label.apply(frame.image)
        frame.timings["swap"] = (middle - start) * 1000.0
        frame.timings["label"] = (time.perf_counter() - middle) * 1000.0
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
