"""One function per command: build settings from the arguments, call the API, print the result."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from swapline.cli.output import DownloadBars, error, progress, show, show_json, stderr
from swapline.errors import SwaplineError


def _unit(flag: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise SwaplineError(f"{flag} {value:g}: must be between 0 and 1")
    return value


def _settings(args: argparse.Namespace):
    from swapline.runtime import RuntimeSettings
    from swapline.settings import FaceSelection, ModelChoices, SwapSettings, providers_for
    from swapline.swap import MeshSwapSettings
    from swapline.trust import LabelSettings
    from swapline.trust.credentials import CredentialSettings
    from swapline.trust.watermark import WatermarkSettings

    if args.label_text is not None:
        raise SwaplineError("the label text cannot be changed; --label-language adds a translated line")
    chosen = providers_for(getattr(args, "device", None), getattr(args, "providers", None))
    credentials = None
    if not getattr(args, "no_c2pa", False):
        cert = args.c2pa_cert or os.environ.get("SWAPLINE_C2PA_CERT")
        key = args.c2pa_key or os.environ.get("SWAPLINE_C2PA_KEY")
        credentials = CredentialSettings(
            cert_chain=Path(cert) if cert else None, private_key=Path(key) if key else None, tsa_url=args.c2pa_tsa
        )
    runtime = RuntimeSettings(
        cudnn_conv_algo_search=args.cudnn_search, prefer_fp16=not args.no_fp16, cuda_nhwc=not args.cuda_nchw
    )
    if chosen is not None:
        runtime = replace(runtime, providers=chosen)
    faces = FaceSelection()
    if hasattr(args, "faces") and isinstance(args.faces, str):
        faces = FaceSelection(mode=args.faces, reference=args.reference, max_faces=args.max_faces)
    return SwapSettings(
        models=ModelChoices(
            detector=args.detector,
            swapper=args.swapper,
            encoder=args.encoder,
            enhancer=args.enhancer,
            identity=args.identity,
            occluder=args.occluder,
            parser=args.face_parser,
            offline=args.offline,
        ),
        runtime=runtime,
        label=LabelSettings(
            language=args.label_language, corner=args.label_corner, size=args.label_size, font=args.label_font
        ),
        faces=faces,
        credentials=credentials,
        mark=WatermarkSettings(key=args.mark_key),
        face_workers=args.face_workers,
        swapper=MeshSwapSettings(
            shape_strength=_unit("--shape-strength", args.shape_strength),
            keep_target_beard=args.keep_beard,
            target_occluders=not args.no_occluders,
            keep_target_hair=not args.no_occluders,
            hands=not (args.no_occluders or args.no_hands),
        ),
    )


def _store(offline: bool, bars: DownloadBars):
    from swapline.models.store import ModelStore

    return ModelStore(offline=offline, on_notice=lambda text: stderr.print(text), on_progress=bars)


def _session(args: argparse.Namespace, settings=None):
    """The session for this command; downloads (if any) show a bar and the licence on stderr."""
    from swapline.session import SwapSession

    settings = settings or _settings(args)
    bars = DownloadBars()
    try:
        return SwapSession(settings, store=_store(settings.models.offline, bars))
    finally:
        bars.close()


def swap(args: argparse.Namespace) -> int:
    from swapline.io.video import is_video_path

    if is_video_path(args.target):
        return swap_video(args)
    from swapline.pipeline.image_job import swap_image_file

    report = swap_image_file(args.source, args.target, args.output, session=_session(args))
    if args.json:
        show_json(report.to_dict())
    else:
        show(f"swapped {report.faces_swapped} of {report.faces_found} face(s) -> {report.output}")
    return 0


def swap_video(args: argparse.Namespace) -> int:
    from swapline.pipeline.video_job import VideoSwapJob
    from swapline.settings import VideoOptions

    options = VideoOptions(
        crf=args.crf, preset=args.preset, segment_frames=args.segment_frames, processes=args.processes
    )
    job = VideoSwapJob(_session(args), args.source, args.target, args.output, options)
    with progress("swapping", enabled=not args.json) as on_progress:
        report = job.run(on_progress)
    if args.json:
        show_json(report.to_dict())
    else:
        resumed = f", {report.resumed_segments} segment(s) resumed" if report.resumed_segments else ""
        show(f"{report.frames} frames at {report.fps:g} fps{resumed} -> {report.output}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from swapline.demo import run_demo

    with progress("swapping sample faces", enabled=not args.quiet) as on_progress:
        reports = run_demo(args.out, on_progress)
    for report in reports:
        show(f"{Path(report.source).name} -> {Path(report.target).name}: {report.output}")
    show(f"results written to {args.out.resolve()}")
    return 0


def _live_summary_table(summary: dict):
    from swapline.bench.report import make_table

    latency = summary["latency_ms"]
    rows = [
        ["frames in / out / dropped", f"{summary['frames_in']} / {summary['frames_out']} / {summary['dropped']}"],
        ["output fps", summary["output_fps"]],
        [
            "latency p50 / p95 / p99 / max ms",
            f"{latency['p50_ms']:.1f} / {latency['p95_ms']:.1f} / {latency['p99_ms']:.1f} / {latency['max_ms']:.1f}",
        ],
    ]
    rows += [
        [f"  {stage} p50 / p95 ms", f"{h['p50_ms']:.2f} / {h['p95_ms']:.2f}"]
        for stage, h in summary["stages_ms"].items()
    ]
    rows.append(["stopped", summary["stop_reason"]])
    return make_table("live run", ["", "value"], rows)


def _live_frames(args: argparse.Namespace):
    from swapline.io import read_image
    from swapline.io.sources import CameraSource, ImageSource, VideoFileSource

    if args.input is not None:
        frames = VideoFileSource(args.input, fps=args.fps, loop=args.loop)
        return frames, (frames.width, frames.height)
    if args.image is not None:
        still = read_image(args.image).pixels
        return ImageSource(still, fps=args.fps or 30.0), (still.shape[1], still.shape[0])
    return CameraSource(args.camera, args.width, args.height, args.fps or 30.0), (args.width, args.height)


def _live_sink(args: argparse.Namespace, size: tuple[int, int], fps: float, session):
    from swapline.io.sinks import NullSink, VideoFileSink, VirtualCameraSink, WindowSink

    if args.sink == "null":
        return NullSink()
    if args.sink == "window":
        return WindowSink(overlay=not args.no_overlay)
    if args.sink == "vcam":
        return VirtualCameraSink(size[0], size[1], fps)
    return VideoFileSink(Path(args.sink), fps=fps, provenance=session.provenance(mode="live"))


@contextlib.contextmanager
def _finish_on_signals(pipeline) -> Iterator[None]:
    """Ctrl-C or SIGTERM end a live run cleanly (recording closed, summary printed); a third aborts."""
    received = 0

    def handler(signum, frame) -> None:
        nonlocal received
        received += 1
        if received >= 3:
            raise KeyboardInterrupt
        pipeline.stop("interrupted")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def live(args: argparse.Namespace) -> int:
    from swapline.io import read_image
    from swapline.pipeline.rate import AdaptiveRateSettings
    from swapline.pipeline.realtime import build_live_pipeline
    from swapline.settings import LiveOptions

    source_image = read_image(args.source).pixels
    session = _session(args)
    frames, size = _live_frames(args)
    fps = args.fps or getattr(frames, "fps", 30.0)
    registered = session.register_source(source_image, str(args.source))
    sink = _live_sink(args, size, fps, session)
    from swapline.trust.liveness import LivenessSettings

    timeout = args.liveness_timeout
    liveness = LivenessSettings(blink_timeout_s=timeout, nod_timeout_s=timeout) if args.liveness else None
    options = LiveOptions(
        max_latency_ms=args.max_latency_ms, rate=AdaptiveRateSettings(enabled=not args.no_adaptive), liveness=liveness
    )
    pipeline = build_live_pipeline(session, registered, frames, sink, options, size=size)
    with _finish_on_signals(pipeline):
        stats = pipeline.run(duration_s=args.seconds)
    if getattr(sink, "frames", 0) and sink.path.exists():  # a finished recording gets its credentials
        session.sign(sink.path, [args.source])
    summary = stats.summary()
    if args.json:
        show_json(summary)
    else:
        show(_live_summary_table(summary))
    if stats.error:
        raise SwaplineError(stats.error)
    return 0


def _write_json(path: Path | None, payload: dict) -> None:
    from swapline.bench.report import machine_info, write_json

    write_json(path, {"machine": machine_info(), **payload})


def bench_quality(args: argparse.Namespace) -> int:
    from swapline.bench.quality import quality_payload, quality_tables, run_quality
    from swapline.bench.report import write_json

    with progress("swapping photo pairs") as on_progress:
        reports = run_quality(args.faces, _settings(args), ablation=args.ablation, on_progress=on_progress)
    show(*quality_tables(reports))
    write_json(args.json, quality_payload(reports))
    return 0


def bench_speed(args: argparse.Namespace) -> int:
    from swapline.bench.speed import run_speed, speed_tables

    with progress("timing stages") as on_progress:
        result = run_speed(
            args.source, args.target, repeats=args.repeats, face_px=args.face_px, on_progress=on_progress
        )
    show(*speed_tables(result))
    _write_json(args.json, result)
    return 0


def bench_scale(args: argparse.Namespace) -> int:
    from swapline.bench.scale import run_scale_bench, scale_tables

    with progress("scale benchmark") as on_progress:
        result = run_scale_bench(
            args.source, args.target, repeats=args.repeats, on_progress=on_progress, processes=args.processes
        )
    show(*scale_tables(result))
    _write_json(args.json, result)
    return 0


def bench_liveness(args: argparse.Namespace) -> int:
    from swapline.bench.liveness import liveness_tables, run_liveness_bench

    motions = tuple(args.motions.split(","))
    with progress("liveness cases") as on_progress:
        result = run_liveness_bench(args.faces, fps=args.fps, motions=motions, on_progress=on_progress)
    show(*liveness_tables(result))
    _write_json(args.json, result)
    return 0


def verify(args: argparse.Namespace) -> int:
    """Exit 0 when every file proves AI generation, 2 when one shows none of the three, 1 on errors."""
    from swapline.bench.report import make_table
    from swapline.trust.verify import verify_file

    reports, failed = [], 0
    for path in args.files:
        try:
            reports.append(verify_file(path, args.mark_key))
        except SwaplineError as exc:
            failed += 1
            error(str(exc))
    if args.json:
        show_json({"files": [r.to_dict() for r in reports]})
    else:
        rows = []
        for r in reports:
            label = f"found ({r.label.score:.2f}, {r.label.corner})" if r.label.found else "not found"
            mark = "not found"
            if r.mark is not None:
                payload = r.mark["payload"]
                read = f"job {payload['job_id']}, v{payload['version']}" if payload else "unreadable payload"
                mark = f"{read}, {r.mark['bits_corrected']} bits corrected, z {r.mark['confidence']:.1f}"
            cred = r.credentials
            c2pa = cred["state"] + (f" ({cred.get('signer')})" if cred.get("signer") else "")
            rows.append([Path(r.path).name, label, mark, c2pa, "yes" if r.ai_generated else "no"])
        show(make_table("AI-generation proofs", ["file", "label", "invisible mark", "C2PA", "AI-generated"], rows))
    if failed:
        return 1
    return 0 if all(r.ai_generated for r in reports) else 2


def bench_watermark(args: argparse.Namespace) -> int:
    from swapline.bench.watermark import run_watermark_bench, watermark_tables

    with progress("watermark benchmark") as on_progress:
        result = run_watermark_bench(
            args.photos,
            clip_photo=args.clip_photo,
            null_keys=args.keys,
            libraries=args.libraries,
            codes=args.codes,
            on_progress=on_progress,
        )
    show(*watermark_tables(result))
    _write_json(args.json, result)
    return 0


def bench_latency(args: argparse.Namespace) -> int:
    from swapline.bench.latency import latency_tables, run_latency

    layouts = tuple(args.layouts.split(","))
    with progress(f"layouts, {args.seconds:g} s each") as on_progress:
        report = run_latency(
            args.source,
            args.input,
            args.fps,
            args.seconds,
            args.stall_ms,
            args.stall_every,
            layouts,
            args.window_s,
            _settings(args),
            on_progress=on_progress,
            gap_rounds=args.gap_rounds,
        )
    show(*latency_tables(report))
    _write_json(args.json, report)
    return 0


def bench_video(args: argparse.Namespace) -> int:
    from swapline.bench.video import run_video_bench, video_tables
    from swapline.settings import VideoOptions

    options = VideoOptions(preset=args.preset, crf=args.crf)
    with stderr.status("measuring: decode+encode floor, swap job, still-head jitter"):
        result = run_video_bench(args.source, args.input, _settings(args), options, args.still)
    show(*video_tables(result))
    _write_json(args.json, result)
    return 0


def bench_neural(args: argparse.Namespace) -> int:
    from swapline.bench.neural import neural_tables, run_neural_bench
    from swapline.settings import providers_for

    with stderr.status(f"running {args.frames} frames through the stand-in generator"):
        result = run_neural_bench(
            args.source, args.target, args.frames, providers_for(providers=args.providers), cuda_nhwc=not args.cuda_nchw
        )
    show(*neural_tables(result))
    _write_json(args.json, result)
    return 0


def bench_sheet(args: argparse.Namespace) -> int:
    from swapline.bench.quality import photo_paths
    from swapline.bench.sheet import DOCS_ROWS, every_photo_rows, make_sheet

    rows = every_photo_rows(photo_paths(args.faces)) if args.every_photo else DOCS_ROWS
    with progress("swapping the sheet's pairs") as on_progress:
        path = make_sheet(args.faces, args.out, rows, on_progress=on_progress)
    show(f"wrote {path}")
    return 0


def bench_clip(args: argparse.Namespace) -> int:
    from swapline.bench.clips import make_clip

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SwaplineError(f"--size must look like 640x480, not {args.size!r}") from None
    path = make_clip(
        args.photo, args.out, (width, height), args.fps, args.seconds, args.face_px, args.motion, args.audio_hz
    )
    show(f"wrote {path}")
    return 0


def models_list(args: argparse.Namespace) -> int:
    from swapline.bench.report import make_table
    from swapline.models import BUILTIN_MODELS, builtin_model_path
    from swapline.models.registry import registry
    from swapline.models.store import ModelStore

    rows = [
        [
            name,
            "built in",
            about,
            f"{builtin_model_path(name).stat().st_size / 1e6:.1f} MB",
            "shipped in the package",
            "Apache-2.0 (MediaPipe)",
        ]
        for name, about in BUILTIN_MODELS.items()
    ]
    store = ModelStore(offline=True)
    for name, spec in registry().items():
        where = "downloaded" if store.path(name).exists() else "not downloaded"
        checked = spec.trust()
        recorded = None if spec.fully_pinned else store.recorded_hash(name)
        if recorded:
            checked += f"; recorded {recorded[:8]}…"
        rows.append([name, f"{spec.kind}, {where}", spec.description, "", checked, spec.licence])
    columns = ["name", "status", "what", "size", "checked against", "licence"]
    show(make_table("models", columns, rows), f"cache: {store.folder}")
    return 0


def models_fetch(args: argparse.Namespace) -> int:
    from swapline.models.registry import spec

    bars = DownloadBars()
    store = _store(args.offline, bars)
    names = list(args.names)
    for name in list(names):
        names.extend(n for n in spec(name).needs if n not in names)
    try:
        for name in names:
            show(f"{name}: {store.fetch(name)}")
    finally:
        bars.close()
    return 0


def models_verify(args: argparse.Namespace) -> int:
    from swapline.models.registry import registry
    from swapline.models.store import ModelStore

    store = ModelStore(offline=True)
    names = args.names or [n for n in registry() if store.path(n).exists()]
    failed = 0
    for name in names:
        result = store.verify(name)
        failed += result != "ok"
        show(f"{name}: {result}")
    return 1 if failed else 0


def models_path(args: argparse.Namespace) -> int:
    from swapline.models.store import ModelStore

    show(str(ModelStore(offline=True).path(args.name)))
    return 0
