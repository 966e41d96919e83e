"""`swapline bench quality`: does the output look like the source person, posed like the target?

Photos are read from the folder and every folder below it (tests/data holds dev/). Identity is
the file name: `<person>_<n>.jpg` -> person, else its leading letters (obama2.jpg -> obama).
Pairs (deterministic, see select_pairs): every source photo against PAIRS_PER_SOURCE photos of
other people, spread round-robin over the sorted list. For each pair, swap and measure with an
independent identity model (dlib):
  - identity retrieval: the identity whose photos are nearest on average to the output is the source's;
  - descriptor distance output -> source photo, -> target photo, and to each person's *other*
    photos (the honest identity measure: not the very pixels that were copied);
  - landmark error output vs target (mean point distance / inter-ocular distance): pose and
    expression kept;
  - seam score: gradient energy in a band along the face oval in the output, over the same band
    in the target (1.0 = no added edge);
  - sharpness ratio: face-interior detail (mean |Laplacian|) of the output over the target's;
  - tone seam: CIEDE2000 between the output's skin just inside the face oval and the target's
    skin just outside it (forehead, cheeks-to-ears, neck), per sector around the face; the
    untouched target scores ~5.5 on this (a face is not the colour of its neck), so the same
    band is also compared with the target's own skin just inside the oval: the tone change
    the swap brings to the seam (0 = the face meets its surroundings as the target's did);
  - expression and pose kept: mouth opening (inner-lip gap / IOD), eye openings (lid gap / eye
    width) and head yaw/pitch/roll of the output against the target's;
  - how far the identity-shape step moved the inner face (mean offset / IOD);
  - swap time.
With ablation, the same pairs run once per switchable step of the mesh swapper with that step off.
"""

from __future__ import annotations

import math
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
from swapline.swap.shape import eye_openings, mouth_opening, relative_pose_degrees
from swapline.swap.skin import feature_mask
from swapline.trust.watermark import Payload

PAIRS_PER_SOURCE = 6
ABLATION_PAIRS_PER_SOURCE = 2  # each ablation variant re-runs every pair: fewer of them
PAIR_SELECTION = (
    f"every source photo against {PAIRS_PER_SOURCE} photos of other people ({ABLATION_PAIRS_PER_SOURCE} "
    "for the ablation variants, 'all steps (ablation pairs)' being their baseline): the other "
    "people's photos in sorted path order, taken at even steps from the source's own position"
)


def identity_of(path: Path) -> str:
    numbered = re.fullmatch(r"(.+)_\d+", path.stem)
    if numbered:
        return numbered.group(1).lower()
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
    tone_de: float | None  # output inside the oval vs target outside it
    tone_change_de: float | None  # output inside the oval vs target inside it (same pixels)
    tone_de_target: float | None  # the same measure on the unmodified target: its own baseline
    mouth_diff: float
    eye_diff: float
    pose_diff_deg: float  # largest of |yaw|, |pitch|, |roll| between output and target
    shape_move_iod: float
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

        def median(values):
            values = [v for v in values if v is not None]
            return float(np.median(values)) if values else None

        def largest(values):
            values = [v for v in values if v is not None]
            return float(np.max(values)) if values else None

        tone = [p.tone_de for p in self.pairs]
        # the seam the swap adds: how much further the face is from its surroundings than in the target
        added = [
            max(0.0, p.tone_de - p.tone_de_target) for p in self.pairs if None not in (p.tone_de, p.tone_de_target)
        ]

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
            "max_seam_score": largest([p.seam for p in self.pairs]),
            "mean_sharpness_ratio": mean([p.sharpness for p in self.pairs]),
            "median_tone_de2000": median(tone),
            "max_tone_de2000": largest(tone),
            "median_tone_de2000_target_itself": median([p.tone_de_target for p in self.pairs]),
            "median_tone_added_de2000": median(added),
            "max_tone_added_de2000": largest(added),
            "median_tone_change_de2000": median([p.tone_change_de for p in self.pairs]),
            "max_tone_change_de2000": largest([p.tone_change_de for p in self.pairs]),
            "max_mouth_opening_diff": largest([p.mouth_diff for p in self.pairs]),
            "max_eye_opening_diff": largest([p.eye_diff for p in self.pairs]),
            "mean_eye_opening_diff": mean([p.eye_diff for p in self.pairs]),
            "max_pose_diff_deg": largest([p.pose_diff_deg for p in self.pairs]),
            "mean_shape_move_iod": mean([p.shape_move_iod for p in self.pairs]),
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


