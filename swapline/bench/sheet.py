"""`swapline bench sheet`: a before/after contact sheet of the built-in swapper on photo pairs.

Columns: source, target, "before" (the plain mesh swap: one warp, lighting ratio, feathered
alpha blend) and "after" (every quality step on). Rows: the given pairs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from swapline.faces import FaceAnalyser
from swapline.io import read_image, write_image
from swapline.swap import MeshSwapper, MeshSwapSettings
from swapline.trust import LabelStamp

BEFORE = replace(
    MeshSwapSettings(), skin_mask=False, mirror_fill=False, match_sharpness=False, multiband=False, lighting_sigma=0.8
)
DEFAULT_PAIRS = (
    ("astronaut.png", "obama2.jpg"),
    ("obama_partial_face.jpg", "biden2.jpg"),
    ("biden.jpg", "obama.jpg"),
    ("obama2.jpg", "biden2.jpg"),
)


def _tile(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * 1.6
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    matrix = np.array([[size / side, 0, size / 2 - cx * size / side], [0, size / side, size / 2 - cy * size / side]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def make_sheet(folder: Path, out: Path, pairs=DEFAULT_PAIRS, tile: int = 220) -> Path:
    analyser = FaceAnalyser()
    before, after = MeshSwapper(BEFORE), MeshSwapper(MeshSwapSettings())
    rows = []
    for source_name, target_name in pairs:
        source = read_image(Path(folder) / source_name).pixels
        target = read_image(Path(folder) / target_name).pixels
        source_face, target_face = analyser.faces(source)[0], analyser.faces(target)[0]
        outputs = []
        for swapper in (before, after):
            image = target.copy()
            swapper.swap(image, target_face, swapper.register(source, source_face))
            outputs.append(image)
        cells = [_tile(source, source_face.box, tile), _tile(target, target_face.box, tile)]
        cells += [_tile(image, target_face.box, tile) for image in outputs]
        rows.append(np.concatenate(cells, axis=1))
    header = np.full((28, tile * 4, 3), 255, np.uint8)
    for index, title in enumerate(("source", "target", "before", "after")):
        cv2.putText(header, title, (index * tile + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, *rows], axis=0)
    LabelStamp().apply(sheet)  # the sheet shows synthetic faces too
    return write_image(out, sheet)
