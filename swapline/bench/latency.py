"""`swapline bench latency`: glass-to-glass latency of the live pipeline, against the serial baseline.

A video file plays at a fixed pace as a stand-in camera, through the real pipeline, into the
null sink. The same input is then run through the serial baseline: every frame queued and
processed in turn, as tools without frame dropping do. Both are reported side by side.

The split run also keeps a sample of frames as they reach the compose stage; after the run the
same frames are composed again with nothing else running, so the cost the pipeline adds to
compose (contention for the cores, the GIL, caches) shows as a ratio of like for like.

Opt-in (`traces`): a FrameTrace per layout, every frame's timeline (due, released by the source,
each stage's start and end and thread, delivered), to find what the slowest frames waited on.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from swapline.bench.report import ProgressCallback, make_table, no_progress
from swapline.io import read_image
from swapline.io.sinks import NullSink
from swapline.io.sources import VideoFileSource
from swapline.pipeline.frames import Frame
from swapline.pipeline.histogram import LatencyHistogram
from swapline.pipeline.live import LivePipeline, LiveStats
from swapline.pipeline.realtime import build_stages
from swapline.pipeline.stages import ComposeStage, StallStage
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
    def __init__(self, windows: WindowedLatency, trace: FrameTrace | None = None):
        self.windows = windows
        self.trace = trace

    def write(self, frame, stats) -> bool:
        now = time.monotonic()
        self.windows.add(now, (now - frame.captured_at) * 1000.0)
        if self.trace is not None:
            self.trace.delivered(frame, now)
        return True


@dataclass
class FrameTrace:
    """Every frame's timeline in one layout's run (time.monotonic() seconds), kept only when asked:
    percentiles say how slow the tail is, this says what a slow frame was waiting on. `released`:
    when the source handed frame seq over (its capture time is when it was due); `spans`: (seq,
    stage, thread id, start, end, thread CPU ms, run-queue ms or None) per stage call; `done`:
    seq -> (delivered, stage timings)."""

    released: list[float] = field(default_factory=list)
    spans: list[tuple[int, str, int, float, float, float, float | None]] = field(default_factory=list)
    done: dict[int, tuple[float, dict[str, float]]] = field(default_factory=dict)
    due: dict[int, float] = field(default_factory=dict)

    def delivered(self, frame: Frame, at: float) -> None:
        self.due[frame.seq] = frame.captured_at
        self.done[frame.seq] = (at, dict(frame.timings))

    def rows(self) -> list[dict]:
        """One row per delivered frame, times in ms from the first frame's due time."""
        if not self.done:
            return []
        zero = min(self.due.values())
        spans: dict[int, dict[str, list[float]]] = {}
        for seq, stage, thread, start, end, cpu, runq in self.spans:
            spans.setdefault(seq, {})[stage] = {
                "start_ms": round((start - zero) * 1000, 3),
                "end_ms": round((end - zero) * 1000, 3),
                "cpu_ms": round(cpu, 3),
                "runq_ms": None if runq is None else round(runq, 3),
                "thread": thread,
            }
        rows = []
        for seq in sorted(self.done):
            at, timings = self.done[seq]
            due = self.due[seq]
            released = self.released[seq] if seq < len(self.released) else None
            rows.append(
                {
                    "seq": seq,
                    "due_ms": round((due - zero) * 1000, 3),
                    "released_late_ms": None if released is None else round((released - due) * 1000, 3),
                    "latency_ms": round((at - due) * 1000, 3),
                    "stages": spans.get(seq, {}),
                    "timings": {k: round(v, 3) for k, v in timings.items()},
                }
            )
        return rows


class TracedSource:
    """A source that notes when each frame was handed over (the n-th read is frame seq n)."""

    def __init__(self, inner: VideoFileSource, trace: FrameTrace):
        self.inner, self.trace = inner, trace

    def read(self):
        item = self.inner.read()
        if item is not None:
            self.trace.released.append(time.monotonic())
        return item

    def close(self) -> None:
        self.inner.close()


