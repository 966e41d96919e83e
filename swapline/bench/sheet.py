"""`swapline bench sheet`: a before/after contact sheet of the built-in swapper.

Columns: source, target, "before" (the plain mesh swap: one warp, lighting ratio, feathered
alpha blend) and "after" (every quality step on). By default the rows use only the NASA
astronaut and Grace Hopper photos (the sheet in docs/ and the README): each onto the other, and
onto the other with a microphone over the chin, a card over a cheek, a hand over the mouth and
a cheek, and in dim, cool light.
With every_photo, each photo of the folder (and below) is a target once, with the next other
person's photo as the source, plus the same object and light cases: for local inspection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.composites import card, dim_and_cool, hand, microphone
from swapline.bench.report import ProgressCallback, no_progress
from swapline.errors import SwaplineError
from swapline.faces import FaceAnalyser
from swapline.faces.face import Face
from swapline.io import read_image, write_image
from swapline.swap import MeshSwapper, MeshSwapSettings
from swapline.trust import LabelStamp

BEFORE = replace(
    MeshSwapSettings(),
    identity_shape=False,
    skin_mask=False,
    mirror_fill=False,
    match_sharpness=False,
    multiband=False,
    target_occluders=False,
    keep_target_hair=False,
    hands=False,
    lighting_sigma=0.8,
)
ASTRONAUT, HOPPER = "astronaut.png", "grace_hopper_1.jpg"


def _plain(image: np.ndarray, face: Face) -> np.ndarray:
    return image


def _with_microphone(image: np.ndarray, face: Face) -> np.ndarray:
    return microphone(image, face)[0]


def _with_card(image: np.ndarray, face: Face) -> np.ndarray:
    return card(image, face)[0]


def _with_hand(image: np.ndarray, face: Face) -> np.ndarray:
    return hand(image, face)[0]


def _dim_and_cool(image: np.ndarray, face: Face) -> np.ndarray:
    return dim_and_cool(image)


@dataclass(frozen=True)
class SheetRow:
    source: str  # file name, found anywhere under the folder
    target: str
    variant: Callable[[np.ndarray, Face], np.ndarray] = _plain  # what is done to the target first


DOCS_ROWS = (
    SheetRow(ASTRONAUT, HOPPER),
    SheetRow(HOPPER, ASTRONAUT),
    SheetRow(HOPPER, ASTRONAUT, _with_microphone),
    SheetRow(ASTRONAUT, HOPPER, _with_card),
    SheetRow(HOPPER, ASTRONAUT, _with_hand),
    SheetRow(HOPPER, ASTRONAUT, _dim_and_cool),
)
VARIANTS = (_with_microphone, _with_card, _with_hand, _dim_and_cool)


def _tile(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * 1.6
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    matrix = np.array([[size / side, 0, size / 2 - cx * size / side], [0, size / side, size / 2 - cy * size / side]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def every_photo_rows(paths: list[Path]) -> list[SheetRow]:
    """Each photo a target once, the source being the next photo of another person; the object
    and light variants rotate over the targets, one per photo."""
    from swapline.bench.quality import identity_of

    rows = []
    for index, target in enumerate(paths):
        others = [p for p in paths[index + 1 :] + paths[:index] if identity_of(p) != identity_of(target)]
        if not others:
            continue
        rows.append(SheetRow(others[0].name, target.name))
        rows.append(SheetRow(others[0].name, target.name, VARIANTS[index % len(VARIANTS)]))
    return rows


def make_sheet(
    folder: Path,
    out: Path,
    rows: tuple[SheetRow, ...] | list[SheetRow] = DOCS_ROWS,
    tile: int = 220,
    on_progress: ProgressCallback = no_progress,
) -> Path:
    from swapline.bench.quality import photo_paths

    by_name = {path.name: path for path in photo_paths(Path(folder))}
    missing = sorted({name for row in rows for name in (row.source, row.target)} - set(by_name))
    if missing:
        raise SwaplineError(f"{folder}: no photo named {', '.join(missing)} in it or below it")
    analyser = FaceAnalyser()
    before, after = MeshSwapper(BEFORE), MeshSwapper(MeshSwapSettings())
    cache: dict[str, tuple[np.ndarray, Face]] = {}

    def photo(name: str) -> tuple[np.ndarray, Face]:
        if name not in cache:
            image = read_image(by_name[name]).pixels
            faces = analyser.faces(image)
            if not faces:
                raise SwaplineError(f"{by_name[name]}: no face found")
            cache[name] = (image, max(faces, key=lambda f: float(np.prod(f.box[2:] - f.box[:2]))))
        return cache[name]

    lines = []
    for done, row in enumerate(rows):
        source, source_face = photo(row.source)
        plain, target_face = photo(row.target)
        target = row.variant(plain, target_face)
        cells = [_tile(source, source_face.box, tile), _tile(target, target_face.box, tile)]
        for swapper in (before, after):
            image = target.copy()
            swapper.swap(image, target_face, swapper.register(source, source_face))
            cells.append(_tile(image, target_face.box, tile))
        lines.append(np.concatenate(cells, axis=1))
        on_progress(done + 1, len(rows))
    header = np.full((28, tile * 4, 3), 255, np.uint8)
    for index, title in enumerate(("source", "target", "before", "after")):
        cv2.putText(header, title, (index * tile + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, *lines], axis=0)
    LabelStamp().apply(sheet)  # the sheet shows swapped faces
    return write_image(out, sheet)
