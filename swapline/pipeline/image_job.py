"""swap one still image: read, swap, label, write atomically, report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.io import check_output_path, read_image, write_image
from swapline.pipeline.engine import EngineSettings, SwapEngine
from swapline.pipeline.timing import StageTimer
from swapline.trust import provenance_record


@dataclass
class ImageSwapReport:
    source: str
    target: str
    output: str
    faces_found: int
    faces_swapped: int
    stages_ms: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


def swap_image_file(
    source: Path | str,
    target: Path | str,
    output: Path | str,
    settings: EngineSettings | None = None,
    engine: SwapEngine | None = None,
) -> ImageSwapReport:
    source, target, output = Path(source), Path(target), Path(output)
    check_output_path(output, [source, target])
    timer = StageTimer()
    with timer.stage("read"):
        source_image = read_image(source)
        target_image = read_image(target)
    with timer.stage("load models"):
        engine = engine or SwapEngine(settings)
    with timer.stage("source"):
        registered = engine.register_source(source_image.pixels, str(source))
    frame = target_image.pixels.copy()
    alpha = None if target_image.alpha is None else target_image.alpha.copy()
    result = engine.swap_frame(frame, registered, timer, alpha)
    if result.faces_found == 0:
        raise SwaplineError(f"{target}: no face found in the target image")
    with timer.stage("write"):
        record = provenance_record(
            method=f"face swap ({engine.swapper.name})",
            label_text=engine.settings.label.text,
            faces_swapped=result.faces_swapped,
        )
        write_image(output, frame, alpha, provenance=record)
    return ImageSwapReport(
        source=str(source),
        target=str(target),
        output=str(output),
        faces_found=result.faces_found,
        faces_swapped=result.faces_swapped,
        stages_ms=timer.rounded(),
    )
