"""`swapline demo`: swap the bundled sample faces with each other and write the results."""

from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from swapline.pipeline import ImageSwapReport, SwapEngine, swap_image_file

SAMPLES = Path(__file__).resolve().parent / "samples"
PAIRS = (("obama.jpg", "biden.jpg"), ("biden.jpg", "obama.jpg"), ("obama.jpg", "astronaut.png"))


def run_demo(out_dir: Path, show_progress: bool = True) -> list[ImageSwapReport]:
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = SwapEngine()
    reports = []
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("swapping sample faces", total=len(PAIRS))
        for source, target in PAIRS:
            output = out_dir / f"{Path(source).stem}_on_{Path(target).stem}.jpg"
            reports.append(swap_image_file(SAMPLES / source, SAMPLES / target, output, engine=engine))
            progress.advance(task)
    return reports
