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

from swapline.bench.report import ProgressCallback, make_table, no_progress
from swapline.io import read_image
from swapline.io.sinks import NullSink
from swapline.io.sources import VideoFileSource
from swapline.pipeline.frames import Frame
from swapline.pipeline.histogram import LatencyHistogram
from swapline.pipeline.live import LivePipeline, LiveStats
from swapline.pipeline.realtime import build_stages
from swapline.session import SwapSession
from swapline.settings import LiveOptions, ModelChoices, SwapSettings


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
    settings: SwapSettings | None = None,
    on_progress: ProgressCallback = no_progress,
) -> dict:
    settings = settings or SwapSettings(models=ModelChoices(detector="short"))
    session = SwapSession(settings)
    registered = session.register_source(read_image(source).pixels, str(source))
    probe_frames = VideoFileSource(video, fps=fps)
    session.warm_up(probe_frames.width, probe_frames.height)
    probe_frames.close()
    base = LiveOptions(stall_ms=stall_ms, stall_every=stall_every)
    results = {}
    for done, layout in enumerate(layouts):
        on_progress(done, len(layouts))
        options = replace(base, split_stages=(layout == "split"))
        stages = build_stages(session, registered, options)
        frames = VideoFileSource(video, fps=fps, loop=True)
        windows = WindowedLatency(window_s)
        if layout == "serial":
            stats = _serial(frames, stages, seconds, windows)
        else:
            stats = LivePipeline(frames, stages, WindowedNullSink(windows), options).run(duration_s=seconds)
        summary = stats.summary()
        results[layout] = {key: summary[key] for key in RUN_KEYS}
        results[layout]["p99_ms_by_window"] = windows.p99s()
    on_progress(len(layouts), len(layouts))
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


def latency_tables(report: dict) -> list:
    inp = report["input"]
    rows = []
    for layout, run in report["runs"].items():
        lat = run["latency_ms"]
        rows.append(
            [layout, lat["p50_ms"], lat["p95_ms"], lat["p99_ms"], lat["max_ms"]]
            + [run["frames_in"], run["frames_out"], run["dropped"], run["output_fps"]]
        )
    title = f"end-to-end latency, {inp['fps']:g} fps input, {inp['seconds']:g} s" + (
        f", {inp['stall_ms']:g} ms stall every {inp['stall_every']} frames" if inp["stall_ms"] else ""
    )
    columns = ["layout", "p50 ms", "p95 ms", "p99 ms", "max ms", "in", "out", "dropped", "fps"]
    stage_rows = [
        [f"{layout}: {stage}", h["p50_ms"], h["p95_ms"]]
        for layout, run in report["runs"].items()
        for stage, h in run["stages_ms"].items()
    ]
    tables: list = [
        make_table(title, columns, rows),
        make_table("per stage", ["stage", "p50 ms", "p95 ms"], stage_rows),
    ]
    for layout, run in report["runs"].items():
        tables.append(f"{layout}: p99 ms per {inp['window_s']:g} s window: {run['p99_ms_by_window']}")
    if "serial_over_pipelined" in report:
        tables.append(f"serial / pipelined latency: {report['serial_over_pipelined']}")
    return tables
