"""`swapline bench quality`: does the output look like the source person, posed like the target?

Over every ordered pair of photos of different people (identity = file-name prefix, e.g.
obama2.jpg -> obama), swap and measure with an independent identity model (dlib):
  - identity retrieval: the identity whose photos are nearest on average to the output is the source's;
  - descriptor distance output->source photo and output->target photo;
  - landmark error output vs target (mean point distance / inter-ocular distance): pose and
    expression kept;
  - time per stage.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from swapline.errors import SwaplineError
from swapline.faces.encoder import DlibFaceEncoder, descriptor_distance
from swapline.faces.face import Face
from swapline.faces.topology import inter_ocular_distance
from swapline.io import read_image
from swapline.io.images import FORMATS
from swapline.pipeline.engine import EngineSettings, SwapEngine


def identity_of(path: Path) -> str:
    match = re.match(r"[a-zA-Z]+", path.stem)
    return match.group(0).lower() if match else path.stem


@dataclass
class Photo:
    path: Path
    identity: str
    pixels: np.ndarray
    face: Face
    descriptor: np.ndarray


@dataclass
class PairResult:
    source: str
    target: str
    retrieved: str
    correct: bool
    dist_source: float
    dist_target: float
    dist_source_others: float | None
    landmark_error: float
    swap_ms: float


@dataclass
class QualityReport:
    pairs: list[PairResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        if not self.pairs:
            return {"pairs": 0}
        others = [p.dist_source_others for p in self.pairs if p.dist_source_others is not None]
        return {
            "pairs": len(self.pairs),
            "identity_retrieval": float(np.mean([p.correct for p in self.pairs])),
            "mean_dist_to_source": float(np.mean([p.dist_source for p in self.pairs])),
            "mean_dist_to_target": float(np.mean([p.dist_target for p in self.pairs])),
            "mean_dist_to_source_person_other_photos": float(np.mean(others)) if others else None,
            "mean_landmark_error_iod": float(np.mean([p.landmark_error for p in self.pairs])),
            "max_landmark_error_iod": float(np.max([p.landmark_error for p in self.pairs])),
            "median_swap_ms": float(np.median([p.swap_ms for p in self.pairs])),
        }


def load_photos(folder: Path, engine: SwapEngine, encoder: DlibFaceEncoder, report: QualityReport) -> list[Photo]:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FORMATS)
    if not paths:
        raise SwaplineError(f"{folder}: no jpg, png or webp photos")
    photos = []
    for path in paths:
        pixels = read_image(path).pixels
        faces = engine.analyser.faces(pixels)
        if len(faces) != 1:
            report.skipped[path.name] = f"{len(faces)} faces (needs exactly one)"
            continue
        photos.append(Photo(path, identity_of(path), pixels, faces[0], encoder.encode(pixels, faces[0])))
    return photos


def run_quality(folder: Path, settings: EngineSettings | None = None, show_progress: bool = True) -> QualityReport:
    engine = SwapEngine(settings)
    encoder = DlibFaceEncoder()
    report = QualityReport()
    photos = load_photos(Path(folder), engine, encoder, report)
    pairs = [(s, t) for s in photos for t in photos if s.identity != t.identity]
    if not pairs:
        raise SwaplineError(f"{folder}: needs photos of at least two people (identity = file-name prefix)")
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("swapping pairs", total=len(pairs))
        for source, target in pairs:
            registered = engine.swapper.register(source.pixels, source.face)
            output = target.pixels.copy()
            start = time.perf_counter()
            engine.swapper.swap(output, target.face, registered)
            swap_ms = (time.perf_counter() - start) * 1000.0
            found = engine.analyser.faces(output)
            if not found:
                report.skipped[f"{source.path.name}->{target.path.name}"] = "no face in the output"
                progress.advance(task)
                continue
            # the output face is the one nearest the target face's position
            out_face = min(found, key=lambda f: float(np.linalg.norm(f.center - target.face.center)))
            descriptor = encoder.encode(output, out_face)
            by_identity: dict[str, list[float]] = {}
            for photo in photos:
                by_identity.setdefault(photo.identity, []).append(descriptor_distance(descriptor, photo.descriptor))
            retrieved = min(by_identity, key=lambda k: float(np.mean(by_identity[k])))
            others = [
                descriptor_distance(descriptor, p.descriptor)
                for p in photos
                if p.identity == source.identity and p.path != source.path
            ]
            error = float(
                np.linalg.norm(out_face.landmarks[:, :2] - target.face.landmarks[:, :2], axis=1).mean()
                / inter_ocular_distance(target.face.landmarks)
            )
            report.pairs.append(
                PairResult(
                    source=source.path.name,
                    target=target.path.name,
                    retrieved=retrieved,
                    correct=retrieved == source.identity,
                    dist_source=descriptor_distance(descriptor, source.descriptor),
                    dist_target=descriptor_distance(descriptor, target.descriptor),
                    dist_source_others=float(np.mean(others)) if others else None,
                    landmark_error=error,
                    swap_ms=swap_ms,
                )
            )
            progress.advance(task)
    return report
