"""The live conveyor: capture thread -> processing stage threads -> output, bounded hand-offs.

Latency is bounded by design: the camera side keeps only its newest frame, stages are joined
by queues of one, and a frame older than max_latency_ms at any hand-off is dropped (and
counted) instead of being delivered late. Each stage is a single thread reading a FIFO, so
frames reach the sink in capture order.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from swapline.pipeline.frames import EndOfStream, Frame
from swapline.pipeline.handoff import LatestSlot, StageQueue, Stopped
from swapline.pipeline.histogram import LatencyHistogram, StageHistograms
from swapline.settings import LiveOptions


class Source(Protocol):
    """Delivers frames at its own pace; read() blocks until the next one, None when it ends."""

    def read(self) -> tuple[np.ndarray, float] | None: ...  # (image, capture time, monotonic s)

    def close(self) -> None: ...


class Stage(Protocol):
    name: str

    def process(self, frame: Frame) -> Frame: ...


class Sink(Protocol):
    def write(self, frame: Frame, stats: LiveStats) -> bool: ...  # False: the user asked to stop

    def close(self) -> None: ...


@dataclass
class LiveStats:
    frames_in: int = 0
    frames_out: int = 0
    overwritten: int = 0  # replaced in the capture slot before processing took them
    dropped_stale: dict[str, int] = field(default_factory=dict)  # by the hand-off that dropped them
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    stages: StageHistograms = field(default_factory=StageHistograms)
    started_at: float = 0.0
    finished_at: float = 0.0
    stop_reason: str = ""
    error: str | None = None
    out_of_order: int = 0

    @property
    def dropped(self) -> int:
        return self.overwritten + sum(self.dropped_stale.values())

    @property
    def duration_s(self) -> float:
        end = self.finished_at or time.monotonic()
        return max(1e-9, end - self.started_at)

    def summary(self) -> dict:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "dropped_overwritten": self.overwritten,
            "dropped_stale": dict(self.dropped_stale),
            "drop_rate": round(self.dropped / self.frames_in, 4) if self.frames_in else 0.0,
            "output_fps": round(self.frames_out / self.duration_s, 2),
            "duration_s": round(self.duration_s, 3),
            "latency_ms": self.latency.summary(),
            "stages_ms": self.stages.summary(),
            "stop_reason": self.stop_reason,
            "error": self.error,
        }


class LivePipeline:
    def __init__(self, source: Source, stages: list[Stage], sink: Sink, options: LiveOptions | None = None):
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.source = source
        self.stages = stages
        self.sink = sink
        self.options = options or LiveOptions()
        self.stats = LiveStats()
        self._stop = threading.Event()
        self._slot = LatestSlot()
        self._queues = [StageQueue(self.options.queue_size) for _ in stages]
        self._lock = threading.Lock()

    def stop(self, reason: str = "") -> None:
        """Ask the run to end (from any thread or a signal handler); the sink is still closed cleanly."""
        if reason and not self.stats.stop_reason:
            self.stats.stop_reason = reason
        self._stop.set()

    def _stale(self, frame: Frame, where: str) -> bool:
        age_ms = (time.monotonic() - frame.captured_at) * 1000.0
        if age_ms <= self.options.max_latency_ms:
            return False
        with self._lock:
            self.stats.dropped_stale[where] = self.stats.dropped_stale.get(where, 0) + 1
        return True

    def _capture(self) -> None:
        seq = 0
        try:
            while not self._stop.is_set():
                item = self.source.read()
                if item is None:
                    self.stats.stop_reason = self.stats.stop_reason or "source ended"
                    break
                image, captured_at = item
                self.stats.frames_in += 1
                self._slot.put(Frame(seq=seq, captured_at=captured_at, image=image))
                seq += 1
        except Exception as exc:  # a vanished camera or a broken file: stop cleanly, say why
            self.stats.error = str(exc) or type(exc).__name__
            self.stats.stop_reason = "source failed"
        finally:
            self._slot.put_after_pending(EndOfStream(self.stats.error), self._stop)

    def _stage_worker(self, index: int) -> None:
        stage = self.stages[index]
        out = self._queues[index]
        try:
            while True:
                item = self._slot.get(self._stop) if index == 0 else self._queues[index - 1].get(self._stop)
                if isinstance(item, EndOfStream):
                    out.put(item, self._stop)
                    return
                if self._stale(item, stage.name):
                    continue
                if index == 0:
                    item.timings["capture wait"] = (time.monotonic() - item.captured_at) * 1000.0
                try:
                    result = stage.process(item)
                except Exception as exc:
                    self.stats.error = f"stage {stage.name} failed: {exc}"
                    self.stats.stop_reason = "processing failed"
                    out.put(EndOfStream(self.stats.error), self._stop)
                    return
                out.put(result, self._stop)
        except Stopped:
            return

    def run(self, duration_s: float | None = None) -> LiveStats:
        """Run until the source ends, the sink asks to stop, or duration_s passes (output runs here)."""
        stats = self.stats
        stats.started_at = time.monotonic()
        threads = [threading.Thread(target=self._capture, name="capture", daemon=True)]
        threads += [
            threading.Thread(target=self._stage_worker, args=(i,), name=f"stage-{s.name}", daemon=True)
            for i, s in enumerate(self.stages)
        ]
        self._threads = threads
        for thread in threads:
            thread.start()
        deadline = None if duration_s is None else stats.started_at + duration_s
        last_seq = -1
        try:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    stats.stop_reason = "duration reached"
                    break
                stats.overwritten = self._slot.overwritten  # live, for overlays
                try:
                    item = self._queues[-1].get(self._stop, timeout=0.1)
                except queue.Empty:
                    continue  # nothing arrived (everything stale?): look at the deadline again
                except Stopped:
                    break
                if isinstance(item, EndOfStream):
                    break
                if self._stale(item, "output"):
                    continue
                if item.seq <= last_seq:
                    stats.out_of_order += 1
                last_seq = item.seq
                start = time.monotonic()
                keep_going = self.sink.write(item, stats)
                done = time.monotonic()
                item.timings["output"] = (done - start) * 1000.0
                stats.latency.add((done - item.captured_at) * 1000.0)
                stats.stages.add(item.timings)
                stats.frames_out += 1
                if not keep_going:
                    stats.stop_reason = "stopped by the user"
                    break
        except KeyboardInterrupt:
            stats.stop_reason = "interrupted"
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=2.0)
            stats.finished_at = time.monotonic()
            stats.overwritten = self._slot.overwritten
            self.source.close()
            self.sink.close()
        return stats

    @property
    def alive_threads(self) -> list[str]:
        """Names of this pipeline's threads still running (empty after a clean stop)."""
        return [t.name for t in getattr(self, "_threads", []) if t.is_alive()]
