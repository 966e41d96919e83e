"""`swap` on a video: decode, follow faces, compose, encode in resumable segments, join with audio.

- Decoding runs in its own thread (a bounded hand-off), compositing on a small pool of threads
  or, with VideoOptions.processes, of worker processes (compose_processes.py; each frame then
  converted there to the encoder's yuv420p picture), the face stream and the
  encoder on the calling thread (x264 has threads of its own): all overlap, and frames are
  written in order. What is in flight is bounded in bytes, so a 4K job holds about three frames
  (with processes, at least one per worker).
- Work is cut into segments of `segment_frames` frames, each encoded to its own file in a
  SegmentStore beside the output. Run the same job again after a crash or Ctrl-C and finished
  segments are kept. The face stream restarts at every segment boundary, so a resumed run
  makes the same segments as an uninterrupted one.
- The result is assembled under a temporary name and renamed at the end. The input is only read.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from swapline.errors import Interrupted, SwaplineError
from swapline.io import read_image
from swapline.io.atomic import atomic_output
from swapline.io.paths import check_output_path
from swapline.io.video import (
    OUTPUT_FORMATS,
    SegmentWriter,
    VideoInfo,
    decode_frames,
    encoder_picture,
    join_segments,
    probe,
)
from swapline.pipeline.compose_processes import ComposeProcesses
from swapline.pipeline.handoff import StageQueue, Stopped
from swapline.pipeline.segments import SegmentStore, fingerprint
from swapline.runtime.memory import tune_for_frames
from swapline.session import SwapSession
from swapline.settings import SwapSettings, VideoOptions

if TYPE_CHECKING:
    import av

ProgressCallback = Callable[[int, int | None], None]  # (frames done, total frames or None)
# Decoded frames waiting (the one being decoded included), and frames submitted to compose and
# not yet written, bounded in bytes: 8 and 4 at 720p, 6 and 4 at 1080p, 1 and 1 at 4K, where each
# frame held is ~25 MB of peak RSS.
DECODE_BUFFER_BYTES = 40 << 20
COMPOSE_BUFFER_BYTES = 40 << 20
_POLL_S = 0.05  # how often a waiting decoder looks at `stop`


@dataclass
class VideoReport:
    input: str
    output: str
    frames: int
    segments: int
    resumed_segments: int
    frames_with_faces: int
    faces_swapped_per_frame: float
    dropped: int
    fps: float
    elapsed_s: float
    stages_ms: dict[str, float]  # mean per processed frame

    def to_dict(self) -> dict:
        return asdict(self)


def check_video_output(output: Path, inputs: list[Path | None]) -> Path:
    return check_output_path(output, inputs, OUTPUT_FORMATS)


def output_shaping(settings: SwapSettings, crf: int, preset: str, segment_frames: int) -> tuple:
    """What decides a video job's pixels, for its work-folder fingerprint: the settings (less the
    per-face thread count, which changes only speed), the encoder's quality and segment size."""
    return (replace(settings, face_workers=None), crf, preset, segment_frames)


