"""What a worker process runs: one chunk of a video, or one group of stills.

The session (every model) is loaded once per worker process and kept for the next task with the
same settings; the source face arrives already registered, as data. A chunk is decoded, tracked,
composed and encoded exactly as VideoSwapJob does it (face stream reset at every segment start,
compose on a small thread pool, frames written in order), into segment files that go back to the
driver as bytes, so workers need no file system in common with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from swapline.batch.frames import Misplaced, chunk_frames, scan_frames
from swapline.batch.plan import ImageGroup, VideoChunk
from swapline.errors import SwaplineError
from swapline.io.video import SegmentWriter, VideoInfo, probe
from swapline.pipeline.video_job import decode_hand_off, feed
from swapline.runtime.memory import tune_for_frames
from swapline.session import SwapSession
from swapline.settings import SwapSettings, VideoOptions
from swapline.trust.watermark import Payload

log = logging.getLogger("swapline.batch")

# One session per worker process and settings; read only by _session() below.
_SESSIONS: dict[str, SwapSession] = {}


@dataclass(frozen=True)
class Shipped:
    """A driver-side file on its way to a worker on another machine: its bytes in Ray's object store."""

    key: str  # name, size and modification time: a changed file is a new key
    ref: object  # ray.ObjectRef of the file's bytes


@dataclass(frozen=True)
class JobContext:
    """What every task of one batch shares."""

    settings: SwapSettings
    video: VideoOptions
    source: Path  # the source photo (stills re-read it through swap_image_file)
    files: dict[Path, Shipped] = field(default_factory=dict)  # empty: workers see the driver's files
    crash_once_marker: Path | None = None
    # The invisible mark's payload (its job id): the driver's for stills, one per video (kept in its
    # work folder, so a resumed video keeps the job id its first segments carry)
    mark: Payload | None = None
    video_marks: dict[Path, Payload] = field(default_factory=dict)


@dataclass
class SegmentFile:
    index: int
    frames: int
    data: bytes


@dataclass
class ChunkResult:
    input: Path
    chunk: int
    segments: list[SegmentFile]
    frames: int
    frames_with_faces: int
    faces_swapped: int
    seeked: bool  # False: the chunk was decoded from the start of the video
    seconds: float
    worker: tuple[str, int] = ("", 0)  # (host, pid) of the worker process
    worker_cpu_s: float = 0.0  # its CPU time so far (models loaded included)


@dataclass
class StillResult:
    input: Path
    output: Path
    data: bytes | None  # the finished file (label and provenance in it); None on error
    error: str | None
    faces_found: int = 0
    faces_swapped: int = 0


@dataclass
class ImageGroupResult:
    group: int
    items: list[StillResult]
    seconds: float
    worker: tuple[str, int] = ("", 0)
    worker_cpu_s: float = 0.0


def shipping_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]


def _local(context: JobContext, path: Path) -> Path:
    """The path to read `path` at on this worker: itself, or a copy fetched once per machine."""
    shipped = context.files.get(path)
    if shipped is None:
        return path
    from swapline.io.atomic import atomic_output

    copy = Path(tempfile.gettempdir()) / "swapline-batch-inputs" / shipped.key / path.name
    if not copy.exists():
        import ray

        copy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(copy) as tmp:
            tmp.write_bytes(ray.get(shipped.ref))
    return copy


def _session(context: JobContext) -> SwapSession:
    key = repr(context.settings)
    session = _SESSIONS.get(key)
    if session is None:
        settings = context.settings
        if settings.faces.reference is not None:
            local = _local(context, Path(settings.faces.reference))
            settings = replace(settings, faces=replace(settings.faces, reference=local))
        session = _SESSIONS[key] = SwapSession(settings)
        log.info("worker %d: models loaded", os.getpid())
    return session


def _scratch() -> Path:
    """A folder for this task's segment files; those of worker processes that died are removed."""
    root = Path(tempfile.gettempdir()) / "swapline-batch-scratch"
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's: alive
        return True
    return True


def _use_mark(session: SwapSession, mark: Payload | None) -> None:
    """Every frame of one job carries the driver's payload, not this worker session's own job id."""
    if mark is not None:
        session.mark_payload = mark


