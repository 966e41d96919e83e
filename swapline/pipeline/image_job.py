"""`swap` on a still image: read, swap, label, write atomically, report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from swapline.errors import SwaplineError
from swapline.io import check_output_path, read_image, write_image
from swapline.pipeline.timing import StageTimer
from swapline.session import SwapSession
from swapline.settings import SwapSettings


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
    settings: SwapSettings | None = None,
    session: SwapSession | None = None,
) -> ImageSwapReport:
    source, target, output = Path(source), Path(target), Path(output)
    chosen = session.settings if session is not None else settings
    references = [chosen.faces.reference] if chosen is not None and chosen.faces.reference else []
    check_output_path(output, [source, target, *references])
    timer = StageTimer()
    with timer.stage("read"):
        source_image = read_image(source)
        target_image = read_image(target)
    with timer.stage("load models"):
        session = session or SwapSession(settings)
    with timer.stage("source"):
        registered = session.register_source(source_image.pixels, str(source))
    frame = target_image.pixels.copy()
    alpha = None if target_image.alpha is None else target_image.alpha.copy()
    result = session.swap_frame(frame, registered, alpha, timer)
    if result.faces_found == 0:
        raise SwaplineError(f"{target}: no face found in the target image")
    with timer.stage("write"):
        write_image(output, frame, alpha, provenance=session.provenance(faces_swapped=result.faces_swapped))
    with timer.stage("sign"):
        session.sign(output, [source, target])
    return ImageSwapReport(
        source=str(source),
        target=str(target),
        output=str(output),
        faces_found=result.faces_found,
        faces_swapped=result.faces_swapped,
        stages_ms=timer.rounded(),
    )
