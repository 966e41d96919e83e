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


def _engine_settings(args: argparse.Namespace):
    from swapline.faces import AnalyserSettings, DetectorSettings
    from swapline.pipeline import EngineSettings

    analyser = AnalyserSettings(detector=DetectorSettings(range=args.detector, tiles=True))
    return EngineSettings(analyser=analyser, label=_label_settings(args), faces=args.faces)


def cmd_swap(args: argparse.Namespace) -> int:
    from swapline.pipeline import swap_image_file

    report = swap_image_file(args.source, args.target, args.output, _engine_settings(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"swapped {report.faces_swapped} of {report.faces_found} face(s) -> {report.output}")
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

    report = run_quality(args.faces)
    rows = [
        [p.source, p.target, p.retrieved, p.dist_source, p.dist_target, p.landmark_error, p.swap_ms]
        for p in report.pairs
    ]
    columns = ["source", "target", "nearest identity", "d(out,src)", "d(out,tgt)", "lmk err/IOD", "swap ms"]
    print_table("swap quality per pair", columns, rows)
    summary = report.summary()
    print_table("summary", ["metric", "value"], [[k, v] for k, v in summary.items()])
    for name, why in report.skipped.items():
        print(f"skipped {name}: {why}")
    payload = {
        "machine": machine_info(),
        "summary": summary,
        "pairs": [p.__dict__ for p in report.pairs],
        "skipped": report.skipped,
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


def cmd_models_list(args: argparse.Namespace) -> int:
    from swapline.bench.report import print_table
    from swapline.models import BUILTIN_MODELS, builtin_model_path

    rows = [
        [name, about, f"{builtin_model_path(name).stat().st_size / 1e6:.1f} MB", "built in"]
        for name, about in BUILTIN_MODELS.items()
    ]
    print_table("models", ["name", "what", "size", "where"], rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swapline", description="Low-latency face swap; outputs are labelled AI-generated."
    )
    parser.add_argument("--version", action="version", version=f"swapline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading and providers")
    commands = parser.add_subparsers(dest="command", required=True)

    swap = commands.add_parser("swap", help="swap the source face into a target image")
    swap.add_argument("--source", "-s", type=Path, required=True, help="photo of the face to use")
    swap.add_argument("--target", "-t", type=Path, required=True, help="image whose faces are replaced")
    swap.add_argument("--output", "-o", type=Path, required=True, help="result (jpg, png or webp)")
    swap.add_argument("--faces", choices=("all", "largest"), default="all", help="which target faces to replace")
    swap.add_argument("--detector", choices=("full", "short"), default="full", help="BlazeFace range")
    swap.add_argument("--json", action="store_true", help="print a JSON summary with per-stage times")
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
    quality.set_defaults(func=cmd_bench_quality)
    speed = bench.add_parser("speed", help="per-stage time on one 640x480 frame")
    speed.add_argument("--source", type=Path, required=True)
    speed.add_argument("--target", type=Path, required=True)
    speed.add_argument("--repeats", type=int, default=200)
    speed.add_argument("--face-px", type=int, default=200, help="face width in the frame")
    speed.add_argument("--json", type=Path, help="also write the results here")
    speed.set_defaults(func=cmd_bench_speed)

    models = commands.add_parser("models", help="model files").add_subparsers(dest="models", required=True)
    models.add_parser("list", help="list known models").set_defaults(func=cmd_models_list)
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
