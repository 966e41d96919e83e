"""`swapline batch` and `swapline bench batch`: many inputs on Ray (or a local pool), and its benchmark."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from swapline.batch import RUNNERS
from swapline.cli.output import error, progress, show, show_json, stderr
from swapline.errors import SwaplineError


def register(sub, bench) -> None:
    """Add `batch` to the top-level subparsers and `batch` to the `bench` subparsers."""
    from swapline.cli.parser import _add_session_options

    batch = sub.add_parser("batch", help="swap the source face into many videos and photos, on Ray")
    batch.add_argument("--source", "-s", type=Path, required=True, help="photo of the face to use")
    batch.add_argument("inputs", nargs="+", type=Path, help="videos and photos whose faces are replaced")
    batch.add_argument("--output-dir", "-o", type=Path, required=True, help="results go here, named as the inputs")
    batch.add_argument(
        "--address", default=None, help="a Ray cluster: auto or ray://HOST:PORT (default: Ray started here)"
    )
    batch.add_argument("--chunk-seconds", type=float, default=60.0, help="long videos are cut into chunks this long")
    batch.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    batch.add_argument(
        "--runner", choices=RUNNERS, default="auto", help="auto (Ray if installed), ray, or pool (local processes)"
    )
    batch.add_argument("--crf", type=int, default=20, help="video: x264 quality (lower is better)")
    batch.add_argument("--preset", default="veryfast", help="video: x264 preset")
    batch.add_argument("--segment-frames", type=int, default=300, help="video: frames per resumable segment")
    batch.add_argument("--json", action="store_true", help="print a JSON summary")
    _add_session_options(batch, "full")
    batch.set_defaults(func=run_batch_command)

    timing = bench.add_parser("batch", help="batch throughput: one process vs Ray on this machine")
    timing.add_argument("--source", type=Path, required=True, help="photo of the face to use")
    timing.add_argument("--photo", type=Path, action="append", required=True, help="photo(s) the clips are made of")
    timing.add_argument("--clips", type=int, default=6)
    timing.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    timing.add_argument("--size", default="1280x720")
    timing.add_argument("--fps", type=float, default=30.0)
    timing.add_argument("--face-px", type=int, default=260)
    timing.add_argument("--workers", type=int, default=None, help="default: one per core")
    timing.add_argument("--runs", default="single,ray", help="comma list of single, ray, pool")
    timing.add_argument("--repeats", type=int, default=1, help="turns per run (best kept)")
    timing.add_argument("--json", type=Path, help="also write the results here")
    _add_session_options(timing, "full")
    timing.set_defaults(func=run_batch_bench_command)


def _quiet_ray(verbose: bool) -> None:
    """Ray logs its own start-up notes; the terminal gets them only with -v."""
    from swapline.batch import ray_available

    ray_available()  # importing Ray sets up its loggers: adjust them after
    logging.getLogger("ray").setLevel(logging.INFO if verbose else logging.ERROR)


def run_batch_command(args: argparse.Namespace) -> int:
    from swapline.batch import BatchJob, BatchOptions
    from swapline.bench.report import make_table
    from swapline.cli.commands import _session
    from swapline.settings import VideoOptions

    _quiet_ray(args.verbose)
    options = BatchOptions(
        video=VideoOptions(crf=args.crf, preset=args.preset, segment_frames=args.segment_frames),
        chunk_seconds=args.chunk_seconds,
        workers=args.workers,
        address=args.address,
        runner=args.runner,
    )
    job = BatchJob(
        _session(args),
        args.source,
        args.inputs,
        args.output_dir,
        options,
        on_notice=lambda text: stderr.print(text, markup=False, highlight=False),
    )
    with progress("chunks", enabled=not args.json) as update:
        report = job.run(lambda p: update(p.chunks_done, p.chunks_total))
    if args.json:
        show_json(report.to_dict())
    else:
        rows = [
            [Path(r.input).name, r.output, r.frames, f"{r.chunks} ({r.resumed_chunks} resumed)", r.error or "ok"]
            for r in report.inputs
        ]
        title = f"{report.runner}, {report.workers} worker(s): {report.frames} frames at {report.fps:g} fps"
        show(make_table(title, ["input", "output", "frames", "chunks", "result"], rows))
    for failed in report.failed:
        error(failed.error if failed.input in failed.error else f"{failed.input}: {failed.error}")
    return 1 if report.failed else 0


def run_batch_bench_command(args: argparse.Namespace) -> int:
    from swapline.bench.batch import batch_tables, run_batch_bench
    from swapline.cli.commands import _settings, _write_json

    _quiet_ray(args.verbose)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SwaplineError(f"--size must look like 1280x720, not {args.size!r}") from None
    runs = tuple(r.strip() for r in args.runs.split(",") if r.strip())
    with stderr.status(f"timing {args.clips} clips of {args.seconds:g} s: {', '.join(runs)}"):
        result = run_batch_bench(
            args.source,
            args.photo,
            clips=args.clips,
            seconds=args.seconds,
            size=(width, height),
            fps=args.fps,
            face_px=args.face_px,
            settings=_settings(args),
            workers=args.workers,
            runs=runs,
            repeats=args.repeats,
        )
    show(*batch_tables(result))
    _write_json(args.json, result)
    return 0