def _lab(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(pixels.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_BGR2LAB)


def tone_seam(
    output: np.ndarray, target: np.ndarray, face: Face, sectors: int = 12
) -> tuple[float | None, float | None]:
    """(across, change): CIEDE2000 between the output's skin just inside the face oval and the
    target's skin just outside it (across), and the target's skin just inside it (change: what
    the swap did to the tone at the seam), per sector around the face centre; each the
    pixel-weighted median over sectors (None: no sector has skin on both sides). Skin is where
    the *target* is close to its own cheek colour (Mahalanobis distance in Lab < 2.5), on both
    sides: hair, brows, collar, glasses and background are left out, and the output is read at
    the target's skin positions."""
    from skimage.color import deltaE_ciede2000

    points = face.landmarks[:, :2]
    iod = inter_ocular_distance(face.landmarks)
    pad = int(0.6 * iod) + 2
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + pad
    crop = np.s_[y0:y1, x0:x1]
    out, tgt = output[crop], target[crop]
    local = points - [x0, y0]
    shape = tgt.shape[:2]
    mesh = face_mesh()
    oval = np.zeros(shape, np.uint8)
    cv2.fillPoly(oval, [np.round(local[mesh.face_oval]).astype(np.int32)], 255)

    def ellipse(fraction):
        size = max(3, int(fraction * iod) | 1)
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))

    inner = (cv2.erode(oval, ellipse(0.1)) > 0) & ~(cv2.erode(oval, ellipse(0.4)) > 0)
    inner &= feature_mask(local, mesh, shape, grow=0.15 * iod) == 0
    outer = (cv2.dilate(oval, ellipse(0.4)) > 0) & ~(cv2.dilate(oval, ellipse(0.1)) > 0)
    lab_t, lab_o = _lab(tgt), _lab(out)
    core = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(core, np.round(cv2.convexHull(local[[50, 280, 4, 168]].astype(np.float32))).astype(np.int32), 1)
    sample = lab_t[core > 0]
    if len(sample) < 30:
        return None, None
    diff = lab_t - sample.mean(axis=0)
    inverse = np.linalg.inv(np.cov(sample.T) + np.eye(3) * 4.0)
    skin = np.sqrt(np.einsum("...i,ij,...j->...", diff, inverse, diff)) < 2.5
    inner &= skin
    outer &= skin
    centre = local[mesh.face_oval].mean(axis=0)
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    sector = ((np.arctan2(ys - centre[1], xs - centre[0]) + math.pi) / (2 * math.pi) * sectors).astype(int) % sectors
    across, change, weights = [], [], []
    for k in range(sectors):
        a, b = inner & (sector == k), outer & (sector == k)
        if a.sum() >= 20 and b.sum() >= 20:
            mean_a = lab_o[a].mean(axis=0)
            across.append(float(deltaE_ciede2000(mean_a, lab_t[b].mean(axis=0))))
            change.append(float(deltaE_ciede2000(mean_a, lab_t[a].mean(axis=0))))
            weights.append(min(a.sum(), b.sum()))
    if not weights:
        return None, None
    return _weighted_median(across, weights), _weighted_median(change, weights)


