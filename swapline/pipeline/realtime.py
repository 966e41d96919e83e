"""Assembles the live pipeline from a session: track and compose stages, governors, warm-up."""

from __future__ import annotations

from swapline.pipeline.live import LivePipeline, Sink, Source
from swapline.pipeline.rate import AdaptiveRate
from swapline.pipeline.stages import ComposeStage, SequentialStages, StallStage, TrackStage
from swapline.pipeline.thermal import ThermalGovernor, read_cpu_temperature
from swapline.session import SwapSession
from swapline.settings import LiveOptions
from swapline.trust.liveness import LivenessCheck, LivenessStage


def build_stages(session: SwapSession, registered, options: LiveOptions, sensor=read_cpu_temperature) -> list:
    """The processing stages for one run; each run gets its own face stream."""
    governor = ThermalGovernor(options.thermal, sensor)
    track = TrackStage(session.stream(live=True), AdaptiveRate(options.rate), governor)
    if options.liveness is not None:  # no swap until the person in front of the camera proves alive
        track = LivenessStage(track, LivenessCheck(options.liveness))
    compose = ComposeStage(session, registered, governor)
    if options.stall_ms > 0:
        compose = StallStage(compose, options.stall_ms, options.stall_every)
    if options.split_stages:
        return [track, compose]
    return [SequentialStages("process", [track, compose])]


def build_live_pipeline(
    session: SwapSession,
    registered,
    frames: Source,
    sink: Sink,
    options: LiveOptions | None = None,
    sensor=read_cpu_temperature,
    size: tuple[int, int] = (640, 480),
) -> LivePipeline:
    """A pipeline ready to run; the models are warmed up here, before the first frame is captured."""
    options = options or LiveOptions()
    session.warm_up(*size)
    return LivePipeline(frames, build_stages(session, registered, options, sensor), sink, options)