def _crash_once(marker: Path) -> None:
    """The fault-tolerance test hook (BatchOptions.crash_once_marker): die once, mid-chunk."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(70)


def run_task(task: VideoChunk | ImageGroup, context: JobContext, source) -> ChunkResult | ImageGroupResult:
    """The one entry point both runners call; `source` is the registered source face."""
    session = _session(context)
    if isinstance(task, ImageGroup):
        _use_mark(session, context.mark)
        result = _run_images(session, task, context)
    else:
        _use_mark(session, context.video_marks.get(task.input, context.mark))
        result = _run_chunk(session, source, task, context)
    result.worker, result.worker_cpu_s = (socket.gethostname(), os.getpid()), time.process_time()
    return result


def _run_images(session: SwapSession, group: ImageGroup, context: JobContext) -> ImageGroupResult:
    from swapline.pipeline.image_job import swap_image_file

    start = time.monotonic()
    source = _local(context, context.source)
    results = []
    for target, output in group.items:
        with tempfile.TemporaryDirectory(prefix="swapline-still-") as tmp:
            written = Path(tmp) / output.name
            try:
                report = swap_image_file(source, _local(context, target), written, session=session)
            except SwaplineError as exc:
                results.append(StillResult(target, output, None, str(exc)))
                continue
            data = written.read_bytes()
            results.append(StillResult(target, output, data, None, report.faces_found, report.faces_swapped))
    return ImageGroupResult(group.index, results, time.monotonic() - start)


def _run_chunk(session: SwapSession, source, chunk: VideoChunk, context: JobContext) -> ChunkResult:
    start = time.monotonic()
    info = probe(_local(context, chunk.input))
    marker = context.crash_once_marker
    crash_at = None if marker is None else max(1, len(chunk.frame_pts) // 2)
    scratch = _scratch()

    def swap(frames):
        return swap_frames(session, source, info, frames, context.video, scratch, crash_at, marker)

    try:
        counts, segments = swap(chunk_frames(info, chunk))
        seeked = chunk.first_frame > 0 and bool(chunk.frame_pts)
    except Misplaced as exc:
        log.warning("%s chunk %d: %s; decoding it from the start instead", chunk.input, chunk.index, exc)
        counts, segments = swap(scan_frames(info, chunk))
        seeked = False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ChunkResult(
        input=chunk.input,
        chunk=chunk.index,
        segments=segments,
        frames=counts["frames"],
        frames_with_faces=counts["with_faces"],
        faces_swapped=counts["swapped"],
        seeked=seeked,
        seconds=time.monotonic() - start,
    )


class _Segments:
    """Composed frames, in order, into one file per segment; a segment's bytes once it is closed."""

    def __init__(self, folder: Path, info: VideoInfo, options: VideoOptions):
        self.folder, self.info, self.options = folder, info, options
        self.writer: SegmentWriter | None = None
        self.segment = -1
        self.done: list[SegmentFile] = []

    def write(self, segment: int, image, pts: int) -> None:
        if segment != self.segment:
            self.finish()
            path = self.folder / f"segment_{segment:05d}.mp4"
            options = self.options
            self.writer = SegmentWriter(path, self.info, options.crf, options.preset, options.encoder_cores)
            self.segment = segment
        self.writer.write(image, pts)

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            path = Path(self.writer.path)
            self.done.append(SegmentFile(self.segment, self.writer.frames, path.read_bytes()))
            path.unlink()
            self.writer = None

    def abandon(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):  # already failing; the file is dropped either way
                self.writer.close()
            Path(self.writer.path).unlink(missing_ok=True)
            self.writer = None


def swap_frames(
    session: SwapSession,
    source,
    info: VideoInfo,
    frames,
    options: VideoOptions,
    folder: Path,
    crash_at: int | None = None,
    crash_marker: Path | None = None,
) -> tuple[dict[str, int], list[SegmentFile]]:
    """Frames [a, b) of a video into its segment files, as VideoSwapJob makes them.

    The face stream restarts at each segment's first frame, compose runs on options.workers
    threads, and frames are encoded in order.
    """
    tune_for_frames(info.width, info.height)  # as VideoSwapJob: big frames go back to the system
    hand_off = decode_hand_off(info)  # as VideoSwapJob
    stop = threading.Event()
    errors: list[BaseException] = []
    reader = threading.Thread(target=feed, args=(frames, hand_off, stop, errors), name="decode", daemon=True)
    pool = ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="compose")
    segments = _Segments(folder, info, options)
    stream = session.stream()
    counts = {"frames": 0, "with_faces": 0, "swapped": 0}
    pending: deque[tuple[int, int, Future]] = deque()

    def compose(image, faces):
        return image, session.compose(image, faces, source)

    def drain(limit: int) -> None:
        while len(pending) > limit:
            segment, pts, future = pending.popleft()
            image, swapped = future.result()
            counts["swapped"] += swapped
            segments.write(segment, image, pts)
            counts["frames"] += 1
            if crash_at is not None and counts["frames"] == crash_at:
                _crash_once(crash_marker)

    current = -1
    try:
        reader.start()
        while (item := hand_off.get(stop)) is not None:
            segment = item.index // options.segment_frames
            if segment != current:
                current = segment
                stream.reset()
            faces = stream.update(item.image, item.time_s)
            counts["with_faces"] += bool(faces)
            pending.append((segment, item.pts, pool.submit(compose, item.image, faces)))
            drain(limit=2 * max(1, options.workers))
        if errors:
            raise errors[0]
        drain(limit=0)
        segments.finish()
    finally:
        stop.set()
        reader.join(timeout=5.0)
        pool.shutdown(wait=True, cancel_futures=True)
        segments.abandon()
    return counts, segments.done
