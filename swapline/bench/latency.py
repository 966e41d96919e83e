"""`swapline bench latency`: glass-to-glass latency of the live pipeline, against the serial baseline.

A video file plays at a fixed pace as a stand-in camera, through the real pipeline, into the
null sink. The same input is then run through the serial baseline: every frame queued and
processed in turn, as tools without frame dropping do. Both are reported side by side.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from pathlib import Path

from rich.progress import Progress

from swapline.io import read_image
from swapline.io.sinks import NullSink
from swapline.io.sources import VideoFileSource
from swapline.pipeline.components import ModelChoices
from swapline.pipeline.frames import Frame
from swapline.pipeline.histogram import LatencyHistogram
from swapline.pipeline.live import LivePipeline, LiveStats
from swapline.pipeline.realtime import RealtimeSettings, build_stages, build_swappers, register_source_face
from swapline.runtime import shared_sessions


class WindowedLatency:
    """p99 per fixed time window, to show latency does not creep up over a long run."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self.windows: list[LatencyHistogram] = []
        self._start: float | None = None

    def add(self, done: float, latency_ms: float) -> None:
        if self._start is None:
            self._start = done
        index = int((done - self._start) // self.window_s)
        while len(self.windows) <= index:
            self.windows.append(LatencyHistogram())
        self.windows[index].add(latency_ms)

    def p99s(self) -> list[float]:
        return [round(w.percentile(99), 2) for w in self.windows if w.count]


class WindowedNullSink(NullSink):
    def __init__(self, windows: WindowedLatency):
        self.windows = windows

    def write(self, frame, stats) -> bool:
        now = time.monotonic()
        self.windows.add(now, (now - frame.captured_at) * 1000.0)
        return True


# Documented JSON keys (see BENCHMARKS.md): each run has the keys of LiveStats.summary().
RUN_KEYS = ("frames_in", "frames_out", "dropped", "drop_rate", "output_fps", "latency_ms", "stages_ms")


def _serial(frames: VideoFileSource, stages: list, seconds: float, windows: WindowedLatency) -> LiveStats:
    """Every frame processed in turn: the camera buffer queues frames while we work."""
    stats = LiveStats()
    buffer: queue.Queue = queue.Queue()
    stop = threading.Event()

    def capture() -> None:
        seq = 0
        while not stop.is_set():
            item = frames.read()
            if item is None:
                break
            stats.frames_in += 1
            buffer.put(Frame(seq=seq, captured_at=item[1], image=item[0]))
            seq += 1
        buffer.put(None)

    thread = threading.Thread(target=capture, name="serial-capture", daemon=True)
    stats.started_at = time.monotonic()
    thread.start()
    deadline = stats.started_at + seconds
    while time.monotonic() < deadline:
        try:
            frame = buffer.get(timeout=0.1)
        except queue.Empty:
            continue
        if frame is None:
            break
        for stage in stages:
            frame = stage.process(frame)
        done = time.monotonic()
        stats.latency.add((done - frame.captured_at) * 1000.0)
        windows.add(done, (done - frame.captured_at) * 1000.0)
        stats.stages.add(frame.timings)
        stats.frames_out += 1
    stop.set()
    thread.join(timeout=2.0)
    stats.finished_at = time.monotonic()
    frames.close()
    stats.stop_reason = "duration reached"
    return stats


def run_latency(
    source: Path,
    video: Path,
    fps: float = 30.0,
    seconds: float = 20.0,
    stall_ms: float = 0.0,
    stall_every: int = 30,
    layouts: tuple[str, ...] = ("split", "single", "serial"),
    window_s: float = 10.0,
    models: ModelChoices | None = None,
    show_progress: bool = True,
) -> dict:
    base = RealtimeSettings(stall_ms=stall_ms, stall_every=stall_every, models=models or ModelChoices(detector="short"))
    sessions = shared_sessions(base.runtime)
    swappers = build_swappers(base, sessions)
    registered = register_source_face(read_image(source).pixels, str(source), swappers[0], sessions)
    results = {}
    with Progress(disable=not show_progress, transient=True) as progress:
        for layout in layouts:
            task = progress.add_task(f"{layout}: {seconds:.0f} s at {fps:g} fps", total=None)
            settings = replace(base, split_stages=(layout == "split"))
            stages = build_stages(registered, settings, sessions, swappers)
            frames = VideoFileSource(video, fps=fps, loop=True)
            windows = WindowedLatency(window_s)
            if layout == "serial":
                stats = _serial(frames, stages, seconds, windows)
            else:
                sink = WindowedNullSink(windows)
                stats = LivePipeline(frames, stages, sink, settings.live).run(duration_s=seconds)
            summary = stats.summary()
            results[layout] = {key: summary[key] for key in RUN_KEYS}
            results[layout]["p99_ms_by_window"] = windows.p99s()
            progress.update(task, completed=1, total=1)
    report = {
        "input": {
            "video": Path(video).name,
            "fps": fps,
            "seconds": seconds,
            "stall_ms": stall_ms,
            "stall_every": stall_every,
            "window_s": window_s,
        },
        "runs": results,
    }
    if "serial" in results and "split" in results:
        serial, split = results["serial"]["latency_ms"], results["split"]["latency_ms"]
        report["serial_over_pipelined"] = {
            key: round(serial[key] / split[key], 2) if split[key] else None for key in ("p50_ms", "p95_ms", "p99_ms")
        }
    return report
