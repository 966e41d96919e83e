"""The `swapline` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from swapline import __version__
from swapline.errors import SwaplineError


def _label_settings(args: argparse.Namespace):
    from swapline.trust import LabelSettings

    return LabelSettings(text=args.label_text, corner=args.label_corner, size=args.label_size, font=args.label_font)


def _add_label_options(parser: argparse.ArgumentParser) -> None:
    from swapline.trust.label import CORNERS, LabelSettings

    default = LabelSettings()
    group = parser.add_argument_group("AI-generated label (always drawn)")
    group.add_argument("--label-text", default=default.text, help="label text (default: %(default)s)")
    group.add_argument("--label-corner", default=default.corner, choices=CORNERS)
    group.add_argument("--label-size", type=float, default=default.size, help="text height / shorter image side")
    group.add_argument("--label-font", type=Path, default=None, help="a TrueType font for other scripts")


def _add_model_options(parser: argparse.ArgumentParser, detector: str) -> None:
    group = parser.add_argument_group("models (registry names are downloaded on first use; or give an .onnx path)")
    group.add_argument("--detector", default=detector, help="full, short (built in), scrfd_2.5g, yoloface_8n")
    group.add_argument(
        "--swapper", default="mesh", help="mesh (built in), inswapper_128, inswapper_128_fp16, simswap_256"
    )
    group.add_argument("--encoder", default="w600k_r50", help="ArcFace model for the neural swappers")
    group.add_argument("--enhancer", default=None, help="face enhancer after the swap, e.g. gfpgan_1.4")
    group.add_argument("--identity", default="dlib", help="reference matching: dlib, w600k_r50, w600k_mbf")
    group.add_argument("--offline", action="store_true", help="never download; use only models already here")


def _model_choices(args: argparse.Namespace):
    from swapline.pipeline.components import ModelChoices

    return ModelChoices(
        detector=args.detector,
        swapper=args.swapper,
        encoder=args.encoder,
        enhancer=args.enhancer,
        identity=args.identity,
        offline=args.offline,
    )


def _engine_settings(args: argparse.Namespace):
    from swapline.pipeline import EngineSettings

    return EngineSettings(label=_label_settings(args), faces=args.faces, models=_model_choices(args))


def cmd_swap(args: argparse.Namespace) -> int:
    from swapline.io.video import is_video_path

    if is_video_path(args.target):
        return cmd_swap_video(args)
    if args.faces == "reference":
        raise SwaplineError("--faces reference is for videos; for an image use --faces all or largest")
    from swapline.pipeline import swap_image_file

    report = swap_image_file(args.source, args.target, args.output, _engine_settings(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"swapped {report.faces_swapped} of {report.faces_found} face(s) -> {report.output}")
    return 0


def cmd_swap_video(args: argparse.Namespace) -> int:
    from swapline.pipeline.video_job import VideoSettings, VideoSwapJob

    settings = VideoSettings(
        crf=args.crf,
        preset=args.preset,
        segment_frames=args.segment_frames,
        faces=args.faces,
        label=_label_settings(args),
        models=_model_choices(args),
    )
    report = VideoSwapJob(args.source, args.target, args.output, settings, reference=args.reference).run(
        progress=not args.json and sys.stderr.isatty()
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        resumed = f", {report.resumed_segments} segment(s) resumed" if report.resumed_segments else ""
        print(f"{report.frames} frames at {report.fps:g} fps{resumed} -> {report.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from swapline.demo import run_demo

    reports = run_demo(args.out, show_progress=not args.quiet)
    for report in reports:
        print(f"{Path(report.source).name} -> {Path(report.target).name}: {report.output}")
    print(f"results written to {args.out.resolve()}")
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    from swapline.bench.quality import run_quality
    from swapline.bench.report import machine_info, print_table, write_json
    from swapline.pipeline import EngineSettings

    reports = run_quality(args.faces, EngineSettings(models=_model_choices(args)), ablation=args.ablation)
    full = reports["all steps"]
    rows = [
        [
            p.source,
            p.target,
            p.retrieved,
            p.dist_source,
            p.dist_target,
            p.landmark_error,
            p.seam,
            p.sharpness,
            p.swap_ms,
        ]
        for p in full.pairs
    ]
    columns = ["source", "target", "nearest", "d(out,src)", "d(out,tgt)", "lmk err", "seam", "sharp", "swap ms"]
    print_table("swap quality per pair", columns, rows)
    summaries = {name: report.summary() for name, report in reports.items()}
    keys = list(summaries["all steps"])
    print_table("summary", ["metric", *summaries], [[k, *[s.get(k) for s in summaries.values()]] for k in keys])
    for name, why in full.skipped.items():
        print(f"skipped {name}: {why}")
    payload = {
        "machine": machine_info(),
        "summary": summaries["all steps"],
        "ablation": {name: s for name, s in summaries.items() if name != "all steps"},
        "pairs": [p.__dict__ for p in full.pairs],
        "skipped": full.skipped,
    }
    write_json(args.json, payload)
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from swapline.bench.report import machine_info, print_table, write_json
    from swapline.bench.speed import run_speed

    result = run_speed(args.source, args.target, repeats=args.repeats, face_px=args.face_px)
    rows = [[name, s["median_ms"], s["p95_ms"], s["min_ms"]] for name, s in result["stages"].items()]
    title = f"per-stage time, one {result['frame']} frame, face {result['face_px']} px, {args.repeats} runs"
    print_table(title, ["stage", "median ms", "p95 ms", "min ms"], rows)
    write_json(args.json, {"machine": machine_info(), **result})
    return 0


def _print_live_summary(summary: dict) -> None:
    from swapline.bench.report import print_table

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
    print_table("live run", ["", "value"], rows)


def cmd_live(args: argparse.Namespace) -> int:
    from swapline.io import read_image
    from swapline.io.sinks import NullSink, VideoFileSink, VirtualCameraSink, WindowSink
    from swapline.io.sources import CameraSource, ImageSource, VideoFileSource
    from swapline.pipeline.live import LiveSettings
    from swapline.pipeline.rate import AdaptiveRateSettings
    from swapline.pipeline.realtime import RealtimeSettings, build_live_pipeline

    source_image = read_image(args.source).pixels
    if args.input is not None:
        frames = VideoFileSource(args.input, fps=args.fps, loop=args.loop)
        size = (frames.width, frames.height)
    elif args.image is not None:
        still = read_image(args.image).pixels
        frames = ImageSource(still, fps=args.fps or 30.0)
        size = (still.shape[1], still.shape[0])
    else:
        frames = CameraSource(args.camera, args.width, args.height, args.fps or 30.0)
        size = (args.width, args.height)
    fps = args.fps or getattr(frames, "fps", 30.0)
    if args.sink == "null":
        sink = NullSink()
    elif args.sink == "window":
        sink = WindowSink(overlay=not args.no_overlay)
    elif args.sink == "vcam":
        sink = VirtualCameraSink(size[0], size[1], fps)
    else:
        sink = VideoFileSink(Path(args.sink), fps=fps)
    settings = RealtimeSettings(
        live=LiveSettings(max_latency_ms=args.max_latency_ms),
        models=_model_choices(args),
        label=_label_settings(args),
        rate=AdaptiveRateSettings(enabled=not args.no_adaptive),
    )
    pipeline = build_live_pipeline(source_image, str(args.source), frames, sink, settings)
    stats = pipeline.run(duration_s=args.seconds)
    summary = stats.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_live_summary(summary)
    if stats.error:
        print(f"swapline: error: {stats.error}", file=sys.stderr)
        return 1
    return 0


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from swapline.bench.latency import run_latency
    from swapline.bench.report import machine_info, print_table, write_json

    layouts = tuple(args.layouts.split(","))
    report = run_latency(
        args.source,
        args.input,
        args.fps,
        args.seconds,
        args.stall_ms,
        args.stall_every,
        layouts,
        args.window_s,
        _model_choices(args),
    )
    rows = []
    for layout, run in report["runs"].items():
        lat = run["latency_ms"]
        rows.append(
            [
                layout,
                lat["p50_ms"],
                lat["p95_ms"],
                lat["p99_ms"],
                lat["max_ms"],
                run["frames_in"],
                run["frames_out"],
                run["dropped"],
                run["output_fps"],
            ]
        )
    title = f"end-to-end latency, {args.fps:g} fps input, {args.seconds:g} s" + (
        f", {args.stall_ms:g} ms stall every {args.stall_every} frames" if args.stall_ms else ""
    )
    print_table(title, ["layout", "p50 ms", "p95 ms", "p99 ms", "max ms", "in", "out", "dropped", "fps"], rows)
    stage_rows = [
        [f"{layout}: {stage}", h["p50_ms"], h["p95_ms"]]
        for layout, run in report["runs"].items()
        for stage, h in run["stages_ms"].items()
    ]
    print_table("per stage", ["stage", "p50 ms", "p95 ms"], stage_rows)
    for layout, run in report["runs"].items():
        print(f"{layout}: p99 ms per {report['input']['window_s']:g} s window: {run['p99_ms_by_window']}")
    if "serial_over_pipelined" in report:
        print(f"serial / pipelined latency: {report['serial_over_pipelined']}")
    write_json(args.json, {"machine": machine_info(), **report})
    return 0


def cmd_bench_video(args: argparse.Namespace) -> int:
    from rich.console import Console

    from swapline.bench.report import machine_info, print_table, write_json
    from swapline.bench.video import run_video_bench
    from swapline.pipeline.video_job import VideoSettings

    settings = VideoSettings(preset=args.preset, crf=args.crf, models=_model_choices(args))
    with Console(stderr=True).status("measuring: decode+encode floor, swap job, still-head jitter"):
        result = run_video_bench(args.source, args.input, settings, args.still)
    inp = result["input"]
    rows = [
        ["swap (whole job)", result["swap"]["seconds"], result["swap"]["fps"]],
        ["floor (decode + encode)", result["floor"]["seconds"], result["floor"]["fps"]],
    ]
    title = f"{inp['width']}x{inp['height']} {inp['fps']:g} fps, {inp['frames']} frames, preset {inp['preset']}"
    print_table(title, ["run", "seconds", "fps"], rows)
    print(f"swap / floor time: {result['swap_over_floor']}  per-frame stages ms: {result['swap']['stages_ms']}")
    if "stability" in result:
        st = result["stability"]
        print(f"jitter on a still head: input {st['input_jitter_px']} px, output {st['output_jitter_px']} px")
    write_json(args.json, {"machine": machine_info(), **result})
    return 0


def cmd_bench_neural(args: argparse.Namespace) -> int:
    from rich.console import Console

    from swapline.bench.neural import run_neural_bench
    from swapline.bench.report import machine_info, print_table, write_json

    providers = tuple(args.providers.split(",")) if args.providers else None
    with Console(stderr=True).status(f"running {args.frames} frames through the stand-in generator"):
        result = run_neural_bench(args.source, args.target, args.frames, providers)
    rows = [[stage, s["median_ms"], s["max_ms"]] for stage, s in result["stages_ms"].items()]
    title = f"neural path, stand-in generator ({result['generator_gflops']} GFLOPs) on {result['provider']}"
    print_table(title, ["stage", "median ms", "max ms"], rows)
    print(f"source registration (once): {result['source_registration_ms']} ms")
    write_json(args.json, {"machine": machine_info(), **result})
    return 0


def cmd_bench_sheet(args: argparse.Namespace) -> int:
    from rich.console import Console

    from swapline.bench.sheet import make_sheet

    with Console(stderr=True).status("swapping the sheet's pairs"):
        path = make_sheet(args.faces, args.out)
    print(f"wrote {path}")
    return 0


def cmd_bench_clip(args: argparse.Namespace) -> int:
    from swapline.bench.clips import make_clip

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SwaplineError(f"--size must look like 640x480, not {args.size!r}") from None
    path = make_clip(
        args.photo, args.out, (width, height), args.fps, args.seconds, args.face_px, args.motion, args.audio_hz
    )
    print(f"wrote {path}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from swapline.bench.report import print_table
    from swapline.models import BUILTIN_MODELS, builtin_model_path
    from swapline.models.registry import registry
    from swapline.models.store import ModelStore

    rows = [
        [name, "built in", about, f"{builtin_model_path(name).stat().st_size / 1e6:.1f} MB", "Apache-2.0 (MediaPipe)"]
        for name, about in BUILTIN_MODELS.items()
    ]
    store = ModelStore(offline=True)
    for name, spec in registry().items():
        where = "downloaded" if store.path(name).exists() else "not downloaded"
        rows.append([name, f"{spec.kind}, {where}", spec.description, "", spec.licence])
    print_table("models", ["name", "status", "what", "size", "licence"], rows)
    print(f"cache: {store.folder}")
    return 0


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from swapline.models.registry import spec
    from swapline.models.store import ModelStore

    store = ModelStore(offline=args.offline)
    names = list(args.names)
    for name in list(names):
        names.extend(n for n in spec(name).needs if n not in names)
    for name in names:
        print(f"{name}: {store.fetch(name)}")
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    from swapline.models.registry import registry
    from swapline.models.store import ModelStore

    store = ModelStore(offline=True)
    names = args.names or [n for n in registry() if store.path(n).exists()]
    failed = 0
    for name in names:
        result = store.verify(name)
        failed += result not in ("ok",)
        print(f"{name}: {result}")
    return 1 if failed else 0


def cmd_models_path(args: argparse.Namespace) -> int:
    from swapline.models.store import ModelStore

    print(ModelStore(offline=True).path(args.name))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (exit status 2, argparse's convention)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swapline", description="Low-latency face swap; outputs are labelled AI-generated.")
    parser.add_argument("--version", action="version", version=f"swapline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading and providers")
    commands = parser.add_subparsers(dest="command", required=True)

    swap = commands.add_parser("swap", help="swap the source face into a target image or video")
    swap.add_argument("--source", "-s", type=Path, required=True, help="photo of the face to use")
    swap.add_argument("--target", "-t", type=Path, required=True, help="image or video whose faces are replaced")
    swap.add_argument("--output", "-o", type=Path, required=True, help="result (jpg, png, webp; mp4, mov, mkv)")
    swap.add_argument(
        "--faces", choices=("all", "largest", "reference"), default="all", help="which target faces to replace"
    )
    swap.add_argument("--reference", type=Path, help="video, --faces reference: a photo of the person to replace")
    swap.add_argument("--crf", type=int, default=20, help="video: x264 quality (lower is better)")
    swap.add_argument("--preset", default="veryfast", help="video: x264 preset")
    swap.add_argument("--segment-frames", type=int, default=300, help="video: frames per resumable segment")
    swap.add_argument("--json", action="store_true", help="print a JSON summary with per-stage times")
    _add_model_options(swap, "full")
    _add_label_options(swap)
    swap.set_defaults(func=cmd_swap)

    demo = commands.add_parser("demo", help="swap the bundled sample faces and write the results")
    demo.add_argument("--out", type=Path, default=Path("swapline-demo"), help="folder for the results")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)

    bench = commands.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    quality = bench.add_parser("quality", help="identity and pose quality over photo pairs")
    quality.add_argument("--faces", type=Path, required=True, help="folder of photos, identity = file-name prefix")
    quality.add_argument("--json", type=Path, help="also write the results here")
    quality.add_argument("--ablation", action="store_true", help="also run with each swapper step off in turn")
    _add_model_options(quality, "full")
    quality.set_defaults(func=cmd_bench_quality)
    speed = bench.add_parser("speed", help="per-stage time on one 640x480 frame")
    speed.add_argument("--source", type=Path, required=True)
    speed.add_argument("--target", type=Path, required=True)
    speed.add_argument("--repeats", type=int, default=200)
    speed.add_argument("--face-px", type=int, default=200, help="face width in the frame")
    speed.add_argument("--json", type=Path, help="also write the results here")
    speed.set_defaults(func=cmd_bench_speed)

    live = commands.add_parser("live", help="swap faces in a live camera feed or a stand-in video")
    live.add_argument("--source", "-s", type=Path, required=True, help="photo of the face to use")
    where = live.add_mutually_exclusive_group()
    where.add_argument(
        "--camera",
        default=0,
        type=lambda v: int(v) if v.isdigit() else v,
        help="camera index or device path (default 0)",
    )
    where.add_argument("--input", type=Path, help="a video file played at its own pace, as a camera")
    where.add_argument("--image", type=Path, help="a still image, as a camera")
    live.add_argument("--sink", default="window", help="window, vcam, null, or a video file path (.mp4)")
    live.add_argument("--fps", type=float, default=None, help="camera/playback frame rate")
    live.add_argument("--width", type=int, default=640)
    live.add_argument("--height", type=int, default=480)
    live.add_argument("--loop", action="store_true", help="loop the --input video")
    live.add_argument("--seconds", type=float, default=None, help="stop after this long")
    live.add_argument("--max-latency-ms", type=float, default=200.0, help="drop frames older than this")
    live.add_argument("--no-adaptive", action="store_true", help="keep full rate with no face in view")
    live.add_argument("--no-overlay", action="store_true", help="no latency/fps text in the window")
    live.add_argument("--json", action="store_true", help="print the run summary as JSON")
    _add_model_options(live, "short")
    _add_label_options(live)
    live.set_defaults(func=cmd_live)

    latency = bench.add_parser("latency", help="live pipeline latency vs the serial baseline")
    latency.add_argument("--source", type=Path, required=True, help="photo of the face to use")
    latency.add_argument("--input", type=Path, required=True, help="video played as a camera (see bench clip)")
    latency.add_argument("--fps", type=float, default=30.0)
    latency.add_argument("--seconds", type=float, default=20.0, help="per layout")
    latency.add_argument("--stall-ms", type=float, default=0.0, help="a stage hiccup of this many ms...")
    latency.add_argument("--stall-every", type=int, default=30, help="...every this many frames")
    latency.add_argument("--window-s", type=float, default=10.0, help="p99 reported per window of this length")
    latency.add_argument("--layouts", default="split,single,serial", help="comma list of split, single, serial")
    latency.add_argument("--json", type=Path, help="also write the results here")
    _add_model_options(latency, "short")
    latency.set_defaults(func=cmd_bench_latency)

    video = bench.add_parser("video", help="video swap throughput vs decode+encode, and jitter")
    video.add_argument("--source", type=Path, required=True, help="photo of the face to use")
    video.add_argument("--input", type=Path, required=True, help="the video to swap (see bench clip)")
    video.add_argument("--preset", default="veryfast")
    video.add_argument("--crf", type=int, default=20)
    video.add_argument("--still", type=Path, help="photo for the still-head jitter clip")
    video.add_argument("--json", type=Path, help="also write the results here")
    _add_model_options(video, "full")
    video.set_defaults(func=cmd_bench_video)

    neural = bench.add_parser("neural", help="neural swap path latency with a stand-in generator")
    neural.add_argument("--source", type=Path, required=True)
    neural.add_argument("--target", type=Path, required=True)
    neural.add_argument("--frames", type=int, default=5)
    neural.add_argument("--providers", default=None, help="e.g. CUDAExecutionProvider,CPUExecutionProvider")
    neural.add_argument("--json", type=Path, help="also write the results here")
    neural.set_defaults(func=cmd_bench_neural)

    sheet = bench.add_parser("sheet", help="before/after contact sheet of the built-in swapper")
    sheet.add_argument("--faces", type=Path, required=True, help="folder with the sample photos (tests/data)")
    sheet.add_argument("--out", type=Path, required=True, help="png or jpg to write")
    sheet.set_defaults(func=cmd_bench_sheet)

    clip = bench.add_parser("clip", help="make a test clip (moving face) from a photo")
    clip.add_argument("--photo", type=Path, required=True)
    clip.add_argument("--out", type=Path, required=True)
    clip.add_argument("--size", default="640x480")
    clip.add_argument("--fps", type=float, default=30.0)
    clip.add_argument("--seconds", type=float, default=10.0)
    clip.add_argument("--face-px", type=int, default=200)
    clip.add_argument("--motion", type=float, default=1.0, help="0 = still head")
    clip.add_argument("--audio-hz", type=float, default=None, help="add a sine tone of this pitch")
    clip.set_defaults(func=cmd_bench_clip)

    models = commands.add_parser("models", help="model files").add_subparsers(dest="models", required=True)
    models.add_parser("list", help="built-in and downloadable models, with licences").set_defaults(func=cmd_models_list)
    fetch = models.add_parser("fetch", help="download models (and what they need), verified")
    fetch.add_argument("names", nargs="+")
    fetch.add_argument("--offline", action="store_true")
    fetch.set_defaults(func=cmd_models_fetch)
    verify = models.add_parser("verify", help="check downloaded models (hash and signature)")
    verify.add_argument("names", nargs="*")
    verify.set_defaults(func=cmd_models_verify)
    where = models.add_parser("path", help="where a model file is (or would be) kept")
    where.add_argument("name")
    where.set_defaults(func=cmd_models_path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except SwaplineError as exc:
        print(f"swapline: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("swapline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
