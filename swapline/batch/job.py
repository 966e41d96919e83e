"""`swapline batch`: many inputs, cut into tasks, run on Ray (or a local pool), joined here.

The driver (this process) registers the source face once and ships it to the workers as data;
each video keeps the SegmentStore work folder that `swapline swap` would use for the same
output, with the same fingerprint, so finished chunks survive a crash of the driver and a rerun
of the same command (or a plain `swapline swap`) picks them up. A video's output is joined, with
its audio and provenance, under a temporary name and renamed only when every chunk is in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from swapline.batch.options import BatchOptions
from swapline.batch.plan import BatchPlan, ImageGroup, VideoChunk, VideoPlan, plan_batch
from swapline.batch.runners import WorkerLost, local_cores, open_runner
from swapline.batch.tasks import ChunkResult, ImageGroupResult, JobContext
from swapline.errors import Interrupted, SwaplineError
from swapline.io import check_output_path, read_image
from swapline.io.atomic import atomic_output
from swapline.io.video import cpu_cores, join_segments
from swapline.pipeline.segments import SegmentStore, fingerprint
from swapline.pipeline.video_job import check_video_output, output_shaping
from swapline.session import SwapSession
from swapline.settings import VideoOptions
from swapline.trust.watermark import Payload

log = logging.getLogger("swapline.batch")


@dataclass(frozen=True)
class BatchProgress:
    chunks_done: int  # video chunks and groups of stills, resumed ones included
    chunks_total: int
    frames_done: int  # video frames and stills swapped by this run
    elapsed_s: float

    @property
    def fps(self) -> float:
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressCallback = Callable[[BatchProgress], None]


@dataclass
class InputReport:
    input: str
    output: str
    kind: str  # video | image
    frames: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    frames_with_faces: int = 0  # videos: among the frames made by this run
    faces_swapped: int = 0  # stills
    error: str | None = None


@dataclass
class BatchReport:
    runner: str
    workers: int
    inputs: list[InputReport] = field(default_factory=list)
    chunks: int = 0
    resumed_chunks: int = 0
    frames: int = 0  # swapped by this run (video frames and stills)
    elapsed_s: float = 0.0
    fps: float = 0.0
    retries: int = 0  # tasks run again after their worker died (the pool counts; Ray does not say)
    rescanned_chunks: int = 0  # chunks whose frames a seek did not find exactly: decoded from frame 0
    # CPU seconds: this process, and the worker processes (imports and model loading included;
    # Ray's own daemons are not counted)
    driver_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0

    @property
    def failed(self) -> list[InputReport]:
        return [r for r in self.inputs if r.error]

    def to_dict(self) -> dict:
        return {**asdict(self), "failed": len(self.failed)}


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class BatchJob:
    """Every input of one batch; construct (checks and plans), then run()."""

    def __init__(
        self,
        session: SwapSession,
        source: Path | str,
        inputs: list[Path | str],
        output_dir: Path | str,
        options: BatchOptions | None = None,
        on_notice: Callable[[str], None] | None = None,
    ):
        """on_notice: one line for a person (the fallback to a local pool when Ray is absent)."""
        self.session, self.options, self.on_notice = session, options or BatchOptions(), on_notice
        self.source, self.output_dir = Path(source), Path(output_dir)
        if not self.output_dir.is_dir():
            raise SwaplineError(f"{self.output_dir}: output folder does not exist")
        if not inputs:
            raise SwaplineError("no inputs given")
        reference = session.settings.faces.reference
        self.plan: BatchPlan = plan_batch([Path(p) for p in inputs], self.output_dir, self.options, self._workers())
        self._plans = {plan.input: plan for plan in self.plan.videos}
        shared = [self.source] + ([Path(reference)] if reference else [])
        for group in self.plan.images:
            for target, output in group.items:
                check_output_path(output, [target, *shared])
        for video in self.plan.videos:
            check_video_output(video.output, [video.input, *shared])
        self.registered = session.register_source(read_image(self.source).pixels, str(self.source))
        video = self.options.video
        shaping = output_shaping(session.settings, video.crf, video.preset, video.segment_frames)
        self.stores: dict[Path, SegmentStore] = {}
        self.marks: dict[Path, Payload] = {}
        try:
            for plan in self.plan.videos:
                key = fingerprint([plan.input, *shared], shaping)
                self.stores[plan.input] = store = SegmentStore(plan.output, key)
                self.marks[plan.input] = _video_mark(store, session.mark_payload)
        except BaseException:
            self._close()
            raise

    def _workers(self) -> int:
        return self.options.workers or local_cores()

    def _video_options(self) -> VideoOptions:
        """The video options every chunk is encoded with: x264's threads chosen for this machine's
        cores (what a single run here uses), not each worker node's own."""
        video = self.options.video
        return replace(video, encoder_cores=cpu_cores(video.encoder_cores))

    def _close(self) -> None:
        for store in self.stores.values():
            store.close()

    def run(self, on_progress: ProgressCallback | None = None) -> BatchReport:
        """Run every unfinished task, join every video; the work folders' locks are held until this returns."""
        try:
            return self._run(on_progress)
        except OSError as exc:
            raise SwaplineError(
                f"{self.output_dir}: cannot write ({exc.strerror or exc}); "
                "finished chunks are kept, run again to resume"
            ) from exc
        finally:
            self._close()

    def _pending(self, plan: VideoPlan) -> list[VideoChunk]:
        store = self.stores[plan.input]
        return [c for c in plan.chunks if not all(store.done(s) for s in c.segments)]

    def _run(self, on_progress: ProgressCallback | None) -> BatchReport:
        started = time.monotonic()
        reports: dict[Path, InputReport] = {}
        tasks: dict[tuple, VideoChunk | ImageGroup] = {}
        self._left: dict[Path, int] = {}
        self._rescanned = 0
        for plan in self.plan.videos:
            pending = self._pending(plan)
            reports[plan.input] = InputReport(
                str(plan.input),
                str(plan.output),
                "video",
                chunks=len(plan.chunks),
                resumed_chunks=len(plan.chunks) - len(pending),
            )
            self._left[plan.input] = len(pending)
            tasks.update({("video", plan.input, chunk.index): chunk for chunk in pending})
        for group in self.plan.images:
            for target, output in group.items:
                reports[target] = InputReport(str(target), str(output), "image", chunks=1)
            tasks[("images", group.index)] = group
        total = self.plan.tasks
        report = BatchReport(runner="none (all resumed)", workers=0, chunks=total, resumed_chunks=total - len(tasks))
        counts = {"done": report.resumed_chunks, "frames": 0}
        cpu: dict[tuple[str, int], float] = {}
        cpu_start = time.process_time()

        def tell() -> None:
            if on_progress is not None:
                elapsed = time.monotonic() - started
                on_progress(BatchProgress(counts["done"], total, counts["frames"], elapsed))

        tell()
        for plan in self.plan.videos:
            if not self._left[plan.input]:
                self._join(plan, reports[plan.input])
        if tasks:
            runner = open_runner(self.options, self.on_notice)
            report.runner, report.workers = runner.name, runner.workers
            log.info("batch: %d task(s) on %s, %d worker(s)", len(tasks), runner.name, runner.workers)
            try:
                files = runner.ship(self._files())
                context = JobContext(
                    self.session.settings,
                    self._video_options(),
                    self.source,
                    files,
                    self.options.crash_once_marker,
                    self.session.mark_payload,
                    self.marks,
                )
                for key, result in runner.results(tasks, context, runner.share(self.registered)):
                    if not isinstance(result, BaseException):
                        cpu[result.worker] = max(cpu.get(result.worker, 0.0), result.worker_cpu_s)
                    counts["done"] += 1
                    counts["frames"] += self._take(tasks[key], result, reports)
                    tell()
            except KeyboardInterrupt:
                raise Interrupted(
                    f"batch interrupted with {counts['done']} of {total} chunk(s) finished; "
                    "run the same command to resume"
                ) from None
            finally:
                report.retries = runner.retries
                runner.close()
        report.inputs = list(reports.values())
        report.rescanned_chunks = self._rescanned
        report.driver_cpu_s = round(time.process_time() - cpu_start, 2)
        report.worker_cpu_s = round(sum(cpu.values()), 2)
        report.frames = counts["frames"]
        report.elapsed_s = round(time.monotonic() - started, 2)
        report.fps = round(counts["frames"] / max(report.elapsed_s, 1e-6), 2)
        return report

    def _files(self) -> list[Path]:
        """What a worker without this machine's files needs: the photos and every input."""
        reference = self.session.settings.faces.reference
        paths = [self.source] + ([Path(reference)] if reference else [])
        paths += [plan.input for plan in self.plan.videos]
        paths += [target for group in self.plan.images for target, _ in group.items]
        return paths

    def _take(self, task, result, reports: dict[Path, InputReport]) -> int:
        """Record one finished task; returns the frames (or stills) it swapped."""
        if isinstance(task, ImageGroup):
            return self._take_images(task, result, reports)
        plan = self._plans[task.input]
        report = reports[task.input]
        if report.error:
            return 0  # this input already failed
        if isinstance(result, BaseException):
            report.error = _message(result)
            if isinstance(result, SwaplineError) and not isinstance(result, WorkerLost):
                self.stores[task.input].remove()  # a broken input: nothing worth resuming
            return 0
        assert isinstance(result, ChunkResult)
        if not task.last and result.frames != len(task.frame_pts):
            report.error = f"{task.input}: chunk {task.index} made {result.frames} frames, not {len(task.frame_pts)}"
            return 0
        self._rescanned += task.first_frame > 0 and not result.seeked
        store = self.stores[task.input]
        for segment in result.segments:
            partial = store.partial_path(segment.index)
            partial.write_bytes(segment.data)
            store.finish(segment.index, partial, segment.frames)
        report.frames_with_faces += result.frames_with_faces
        self._left[task.input] -= 1
        if not self._left[task.input]:
            self._join(plan, report)
        return result.frames

    def _take_images(self, group: ImageGroup, result, reports: dict[Path, InputReport]) -> int:
        if isinstance(result, BaseException):
            for target, _ in group.items:
                reports[target].error = _message(result)
            return 0
        assert isinstance(result, ImageGroupResult)
        swapped = 0
        for item in result.items:
            report = reports[item.input]
            if item.error is not None:
                report.error = item.error
                continue
            with atomic_output(item.output) as tmp:
                tmp.write_bytes(item.data)
            report.frames, report.faces_swapped = 1, item.faces_swapped
            swapped += 1
        return swapped

    def _join(self, plan: VideoPlan, report: InputReport) -> None:
        """All chunks in: segments joined with the input's audio, provenance in, renamed into place."""
        store = self.stores[plan.input]
        segments = store.finished()
        if not segments or segments != list(range(len(segments))):
            report.error = f"{plan.output}: segments missing from the work folder; delete {store.path}"
            return
        entries = store.manifest["segments"]
        frames = sum(int(entries[str(k)]["frames"]) for k in segments)
        record = self.session.provenance(input=plan.input.name, frames=frames)
        mark = self.marks[plan.input]
        if isinstance(record.get("mark"), dict):  # the job id the frames carry (a resumed run keeps the first's)
            record["mark"] = {**record["mark"], "job_id": mark.job_id, "version": mark.version}
        with atomic_output(plan.output) as tmp:
            join_segments([store.segment_path(k) for k in segments], plan.info, plan.output, tmp, provenance=record)
        self.session.sign(plan.output, [self.source, plan.input])  # as VideoSwapJob
        store.remove()
        report.frames = frames


def _video_mark(store: SegmentStore, current: Payload) -> Payload:
    """The mark payload of this video's job: the one recorded in its work folder, else `current`."""
    path = store.path / "mark.json"
    with contextlib.suppress(OSError, ValueError, TypeError, SwaplineError):
        recorded = json.loads(path.read_text())
        if recorded.get("version") == current.version:
            return Payload(tool=current.tool, version=current.version, job_id=int(recorded["job_id"]))
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"job_id": current.job_id, "version": current.version}))
    return current


def run_batch(
    source: Path | str,
    inputs: list[Path | str],
    output_dir: Path | str,
    settings=None,
    options: BatchOptions | None = None,
    on_progress: ProgressCallback | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> BatchReport:
    """The whole batch in one call, with a session built from `settings`."""
    return BatchJob(SwapSession(settings), source, inputs, output_dir, options, on_notice).run(on_progress)