class DecodeHandOff(StageQueue):
    """The decoder's bounded hand-off, whose bound also counts the frame being decoded: the
    decoder takes a slot before it decodes and the consumer frees it by taking a frame, so no
    finished frame waits in the decoder thread for room (a 4K frame is 25 MB)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._slots = threading.Semaphore(size)

    def reserve(self, stop: threading.Event) -> None:
        """Wait for a slot before decoding the next frame; raises Stopped when stopping."""
        while not self._slots.acquire(timeout=_POLL_S):
            if stop.is_set():
                raise Stopped

    def get(self, stop: threading.Event, timeout: float | None = None) -> Any:
        item = super().get(stop, timeout)
        self._slots.release()
        return item


def decode_hand_off(info: VideoInfo) -> DecodeHandOff:
    """Decoded frames waiting for the face stream, the one being decoded included: up to 8,
    fewer for big frames (one at 4K)."""
    return DecodeHandOff(size=max(1, min(8, DECODE_BUFFER_BYTES // (info.width * info.height * 3))))


def compose_backlog(info: VideoInfo, workers: int) -> int:
    """Frames submitted to the compose pool and not yet written: two per worker keeps the pool
    busy; big frames keep only COMPOSE_BUFFER_BYTES (one at 4K: it composes while the frame
    before it is encoded, and x264's own threads keep the cores busy)."""
    workers = max(1, workers)
    return max(1, min(2 * workers, COMPOSE_BUFFER_BYTES // (info.width * info.height * 3)))


def feed(frames: Iterable, out: DecodeHandOff, stop: threading.Event, errors: list[BaseException]) -> None:
    """Decoder thread: frames into the bounded hand-off, each decoded once it has a slot, then
    None; an error goes to the caller."""
    iterator = iter(frames)
    try:
        while True:
            out.reserve(stop)
            item = next(iterator, None)
            if item is None:
                break
            out.put(item, stop)
    except Stopped:
        return
    except BaseException as exc:  # handed to the main thread
        errors.append(exc)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    with contextlib.suppress(Stopped):
        out.put(None, stop)


class _SegmentEncoder:
    """Writes composed frames, in order, into segment files; a segment is kept only when complete."""

    def __init__(self, store: SegmentStore, info: VideoInfo, options: VideoOptions):
        self.store, self.info, self.options = store, info, options
        self.writer: SegmentWriter | None = None
        self.segment = -1
        self.ms = 0.0

    def write(self, segment: int, image: np.ndarray | av.VideoFrame, pts: int) -> None:
        if segment != self.segment:
            self.finish()
            self.writer = SegmentWriter(
                self.store.partial_path(segment),
                self.info,
                self.options.crf,
                self.options.preset,
                self.options.encoder_cores,
            )
            self.segment = segment
        start = time.perf_counter()
        self.writer.write(image, pts)
        self.ms += (time.perf_counter() - start) * 1000.0

    def finish(self) -> None:
        if self.writer is not None:
            start = time.perf_counter()
            self.writer.close()
            self.ms += (time.perf_counter() - start) * 1000.0
            self.store.finish(self.segment, self.writer.path, self.writer.frames)
            self.writer = None

    def abandon(self) -> None:
        """An unfinished segment is never kept."""
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            Path(self.writer.path).unlink(missing_ok=True)
            self.writer = None


class VideoSwapJob:
    """One video: the session's face stream and compose, the segment store, the encoder."""

    def __init__(
        self,
        session: SwapSession,
        source: Path | str,
        target: Path | str,
        output: Path | str,
        options: VideoOptions | None = None,
    ):
        self.session = session
        self.options = options or VideoOptions()
        self.source, self.target, self.output = Path(source), Path(target), Path(output)
        reference = session.settings.faces.reference
        check_video_output(self.output, [self.source, self.target, reference])
        self.info = probe(self.target)
        tune_for_frames(self.info.width, self.info.height)  # before any frame: big ones go back to the system
        self.registered = session.register_source(read_image(self.source).pixels, str(self.source))
        inputs = [self.target, self.source] + ([Path(reference)] if reference else [])
        shaping = output_shaping(session.settings, self.options.crf, self.options.preset, self.options.segment_frames)
        try:
            self.store = SegmentStore(self.output, fingerprint(inputs, shaping))
        except OSError as exc:
            raise SwaplineError(f"{self.output}: cannot write in {self.output.parent} ({exc.strerror or exc})") from exc

    def _write_error(self, exc: OSError) -> SwaplineError:
        """One line for a failed write; what is finished stays for the next run."""
        kept = len(self.store.finished())
        if exc.errno == errno.ENOSPC:
            return SwaplineError(f"disk full while writing {self.output}; {kept} segment(s) kept, run again to resume")
        return SwaplineError(f"{self.output}: cannot write ({exc.strerror or exc}); {kept} segment(s) kept")

    def _compose(self, image: np.ndarray, faces: list) -> tuple[av.VideoFrame, int, float, float]:
        """On a compose thread: the frame composed and turned into the encoder's picture (the BGR
        frame is not kept waiting for its turn). Returns the picture, faces swapped, and the ms
        of compose and of the conversion (counted as encoding)."""
        start = time.perf_counter()
        swapped = self.session.compose(image, faces, self.registered)
        composed = time.perf_counter()
        picture = encoder_picture(image)
        return picture, swapped, (composed - start) * 1000.0, (time.perf_counter() - composed) * 1000.0

    def run(self, on_progress: ProgressCallback | None = None) -> VideoReport:
        """Process and join; the work folder's lock is held until this returns."""
        try:
            return self._run(on_progress)
        except OSError as exc:
            raise self._write_error(exc) from exc
        finally:
            self.store.close()

    def _run(self, on_progress: ProgressCallback | None) -> VideoReport:
        info, options, store = self.info, self.options, self.store
        total = info.frames or int(round(info.duration_s * info.fps)) or None
        frames = decode_hand_off(info)
        stop = threading.Event()
        errors: list[BaseException] = []
        reader = threading.Thread(
            target=feed, args=(decode_frames(info), frames, stop, errors), name="decode", daemon=True
        )
        encoder = _SegmentEncoder(store, info, options)
        stream = self.session.stream()
        ms = {"track": 0.0, "compose": 0.0}
        count = {"frames": 0, "with_faces": 0, "swapped": 0, "processed": 0}
        resumed = len(store.finished())
        pending: deque[tuple[int, int, Future]] = deque()
        backlog = compose_backlog(info, options.workers)
        if options.processes:
            # a frame for every worker at least, whatever the size: the byte bound (one frame at 4K)
            # would keep all but one idle; each frame in flight is a slot of shared memory
            backlog = max(options.processes, compose_backlog(info, options.processes))
            # a slot per frame in flight: up to backlog pending, and the one submitted before the drain
            composer = ComposeProcesses(
                self.session, self.registered, options.processes, slots=backlog + 1, video=str(self.target)
            )
            submit, close = composer.submit, composer.shutdown
        else:
            # no more threads than the backlog: at 4K (backlog 1) a second thread would compose only
            # while the frame before is still composing, and would keep a second set of crop buffers
            pool = ThreadPoolExecutor(max_workers=min(max(1, options.workers), backlog), thread_name_prefix="compose")
            submit, close = partial(pool.submit, self._compose), partial(pool.shutdown, wait=True, cancel_futures=True)
        started = time.monotonic()

        def drain(limit: int) -> None:
            while len(pending) > limit:
                segment, pts, future = pending.popleft()
                picture, swapped, compose_ms, convert_ms = future.result()
                ms["compose"] += compose_ms
                encoder.ms += convert_ms
                count["swapped"] += swapped
                encoder.write(segment, picture, pts)
                if on_progress is not None:
                    on_progress(count["frames"] - len(pending), total)

        try:
            reader.start()
            current = -1
            while (item := frames.get(stop)) is not None:
                count["frames"] += 1
                segment = item.index // options.segment_frames
                if store.done(segment):
                    if on_progress is not None:
                        on_progress(count["frames"] - len(pending), total)
                    continue
                if segment != current:
                    current = segment
                    stream.reset()
                start = time.perf_counter()
                faces = stream.update(item.image, item.time_s)
                ms["track"] += (time.perf_counter() - start) * 1000.0
                count["processed"] += 1
                count["with_faces"] += bool(faces)
                pending.append((segment, item.pts, submit(item.image, faces)))
                item = None  # the compose thread's now: its BGR pixels go once they are converted
                drain(limit=backlog)
            if errors:
                raise errors[0]
            drain(limit=0)
            encoder.finish()
        except KeyboardInterrupt:
            raise Interrupted(
                f"{self.output}: interrupted with {len(store.finished())} segment(s) finished; "
                "run the same command to resume"
            ) from None
        except BrokenProcessPool:  # a compose process was killed (out of memory?): the input is fine
            raise SwaplineError(
                f"{self.output}: a compose process ended unexpectedly (out of memory?); "
                f"{len(store.finished())} segment(s) kept, run the same command to resume"
            ) from None
        except SwaplineError:
            store.remove()  # a broken input: there is nothing worth resuming
            raise
        finally:
            stop.set()
            reader.join(timeout=5.0)  # it sees `stop` within one poll
            close()
            encoder.abandon()

        segments = store.finished()
        expected = (count["frames"] + options.segment_frames - 1) // options.segment_frames
        if segments != list(range(expected)):
            raise SwaplineError(f"{self.output}: segments missing from the work folder; delete {store.path}")
        record = self.session.provenance(input=self.target.name, frames=count["frames"])
        with atomic_output(self.output) as tmp:
            join_segments([store.segment_path(k) for k in segments], info, self.output, tmp, provenance=record)
        self.session.sign(self.output, [self.source, self.target])
        store.remove()
        elapsed = time.monotonic() - started
        processed = max(1, count["processed"])
        return VideoReport(
            input=str(self.target),
            output=str(self.output),
            frames=count["frames"],
            segments=len(segments),
            resumed_segments=resumed,
            frames_with_faces=count["with_faces"],
            faces_swapped_per_frame=round(count["swapped"] / processed, 3),
            dropped=0,
            fps=round(count["frames"] / elapsed, 2),
            elapsed_s=round(elapsed, 2),
            stages_ms={
                "track": round(ms["track"] / processed, 3),
                "compose": round(ms["compose"] / processed, 3),
                "encode": round(encoder.ms / processed, 3),
            },
        )
