"""`swapline bench quality`: does the output look like the source person, posed like the target?

Over every ordered pair of photos of different people (identity = file-name prefix, e.g.
obama2.jpg -> obama), swap and measure with an independent identity model (dlib):
  - identity retrieval: the identity whose photos are nearest on average to the output is the source's;
  - descriptor distance output -> source photo, -> target photo, and to each person's *other*
    photos (the honest identity measure: not the very pixels that were copied);
  - landmark error output vs target (mean point distance / inter-ocular distance): pose and
    expression kept;
  - seam score: gradient energy in a band along the face oval in the output, over the same band
    in the target (1.0 = no added edge);
  - sharpness ratio: face-interior detail (mean |Laplacian|) of the output over the target's;
  - swap time.
With ablation, the same pairs run once per switchable step of the mesh swapper with that step off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.report import ProgressCallback, machine_info, make_table, no_progress
from swapline.errors import SwaplineError
from swapline.faces.encoder import DlibFaceEncoder, descriptor_distance
from swapline.faces.face import Face
from swapline.faces.topology import face_mesh, inter_ocular_distance
from swapline.io import read_image
from swapline.io.images import FORMATS
from swapline.session import SwapSession
from swapline.settings import SwapSettings
from swapline.swap.mesh_swapper import ABLATION_STEPS


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
    dist_target_others: float | None
    landmark_error: float
    seam: float
    sharpness: float
    swap_ms: float


@dataclass
class QualityReport:
    pairs: list[PairResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        if not self.pairs:
            return {"pairs": 0}

        def mean(values):
            values = [v for v in values if v is not None]
            return float(np.mean(values)) if values else None

        return {
            "pairs": len(self.pairs),
            "identity_retrieval": mean([p.correct for p in self.pairs]),
            "mean_dist_to_source": mean([p.dist_source for p in self.pairs]),
            "mean_dist_to_target": mean([p.dist_target for p in self.pairs]),
            "mean_dist_to_source_person_other_photos": mean([p.dist_source_others for p in self.pairs]),
            "mean_dist_to_target_person_other_photos": mean([p.dist_target_others for p in self.pairs]),
            "mean_landmark_error_iod": mean([p.landmark_error for p in self.pairs]),
            "max_landmark_error_iod": float(np.max([p.landmark_error for p in self.pairs])),
            "mean_seam_score": mean([p.seam for p in self.pairs]),
            "mean_sharpness_ratio": mean([p.sharpness for p in self.pairs]),
            "median_swap_ms": float(np.median([p.swap_ms for p in self.pairs])),
        }


def _oval_masks(face: Face, shape) -> tuple[np.ndarray, np.ndarray]:
    """(band along the oval border, face interior) as boolean masks."""
    oval = np.zeros(shape[:2], np.uint8)
    points = np.round(face.landmarks[face_mesh().face_oval, :2]).astype(np.int32)
    cv2.fillPoly(oval, [points], 255)
    width = max(3, int(round(inter_ocular_distance(face.landmarks) * 0.15)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    band = (cv2.dilate(oval, kernel) > 0) & ~(cv2.erode(oval, kernel) > 0)
    interior = cv2.erode(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3 * width, 3 * width))) > 0
    return band, interior


def seam_score(output: np.ndarray, target: np.ndarray, face: Face) -> float:
    band, _ = _oval_masks(face, target.shape)

    def energy(image):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
        return float((gx[band] ** 2 + gy[band] ** 2).mean())

    return energy(output) / max(energy(target), 1e-6)


def sharpness_ratio(output: np.ndarray, target: np.ndarray, face: Face) -> float:
    _, interior = _oval_masks(face, target.shape)

    def detail(image):
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[interior].mean())

    return detail(output) / max(detail(target), 1e-6)


def load_photos(folder: Path, session: SwapSession, encoder: DlibFaceEncoder, report: QualityReport) -> list[Photo]:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FORMATS)
    if not paths:
        raise SwaplineError(f"{folder}: no jpg, png or webp photos")
    photos = []
    for path in paths:
        pixels = read_image(path).pixels
        faces = session.find_faces(pixels)
        if len(faces) != 1:
            report.skipped[path.name] = f"{len(faces)} faces (needs exactly one)"
            continue
        photos.append(Photo(path, identity_of(path), pixels, faces[0], encoder.encode(pixels, faces[0])))
    return photos


def _others(descriptor, photos: list[Photo], identity: str, exclude: Path) -> float | None:
    distances = [
        descriptor_distance(descriptor, p.descriptor) for p in photos if p.identity == identity and p.path != exclude
    ]
    return float(np.mean(distances)) if distances else None


def _pairs(photos: list[Photo]) -> list[tuple[Photo, Photo]]:
    pairs = [(s, t) for s in photos for t in photos if s.identity != t.identity]
    if not pairs:
        raise SwaplineError("needs photos of at least two people (identity = file-name prefix)")
    return pairs


def _measure_pairs(session: SwapSession, encoder, photos: list[Photo], report: QualityReport, step) -> None:
    for source, target in _pairs(photos):
        registered = session.register_source(source.pixels, source.path.name)
        output = target.pixels.copy()
        timings: dict[str, float] = {}
        session.compose(output, [target.face], registered, timings=timings)
        swap_ms = timings["swap"]
        step()
        found = session.find_faces(output)
        if not found:
            report.skipped[f"{source.path.name}->{target.path.name}"] = "no face in the output"
            continue
        out_face = min(found, key=lambda f: float(np.linalg.norm(f.center - target.face.center)))
        descriptor = encoder.encode(output, out_face)
        by_identity: dict[str, list[float]] = {}
        for photo in photos:
            by_identity.setdefault(photo.identity, []).append(descriptor_distance(descriptor, photo.descriptor))
        retrieved = min(by_identity, key=lambda k: float(np.mean(by_identity[k])))
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
                dist_source_others=_others(descriptor, photos, source.identity, source.path),
                dist_target_others=_others(descriptor, photos, target.identity, target.path),
                landmark_error=error,
                seam=seam_score(output, target.pixels, target.face),
                sharpness=sharpness_ratio(output, target.pixels, target.face),
                swap_ms=swap_ms,
            )
        )


def run_quality(
    folder: Path,
    settings: SwapSettings | None = None,
    ablation: bool = False,
    on_progress: ProgressCallback = no_progress,
) -> dict[str, QualityReport]:
    """{"all steps": report} and, with ablation, one report per step turned off."""
    settings = settings or SwapSettings()
    encoder = DlibFaceEncoder()
    base_session = SwapSession(settings)
    loading = QualityReport()
    photos = load_photos(Path(folder), base_session, encoder, loading)
    variants = {"all steps": settings}
    if ablation:
        for step in ABLATION_STEPS:
            variants[f"without {step}"] = replace(settings, swapper=replace(settings.swapper, **{step: False}))
    reports = {}
    total = len(variants) * len(_pairs(photos))
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        on_progress(done, total)

    for name, variant in variants.items():
        report = QualityReport(skipped=dict(loading.skipped))
        session = base_session if variant is settings else SwapSession(variant)
        _measure_pairs(session, encoder, photos, report, step)
        reports[name] = report
    return reports


def quality_tables(reports: dict[str, QualityReport]) -> list:
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
    summaries = {name: report.summary() for name, report in reports.items()}
    keys = list(summaries["all steps"])
    summary_rows = [[k, *[s.get(k) for s in summaries.values()]] for k in keys]
    tables: list = [make_table("swap quality per pair", columns, rows)]
    tables.append(make_table("summary", ["metric", *summaries], summary_rows))
    tables += [f"skipped {name}: {why}" for name, why in full.skipped.items()]
    return tables


def quality_payload(reports: dict[str, QualityReport]) -> dict:
    full = reports["all steps"]
    summaries = {name: report.summary() for name, report in reports.items()}
    return {
        "machine": machine_info(),
        "summary": summaries["all steps"],
        "ablation": {name: s for name, s in summaries.items() if name != "all steps"},
        "pairs": [p.__dict__ for p in full.pairs],
        "skipped": full.skipped,
    }