def _weighted_median(values: list[float], weights: list[float]) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights, float)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def photo_paths(folder: Path) -> list[Path]:
    """Photos in folder and every folder below it, in sorted path order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)


def load_photos(folder: Path, session: SwapSession, encoder: DlibFaceEncoder, report: QualityReport) -> list[Photo]:
    paths = photo_paths(folder)
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


def select_pairs(photos: list[Photo], per_source: int = PAIRS_PER_SOURCE) -> list[tuple[Photo, Photo]]:
    """Deterministic subset of the ordered pairs of different people (all of them when few)."""
    pairs = []
    for index, source in enumerate(photos):
        others = [t for t in photos if t.identity != source.identity]
        if len(others) <= per_source:
            pairs += [(source, t) for t in others]
            continue
        step = len(others) / per_source
        pairs += [(source, others[int(index + k * step) % len(others)]) for k in range(per_source)]
    return pairs


def _pairs(photos: list[Photo], per_source: int = PAIRS_PER_SOURCE) -> list[tuple[Photo, Photo]]:
    pairs = select_pairs(photos, per_source)
    if not pairs:
        raise SwaplineError("needs photos of at least two people (identity = file-name prefix)")
    return pairs


# What the measures read when there is nothing to find: a photo swapped onto itself (the swap's
# own footprint), and a person's other photo swapped onto one of theirs (the same identity and
# shape, another expression, pose and light): the expression and pose limits are read against these.
FLOORS = {
    "floor: the photo as its own source": lambda photos: [(p, p) for p in photos],
    "floor: the person's other photo as source": lambda photos: [
        (a, b) for a in photos for b in photos if a.identity == b.identity and a.path != b.path
    ],
}


def _measure_pairs(
    session: SwapSession, encoder, photos: list[Photo], report: QualityReport, step, pairs: list
) -> None:
    registered_by_path: dict[Path, object] = {}
    for source, target in pairs:
        if source.path not in registered_by_path:  # once a source; its notes are for users, not here
            registered_by_path[source.path] = session.register_source(source.pixels, source.path.name, advise=False)
        registered = registered_by_path[source.path]
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
        target_lm, out_lm = target.face.landmarks, out_face.landmarks
        iod = inter_ocular_distance(target_lm)
        error = float(np.linalg.norm(out_lm[:, :2] - target_lm[:, :2], axis=1).mean() / iod)
        eye_out, eye_target = eye_openings(out_lm), eye_openings(target_lm)
        moved = 0.0
        swapper = session.settings.swapper
        if getattr(registered, "shape", None) is not None and swapper.identity_shape:
            offsets = registered.shape.offsets(target_lm, swapper.shape_settings())
            moved = float(np.linalg.norm(offsets, axis=1).mean() / iod)
        tone_de, tone_change = tone_seam(output, target.pixels, target.face)
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
                tone_de=tone_de,
                tone_change_de=tone_change,
                tone_de_target=tone_seam(target.pixels, target.pixels, target.face)[0],
                mouth_diff=abs(mouth_opening(out_lm) - mouth_opening(target_lm)),
                eye_diff=max(abs(a - b) for a, b in zip(eye_out, eye_target, strict=True)),
                pose_diff_deg=max(abs(v) for v in relative_pose_degrees(target_lm, out_lm)),
                shape_move_iod=moved,
                swap_ms=swap_ms,
            )
        )


BENCH_JOB_ID = 20261126


def run_quality(
    folder: Path,
    settings: SwapSettings | None = None,
    ablation: bool = False,
    on_progress: ProgressCallback = no_progress,
    floors: bool | None = None,
) -> dict[str, QualityReport]:
    """{"all steps": report}; with ablation, one report per step turned off; with floors (by
    default: with ablation), one per measure floor (FLOORS, every step on)."""
    settings = settings or SwapSettings()
    encoder = DlibFaceEncoder()
    base_session = SwapSession(settings)
    loading = QualityReport()
    photos = load_photos(Path(folder), base_session, encoder, loading)
    variants = {"all steps": settings}
    if ablation:
        variants["all steps (ablation pairs)"] = settings
        for step in ABLATION_STEPS:
            variants[f"without {step}"] = replace(settings, swapper=replace(settings.swapper, **{step: False}))
    reports = {}
    pairs = {
        name: _pairs(photos, PAIRS_PER_SOURCE if name == "all steps" else ABLATION_PAIRS_PER_SOURCE)
        for name in variants
    }
    floors = ablation if floors is None else floors
    if floors:
        for name, make in FLOORS.items():
            variants[name], pairs[name] = settings, make(photos)
    total = sum(len(p) for p in pairs.values())
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        on_progress(done, total)

    for name, variant in variants.items():
        report = QualityReport(skipped=dict(loading.skipped))
        session = base_session if variant is settings else SwapSession(variant)
        # one fixed job id: the invisible mark (whose pattern follows the id, by default the time
        # of the run) is then the same in every run, and so is every measure of the outputs
        session.mark_payload = Payload(job_id=BENCH_JOB_ID)
        _measure_pairs(session, encoder, photos, report, step, pairs[name])
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
        "pair_selection": PAIR_SELECTION,
        "summary": summaries["all steps"],
        "ablation": {name: s for name, s in summaries.items() if name != "all steps" and name not in FLOORS},
        "floors": {name: s for name, s in summaries.items() if name in FLOORS},
        "pairs": [p.__dict__ for p in full.pairs],
        "skipped": full.skipped,
    }
