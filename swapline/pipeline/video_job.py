"""`swapline swap` on a video: decode, track, swap, encode in segments, then join with the audio.

- Decoding runs in its own thread, compositing (swap + label) on a pool of worker threads,
  tracking and encoding on the calling thread (x264 has threads of its own): all overlap, and
  frames are written in order.
- Work is cut into segments of `segment_frames` frames, each encoded to its own file in a work
  folder beside the output, recorded in a manifest when complete. Run the same command again
  after a crash or Ctrl-C and finished segments are kept: only the rest is processed. Tracking
  restarts at every segment boundary, so a resumed run makes the same segments as an
  uninterrupted one.
- The result is assembled under a temporary name (video packets from the segments, every audio
  stream copied packet for packet from the input) and renamed at the end. The input is only read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from swapline import __version__
from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, DetectorSettings, FaceMeshLandmarker, FaceTracker, TrackerSettings
from swapline.faces.face import Face
from swapline.faces.smoothing import OneEuroFilter, OneEuroSettings
from swapline.io import read_image
from swapline.io.atomic import atomic_output
from swapline.io.video import OUTPUT_FORMATS, SegmentWriter, VideoInfo, decode_frames, join_segments, probe
from swapline.pipeline.components import ModelChoices, build_identity_encoder, build_swapper, make_store
from swapline.pipeline.realtime import register_source_face
from swapline.runtime import RuntimeSettings, shared_sessions
from swapline.swap import MeshSwapSettings
from swapline.trust import LabelSettings, LabelStamp

FACE_MODES = ("all", "largest", "reference")
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


@dataclass(frozen=True)
class VideoSettings:
    crf: int = 20
    preset: str = "veryfast"
    segment_frames: int = 300
    faces: str = "all"  # all | largest | reference
    max_faces: int = 4
    detector: DetectorSettings = field(default_factory=lambda: DetectorSettings(range="full"))  # BlazeFace
    swapper: MeshSwapSettings = field(default_factory=MeshSwapSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    smoothing: OneEuroSettings = field(default_factory=OneEuroSettings)
    workers: int = 2  # compositing threads
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    models: ModelChoices = field(default_factory=ModelChoices)


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


class ReferenceMatcher:
    """Decides once per track whether that face is the reference person."""

    def __init__(self, encoder, descriptor: np.ndarray, threshold: float):
        self.encoder = encoder
        self.descriptor = descriptor
        self.threshold = threshold
        self.decisions: dict[int, bool] = {}
        self.encodings = 0

    @classmethod
    def from_image(cls, image: np.ndarray, name: str, encoder, threshold: float, sessions) -> ReferenceMatcher:
        from swapline.faces import AnalyserSettings, FaceAnalyser

        faces = FaceAnalyser(AnalyserSettings(), sessions).faces(image)
        if not faces:
            raise SwaplineError(f"{name}: no face found in the reference")
        return cls(encoder, encoder.encode(image, faces[0]), threshold)

    def is_reference(self, image: np.ndarray, face: Face) -> bool:
        decision = self.decisions.get(face.track_id)
        if decision is None:
            self.encodings += 1
            distance = float(np.linalg.norm(self.encoder.encode(image, face) - self.descriptor))
            decision = self.decisions[face.track_id] = distance < self.threshold
        return decision

    def reset(self) -> None:
        self.decisions.clear()


def _fingerprint(info: VideoInfo, source: Path, reference: str, settings: VideoSettings) -> str:
    digest = hashlib.sha256()
    stat = info.path.stat()
    digest.update(f"{__version__}|{stat.st_size}|{stat.st_mtime_ns}|{settings!r}|{reference}".encode())
    with open(info.path, "rb") as handle:
        digest.update(handle.read(1 << 20))
    digest.update(Path(source).read_bytes())
    return digest.hexdigest()


class WorkFolder:
    """Finished segments and their manifest, beside the output, for resuming."""

    def __init__(self, output: Path, key: str):
        self.path = output.parent / f".{output.name}.swapline-parts"
        self.manifest_path = self.path / "manifest.json"
        manifest = {}
        if self.manifest_path.exists():
            with contextlib.suppress(ValueError, OSError):
                manifest = json.loads(self.manifest_path.read_text())
        if manifest.get("key") != key:
            shutil.rmtree(self.path, ignore_errors=True)
            manifest = {"key": key, "segments": {}}
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest

    def segment_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}.mp4"

    def done(self, index: int) -> bool:
        return str(index) in self.manifest["segments"] and self.segment_path(index).exists()

    def finish(self, index: int, frames: int) -> None:
        self.manifest["segments"][str(index)] = {"frames": frames}
        with atomic_output(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(self.manifest))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def check_video_output(output: Path, inputs: list[Path]) -> Path:
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise SwaplineError(f"{output}: unsupported output format {output.suffix!r} (use .mp4, .mov or .mkv)")
    for item in inputs:
        if item is not None and output.resolve() == Path(item).resolve():
            raise SwaplineError(f"{output}: output would overwrite an input; choose another name")
    if not output.parent.resolve().is_dir():
        raise SwaplineError(f"{output}: folder {output.parent} does not exist")
    return output


class VideoSwapJob:
    def __init__(
        self,
        source: Path,
        target: Path,
        output: Path,
        settings: VideoSettings | None = None,
        reference: Path | None = None,
    ):
        self.settings = settings or VideoSettings()
        if self.settings.segment_frames < 1:
            raise SwaplineError(f"--segment-frames must be at least 1, not {self.settings.segment_frames}")
        if self.settings.preset not in X264_PRESETS:
            raise SwaplineError(f"--preset must be one of {', '.join(X264_PRESETS)}, not {self.settings.preset!r}")
        if not 0 <= self.settings.crf <= 51:
            raise SwaplineError(f"--crf must be between 0 and 51, not {self.settings.crf}")
        if self.settings.faces not in FACE_MODES:
            raise SwaplineError(f"--faces must be one of {', '.join(FACE_MODES)}")
        if self.settings.faces == "reference" and reference is None:
            raise SwaplineError("--faces reference needs --reference IMAGE")
        self.source, self.target, self.output = Path(source), Path(target), Path(output)
        self.reference = Path(reference) if reference is not None else None
        check_video_output(self.output, [self.source, self.target, self.reference])
        self.info = probe(self.target)
        self.sessions = shared_sessions(self.settings.runtime)
        store = make_store(self.settings.models)
        self.swapper = build_swapper(self.settings.models, self.settings.swapper, store, self.sessions)
        self.registered = register_source_face(
            read_image(self.source).pixels, str(self.source), self.swapper, self.sessions
        )
        self.label = LabelStamp(self.settings.label, (self.info.width, self.info.height))
        self.matcher = None
        if self.settings.faces == "reference":
            encoder, threshold = build_identity_encoder(self.settings.models, store, self.sessions)
            self.matcher = ReferenceMatcher.from_image(
                read_image(self.reference).pixels, str(self.reference), encoder, threshold, self.sessions
            )
        tracker_settings = TrackerSettings(max_faces=1 if self.settings.faces == "largest" else self.settings.max_faces)
        self.tracker = FaceTracker(
            BlazeFaceDetector(self.settings.detector, self.sessions),
            FaceMeshLandmarker(self.sessions),
            tracker_settings,
        )
        reference_key = hashlib.sha256(self.reference.read_bytes()).hexdigest() if self.reference else ""
        self.work = WorkFolder(self.output, _fingerprint(self.info, self.source, reference_key, self.settings))
        self._filters: dict[int, OneEuroFilter] = {}

    # -- per frame ---------------------------------------------------------------------------

    def _select(self, image: np.ndarray, faces: list[Face], time_s: float) -> list[Face]:
        if self.settings.faces == "largest":
            faces = sorted(faces, key=lambda f: f.area, reverse=True)[:1]
        elif self.matcher is not None:
            faces = [f for f in faces if self.matcher.is_reference(image, f)]
        smoothed = []
        for face in faces:
            smoother = self._filters.setdefault(face.track_id, OneEuroFilter(self.settings.smoothing))
            smoothed.append(face.replace(landmarks=smoother(face.landmarks, time_s)))
        return smoothed

    def _compose(self, image: np.ndarray, faces: list[Face]) -> tuple[np.ndarray, int, float]:
        start = time.perf_counter()
        swapped = sum(self.swapper.swap(image, face, self.registered) for face in faces)
        self.label.apply(image)
        return image, swapped, (time.perf_counter() - start) * 1000.0

    def _start_segment(self) -> None:
        self.tracker.reset()
        self._filters.clear()
        if self.matcher is not None:
            self.matcher.reset()

    # -- the run -----------------------------------------------------------------------------

    def run(self, progress: bool = True) -> VideoReport:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        info, s = self.info, self.settings
        total = info.frames or int(round(info.duration_s * info.fps)) or None
        frames_q: queue.Queue = queue.Queue(maxsize=8)
        stop = threading.Event()
        errors: list[BaseException] = []

        def decode() -> None:
            try:
                for item in decode_frames(info):
                    while not stop.is_set():
                        try:
                            frames_q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as exc:  # handed to the main thread
                errors.append(exc)
            finally:
                while not stop.is_set():  # the end marker, unless the run already gave up
                    try:
                        frames_q.put(None, timeout=0.1)
                        break
                    except queue.Full:
                        continue

        totals = {"track": 0.0, "compose": 0.0, "encode": 0.0}
        counted = {"frames": 0, "with_faces": 0, "swapped": 0, "processed": 0}
        resumed = sum(1 for k in range(0, (total or 0) // s.segment_frames + 2) if self.work.done(k))
        pending: deque = deque()
        writer: SegmentWriter | None = None
        writer_segment = -1
        started = time.monotonic()
        reader = threading.Thread(target=decode, name="decode", daemon=True)
        pool = ThreadPoolExecutor(max_workers=max(1, s.workers), thread_name_prefix="compose")
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:5.1f} fps"),
            TimeRemainingColumn(),
        ]
        bar = Progress(*columns, disable=not progress, transient=True)

        def finish_writer() -> None:
            nonlocal writer
            if writer is not None:
                start = time.perf_counter()
                writer.close()
                totals["encode"] += (time.perf_counter() - start) * 1000.0
                final = self.work.segment_path(writer_segment)
                os.replace(writer.path, final)
                self.work.finish(writer_segment, writer.frames)
                writer = None

        def drain(limit: int) -> None:
            nonlocal writer, writer_segment
            while len(pending) > limit:
                segment, pts, future = pending.popleft()
                image, swapped, compose_ms = future.result()
                totals["compose"] += compose_ms
                counted["swapped"] += swapped
                if segment != writer_segment:
                    finish_writer()
                    partial = self.work.path / f"segment_{segment:05d}.partial.mp4"
                    writer = SegmentWriter(partial, info, s.crf, s.preset)
                    writer_segment = segment
                start = time.perf_counter()
                writer.write(image, pts)
                totals["encode"] += (time.perf_counter() - start) * 1000.0
                bar.update(task, advance=1, fps=counted["frames"] / max(1e-6, time.monotonic() - started))

        interrupted = False
        try:
            with bar:
                task = bar.add_task("swapping", total=total, fps=0.0)
                reader.start()
                current = -1
                while True:
                    item = frames_q.get()
                    if item is None:
                        break
                    counted["frames"] += 1
                    segment = item.index // s.segment_frames
                    if self.work.done(segment):
                        bar.update(task, advance=1)
                        continue
                    if segment != current:
                        current = segment
                        self._start_segment()
                    start = time.perf_counter()
                    faces = self.tracker.update(item.image)
                    chosen = self._select(item.image, faces, item.time_s)
                    totals["track"] += (time.perf_counter() - start) * 1000.0
                    counted["processed"] += 1
                    counted["with_faces"] += bool(chosen)
                    pending.append((segment, item.pts, pool.submit(self._compose, item.image, chosen)))
                    drain(limit=2 * max(1, s.workers))
                if errors:
                    raise errors[0]
                drain(limit=0)
                finish_writer()
        except KeyboardInterrupt:
            interrupted = True
        except SwaplineError:
            self.work.remove()  # a broken input: there is nothing worth resuming
            raise
        finally:
            stop.set()
            reader.join(timeout=5.0)  # it sees `stop` within 0.1 s
            pool.shutdown(wait=True, cancel_futures=True)
            if writer is not None:  # an unfinished segment is never kept
                with contextlib.suppress(Exception):
                    writer.close()
                Path(writer.path).unlink(missing_ok=True)
        if interrupted:
            done = len(self.work.manifest["segments"])
            raise SwaplineError(
                f"{self.output}: interrupted with {done} segment(s) finished; run the same command to resume"
            )

        segments = sorted(int(k) for k in self.work.manifest["segments"])
        expected = (counted["frames"] + s.segment_frames - 1) // s.segment_frames
        if segments != list(range(expected)):
            raise SwaplineError(f"{self.output}: segments missing from the work folder; delete {self.work.path}")
        with atomic_output(self.output) as tmp:
            join_segments([self.work.segment_path(k) for k in segments], info, self.output, tmp)
        self.work.remove()
        elapsed = time.monotonic() - started
        processed = max(1, counted["processed"])
        return VideoReport(
            input=str(self.target),
            output=str(self.output),
            frames=counted["frames"],
            segments=len(segments),
            resumed_segments=resumed,
            frames_with_faces=counted["with_faces"],
            faces_swapped_per_frame=round(counted["swapped"] / processed, 3),
            dropped=0,
            fps=round(counted["frames"] / elapsed, 2),
            elapsed_s=round(elapsed, 2),
            stages_ms={k: round(v / processed, 3) for k, v in totals.items()},
        )
