"""`swapline bench speed`: per-stage medians on one 640x480 frame with one ~200 px face."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.composites import hand
from swapline.bench.report import ProgressCallback, make_table, no_progress
from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, FaceMeshLandmarker
from swapline.faces.face import Face
from swapline.faces.hands import roi_from_hand
from swapline.faces.landmarks import roi_from_landmarks
from swapline.io import read_image
from swapline.session import SwapSession
from swapline.swap import MeshSwapper
from swapline.trust import LabelStamp


def landmark_box(face: Face) -> np.ndarray:
    """(x0, y0, x1, y1) of the face's landmarks: the width the benches report as "face px", which
    (unlike the detector's box) does not move when detection changes."""
    xy = face.landmarks[:, :2]
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)])


def make_frame(image: np.ndarray, face_box: np.ndarray, face_px: int = 200, size=(640, 480)) -> np.ndarray:
    """A size[0] x size[1] frame cut from image, scaled so the face box is face_px wide, centred."""
    scale = face_px / max(1.0, float(face_box[2] - face_box[0]))
    cx, cy = (face_box[0] + face_box[2]) / 2 * scale, (face_box[1] + face_box[3]) / 2 * scale
    matrix = np.array([[scale, 0, size[0] / 2 - cx], [0, scale, size[1] / 2 - cy]], np.float32)
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def _time(fn, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def run_speed(
    source: Path, target: Path, repeats: int = 200, face_px: int = 200, on_progress: ProgressCallback = no_progress
) -> dict:
    session = SwapSession()
    source_image = read_image(source).pixels
    registered = session.register_source(source_image, str(source))
    target_image = read_image(target).pixels
    target_faces = session.find_faces(target_image)
    if not target_faces:
        raise SwaplineError(f"{target}: no face found in the target image")
    frame = make_frame(target_image, landmark_box(target_faces[0]), face_px)
    detectors = {r: BlazeFaceDetector(r) for r in ("short", "full")}
    landmarker = FaceMeshLandmarker()
    faces = detectors["full"].detect(frame)
    if not faces:
        raise SwaplineError(f"{target}: no face found in the 640x480 benchmark frame")
    face = landmarker.refine(frame, faces[0])
    roi = roi_from_landmarks(face.landmarks)
    label = LabelStamp()
    work = frame.copy()
    swapper = MeshSwapper(session.settings.swapper)  # the swap alone, without the label
    no_hands = MeshSwapper(replace(session.settings.swapper, hands=False))
    finder = swapper.hand_finder
    covered = hand(frame, face)[0]

    def swap_blend(with_hands: bool = True) -> None:
        np.copyto(work, frame)
        (swapper if with_hands else no_hands).swap(work, face, registered)

    stages = {
        "detect (full range)": lambda: detectors["full"].detect(frame),
        "detect (short range)": lambda: detectors["short"].detect(frame),
        "landmarks (tracked ROI)": lambda: landmarker.run(frame, roi),
        "swap + blend": swap_blend,
        "swap + blend (--no-hands)": lambda: swap_blend(False),
        "label": lambda: label.apply(work),
    }
    if finder is not None:
        stages["hands: palm search, none there"] = lambda: finder.around_face(frame, face)
        stages["hands: a hand in front (+ landmarks)"] = lambda: finder.around_face(covered, face)
        held = finder.around_face(covered, face)
        if held:  # a feed's frames between palm searches: the landmarks alone
            roi = roi_from_hand(held[0].points)
            stages["hands: a hand followed (video, live)"] = lambda: finder.landmarks(covered, roi)
    results = {}
    for done, (name, fn) in enumerate(stages.items()):
        on_progress(done, len(stages))
        for _ in range(5):  # warm-up
            fn()
        samples = np.array(_time(fn, repeats))
        results[name] = {
            "median_ms": float(np.median(samples)),
            "p95_ms": float(np.percentile(samples, 95)),
            "min_ms": float(samples.min()),
        }
    on_progress(len(stages), len(stages))
    return {
        "frame": "640x480",
        "face_px": round(float(face.landmarks[:, 0].max() - face.landmarks[:, 0].min())),
        "repeats": repeats,
        "source": Path(source).name,
        "target": Path(target).name,
        "stages": results,
    }


def speed_tables(result: dict) -> list:
    rows = [[name, s["median_ms"], s["p95_ms"], s["min_ms"]] for name, s in result["stages"].items()]
    title = f"per-stage time, one {result['frame']} frame, face {result['face_px']} px, {result['repeats']} runs"
    return [make_table(title, ["stage", "median ms", "p95 ms", "min ms"], rows)]