class TracedStage:
    """A stage that notes when it started and ended each frame, on which thread, and the thread's CPU
    and run-queue time meanwhile (wall far above CPU: it waited, for the GIL, the GPU or a lock)."""

    def __init__(self, inner, trace: FrameTrace):
        self.inner, self.trace, self.name = inner, trace, inner.name

    def process(self, frame: Frame) -> Frame:
        cpu, runq = _thread_clock()
        start = time.monotonic()
        result = self.inner.process(frame)
        end = time.monotonic()
        cpu_end, runq_end = _thread_clock()
        waited = None if runq is None or runq_end is None else runq_end - runq
        self.trace.spans.append((frame.seq, self.name, threading.get_native_id(), start, end, cpu_end - cpu, waited))
        return result


def _thread_clock() -> tuple[float, float | None]:
    """(CPU ms, ms spent runnable but waiting for a core) of the calling thread; the second is
    Linux only (schedstat), None elsewhere."""
    cpu = time.thread_time() * 1000.0
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return cpu, int(f.read().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return cpu, None


@dataclass
class ComposeSample:
    """One frame as it reached the compose stage, and what composing it cost there."""

    seq: int
    image: np.ndarray
    faces: list
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    runq_ms: float | None = None


@dataclass
class ComposeMeter:
    """Wraps the compose stage: times every call (wall, this thread's CPU, run-queue wait) and keeps
    a copy of every `every`-th frame as it arrives (up to `keep`), to compose again in isolation."""

    inner: ComposeStage
    every: int = 3
    keep: int = 60
    samples: list[ComposeSample] = field(default_factory=list)
    _count: int = field(default=0, init=False)

    @property
    def name(self) -> str:
        return self.inner.name

    def process(self, frame: Frame) -> Frame:
        self._count += 1
        sample = None
        if self._count % self.every == 0 and len(self.samples) < self.keep:
            sample = ComposeSample(frame.seq, frame.image.copy(), list(frame.faces))
        wall, (cpu, runq) = time.perf_counter(), _thread_clock()
        result = self.inner.process(frame)
        cpu_end, runq_end = _thread_clock()
        if sample is not None:
            sample.wall_ms = (time.perf_counter() - wall) * 1000.0
            sample.cpu_ms = cpu_end - cpu
            sample.runq_ms = None if runq is None or runq_end is None else runq_end - runq
            self.samples.append(sample)
        return result


def meter_compose(stages: list, every: int = 3, keep: int = 60) -> ComposeMeter:
    """Put a ComposeMeter around the compose stage of a split layout (under a StallStage, if any)."""
    stall = stages[-1] if isinstance(stages[-1], StallStage) else None
    inner = stall.inner if stall is not None else stages[-1]
    if not isinstance(inner, ComposeStage):
        raise ValueError("the last stage of a split layout is the compose stage")
    meter = ComposeMeter(inner, every, keep)
    if stall is not None:
        stall.inner = meter
    else:
        stages[-1] = meter
    return meter


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def compose_alone(meter: ComposeMeter, sample: ComposeSample) -> tuple[Frame, float, float]:
    """A kept frame composed again by the same stage, on a fresh copy: (frame, wall ms, CPU ms)."""
    frame = Frame(seq=sample.seq, captured_at=time.monotonic(), image=sample.image.copy(), faces=list(sample.faces))
    start, (cpu_start, _) = time.perf_counter(), _thread_clock()
    meter.inner.process(frame)
    return frame, (time.perf_counter() - start) * 1000.0, _thread_clock()[0] - cpu_start


def run_compose_gap(
    session: SwapSession,
    registered,
    video: Path,
    fps: float,
    options: LiveOptions,
    rounds: int = 3,
    seconds: float = 4.0,
    skip: int = 2,
) -> dict:
    """Compose inside the split pipeline against the same frames composed in isolation.

    Each round runs the pipeline for `seconds` (keeping about 40 frames as they reach compose), then
    composes those frames again alone, so both sides of a round see the same load from outside this
    process; p50s are over all rounds, wall and CPU (the CPU ratio does not move with outside load).
    """
    live_wall: list[float] = []
    live_cpu: list[float] = []
    runq: list[float] = []
    wall: list[float] = []
    cpu: list[float] = []
    ratios = []
    for _ in range(rounds):
        stages = build_stages(session, registered, replace(options, split_stages=True))
        meter = meter_compose(stages, every=max(1, round(fps * seconds / 40)), keep=40)
        frames = VideoFileSource(video, fps=fps, loop=True)
        LivePipeline(frames, stages, NullSink(), options).run(duration_s=seconds)
        kept = meter.samples[skip:]
        if not kept:
            continue
        timed = [compose_alone(meter, sample)[1:] for sample in kept]  # nothing else running now
        ratios.append(round(_p50([s.wall_ms for s in kept]) / max(1e-9, _p50([t[0] for t in timed])), 2))
        live_wall += [s.wall_ms for s in kept]
        live_cpu += [s.cpu_ms for s in kept]
        runq += [s.runq_ms for s in kept if s.runq_ms is not None]
        wall += [t[0] for t in timed]
        cpu += [t[1] for t in timed]
    inside = {"p50_ms": _p50(live_wall), "cpu_p50_ms": _p50(live_cpu)}
    if runq:
        inside["runq_p50_ms"] = _p50(runq)
    alone = {"p50_ms": _p50(wall), "cpu_p50_ms": _p50(cpu)}

    def ratio(key: str) -> float | None:
        return round(inside[key] / alone[key], 2) if alone[key] else None

    return {
        "frames": len(wall),
        "rounds": rounds,
        "live": inside,
        "isolated": alone,
        "live_over_isolated": ratio("p50_ms"),
        "cpu_live_over_isolated": ratio("cpu_p50_ms"),
        "ratio_by_round": ratios,
    }


# Documented JSON keys (see BENCHMARKS.md): each run has the keys of LiveStats.summary().
RUN_KEYS = ("frames_in", "frames_out", "dropped", "drop_rate", "output_fps", "latency_ms", "stages_ms")


def _serial(
    frames, stages: list, seconds: float, windows: WindowedLatency, trace: FrameTrace | None = None
) -> LiveStats:
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
        if trace is not None:
            trace.delivered(frame, done)
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
    gap_rounds: int = 3,
    traces: dict[str, FrameTrace] | None = None,
) -> dict:
    """Each layout for `seconds`; with the split layout also the compose gap (see run_compose_gap),
    `gap_rounds` rounds of 4 s (0: none). `traces`: a dict to fill with each layout's FrameTrace
    (the report stays the same)."""
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
        trace = None
        if traces is not None:
            trace = traces[layout] = FrameTrace()
            frames, stages = TracedSource(frames, trace), [TracedStage(stage, trace) for stage in stages]
        windows = WindowedLatency(window_s)
        if layout == "serial":
            stats = _serial(frames, stages, seconds, windows, trace)
        else:
            sink = WindowedNullSink(windows, trace)
            stats = LivePipeline(frames, stages, sink, options).run(duration_s=seconds)
        summary = stats.summary()
        results[layout] = {key: summary[key] for key in RUN_KEYS}
        results[layout]["p99_ms_by_window"] = windows.p99s()
    gap = None
    if "split" in layouts and gap_rounds > 0:
        gap = run_compose_gap(session, registered, video, fps, base, gap_rounds)
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
    if gap is not None:
        report["compose_gap"] = gap
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
    gap = report.get("compose_gap")
    if gap and gap["frames"]:
        live, alone = gap["live"], gap["isolated"]
        gap_rows = [
            ["in the pipeline", live["p50_ms"], live["cpu_p50_ms"], live.get("runq_p50_ms", "")],
            ["alone", alone["p50_ms"], alone["cpu_p50_ms"], ""],
        ]
        title = (
            f"compose, same {gap['frames']} frames: pipeline / alone = {gap['live_over_isolated']}"
            f" (CPU {gap['cpu_live_over_isolated']})"
        )
        tables.append(make_table(title, ["", "p50 ms", "CPU p50 ms", "run-queue p50 ms"], gap_rows))
        tables.append(f"compose pipeline / alone by round: {gap['ratio_by_round']}")
    if "serial_over_pipelined" in report:
        tables.append(f"serial / pipelined latency: {report['serial_over_pipelined']}")
    return tables
