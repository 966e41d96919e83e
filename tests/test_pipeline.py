"""The live conveyor with fake stages: ordering, bounded latency, drop accounting, clean stops."""

import time

import numpy as np
import pytest

from swapline.io.sources import ImageSource
from swapline.pipeline.histogram import LatencyHistogram
from swapline.pipeline.live import LivePipeline
from swapline.settings import LiveOptions
from tests.conftest import LockstepSink, LockstepSource


class SleepStage:
    def __init__(self, name, ms, every=1, extra_ms=0.0):
        self.name, self.ms, self.every, self.extra_ms = name, ms, every, extra_ms
        self.seen = []

    def process(self, frame):
        self.seen.append(frame.seq)
        pause = self.ms + (self.extra_ms if frame.seq % self.every == 0 else 0.0)
        time.sleep(pause / 1000.0)
        return frame


class RecordingSink:
    def __init__(self, stop_after=None):
        self.seqs, self.latencies, self.stop_after = [], [], stop_after
        self.closed = False

    def write(self, frame, stats):
        self.seqs.append(frame.seq)
        self.latencies.append((time.monotonic() - frame.captured_at) * 1000.0)
        return self.stop_after is None or len(self.seqs) < self.stop_after

    def close(self):
        self.closed = True


class FailingSource(ImageSource):
    def __init__(self, fail_after):
        super().__init__(np.zeros((32, 32, 3), np.uint8), fps=200)
        self.fail_after = fail_after

    def read(self):
        if self._count >= self.fail_after:
            raise OSError("camera 0 stopped delivering frames")
        return super().read()


def source(fps, frames):
    return ImageSource(np.zeros((32, 32, 3), np.uint8), fps=fps, frames=frames)


def test_frames_arrive_in_capture_order():
    sink = RecordingSink()
    stages = [SleepStage("a", 2, every=3, extra_ms=6), SleepStage("b", 3, every=5, extra_ms=5)]
    stats = LivePipeline(source(200, 150), stages, sink).run()
    assert sink.seqs == sorted(sink.seqs) and len(set(sink.seqs)) == len(sink.seqs)
    assert stats.out_of_order == 0 and stats.frames_out == len(sink.seqs) > 10


def test_slow_stage_drops_frames_instead_of_queueing_delay():
    # source at 100 fps, a stage that needs 40 ms: only ~1 in 4 frames can be processed
    sink = RecordingSink()
    stage = SleepStage("slow", 40)
    stats = LivePipeline(source(100, 150), [stage], sink, LiveOptions(max_latency_ms=500)).run()
    assert stats.frames_in == 150
    # every frame is accounted for: delivered or dropped (and counted)
    assert stats.frames_in == stats.frames_out + stats.dropped
    # newer frames replaced older ones before processing: the stage never saw a backlog, and no
    # frame waited long enough to go stale (a queueing pipeline would have processed all 150)
    assert stats.overwritten > 0 and len(stage.seen) < stats.frames_in
    assert stats.dropped_stale == {} and stats.dropped == stats.overwritten


def test_stale_frames_are_dropped_at_the_hand_off_and_counted():
    sink = RecordingSink()
    stages = [SleepStage("a", 1), SleepStage("b", 60)]  # everything leaves b older than 50 ms
    stats = LivePipeline(source(50, 25), stages, sink, LiveOptions(max_latency_ms=50)).run()
    assert stats.frames_out == 0 and sink.seqs == []
    assert stats.dropped_stale["output"] == len(stages[1].seen) > 1  # (a busy machine sees fewer)


def test_clean_stop_when_the_source_ends():
    frames = LockstepSource(np.zeros((32, 32, 3), np.uint8) for _ in range(40))
    sink = RecordingSink()
    stages = [SleepStage("a", 0), SleepStage("b", 0)]
    pipeline = LivePipeline(frames, stages, LockstepSink(sink, frames), LiveOptions(max_latency_ms=1e9))
    stats = pipeline.run()
    assert stats.stop_reason == "source ended" and stats.error is None
    assert pipeline.alive_threads == [] and sink.closed
    assert stats.frames_out == 40 and sink.seqs == list(range(40))


def test_clean_stop_when_the_source_fails_mid_stream():
    sink = RecordingSink()
    pipeline = LivePipeline(FailingSource(fail_after=12), [SleepStage("a", 1)], sink)
    stats = pipeline.run()
    assert "stopped delivering frames" in stats.error
    assert stats.stop_reason == "source failed"
    assert pipeline.alive_threads == [] and 0 < stats.frames_out <= 12


def test_stage_failure_stops_the_run_with_a_message():
    class Broken:
        name = "broken"

        def process(self, frame):
            # from frame 5 on: a busy machine's newest-wins slot may overwrite frame 5 itself
            if frame.seq >= 5:
                raise ValueError("bad frame")
            return frame

    pipeline = LivePipeline(source(300, 100), [Broken()], RecordingSink())
    stats = pipeline.run()
    assert stats.error == "stage broken failed: bad frame" and pipeline.alive_threads == []


def test_sink_can_stop_the_run_and_duration_is_honoured():
    sink = RecordingSink(stop_after=10)
    pipeline = LivePipeline(source(300, None), [SleepStage("a", 0)], sink)
    assert pipeline.run().stop_reason == "stopped by the user" and len(sink.seqs) == 10
    pipeline = LivePipeline(source(100, None), [SleepStage("a", 0)], RecordingSink())
    start = time.monotonic()
    stats = pipeline.run(duration_s=0.5)
    assert stats.stop_reason == "duration reached" and time.monotonic() - start < 3.0
    assert pipeline.alive_threads == []


def test_histogram_percentiles_match_the_samples():
    rng = np.random.default_rng(1)
    samples = rng.lognormal(mean=3.0, sigma=0.5, size=5000)
    histogram = LatencyHistogram()
    for value in samples:
        histogram.add(float(value))
    for p in (50, 95, 99):
        assert histogram.percentile(p) == pytest.approx(np.percentile(samples, p), rel=0.02)
    assert histogram.max == pytest.approx(samples.max())
    assert histogram.counts.size == LatencyHistogram().counts.size  # fixed size, whatever the count


def test_duration_is_honoured_even_when_every_frame_is_stale():
    pipeline = LivePipeline(
        source(50, None),
        [SleepStage("slow", 250), SleepStage("b", 0)],
        RecordingSink(),
        LiveOptions(max_latency_ms=200),
    )
    start = time.monotonic()
    stats = pipeline.run(duration_s=1.0)
    assert time.monotonic() - start < 4.0 and stats.frames_out == 0 and stats.dropped_stale
    assert pipeline.alive_threads == []
