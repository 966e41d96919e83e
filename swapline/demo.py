"""`swapline demo`: swap the bundled sample faces with each other and write the results."""

from __future__ import annotations

from pathlib import Path

from swapline.bench.report import ProgressCallback, no_progress
from swapline.pipeline.image_job import ImageSwapReport, swap_image_file
from swapline.session import SwapSession

SAMPLES = Path(__file__).resolve().parent / "samples"
PAIRS = (("obama.jpg", "biden.jpg"), ("biden.jpg", "obama.jpg"), ("obama.jpg", "astronaut.png"))


def run_demo(out_dir: Path, on_progress: ProgressCallback = no_progress) -> list[ImageSwapReport]:
    out_dir.mkdir(parents=True, exist_ok=True)
    session = SwapSession()
    reports = []
    for done, (source, target) in enumerate(PAIRS):
        on_progress(done, len(PAIRS))
        output = out_dir / f"{Path(source).stem}_on_{Path(target).stem}.jpg"
        reports.append(swap_image_file(SAMPLES / source, SAMPLES / target, output, session=session))
    on_progress(len(PAIRS), len(PAIRS))
    return reports
