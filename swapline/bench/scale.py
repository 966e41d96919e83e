"""`swapline bench scale`: how cost grows with the work (face size, image size, faces per frame).

Three measurements, each on real photos or clips made from them:
  swap + blend per face at several face widths (the working-scale compose keeps big faces cheap);
  still detection (full-frame pass plus the tiles worth scanning) on photos up to 4K;
  tracking a 4K clip: frames in which one face was found twice (it would be swapped twice).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.clips import make_clip, many_face_frames  # noqa: F401 (re-exported)
from swapline.bench.report import ProgressCallback, make_table, no_progress
from swapline.bench.speed import make_frame
from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, FaceAnalyser, FaceMeshLandmarker
from swapline.faces.detector import DetectorSettings
from swapline.faces.tracker import FaceTracker, TrackerSettings, overlap_of_smaller
from swapline.io import read_image
from swapline.swap import MeshSwapper


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(samples))


def _swap_rows(source: np.ndarray, target: np.ndarray, sizes, repeats: int) -> list[dict]:
    analyser = FaceAnalyser()
    swapper = MeshSwapper()
    source_faces, target_faces = analyser.faces(source), analyser.faces(target)
    if not source_faces or not target_faces:
        raise SwaplineError("no face found in the source or target photo")
    registered = swapper.register(source, source_faces[0])
    rows = []
    for face_px in sizes:
        size = (max(640, round(face_px * 2.2) // 2 * 2), max(480, round(face_px * 1.8) // 2 * 2))
        frame = make_frame(target, target_faces[0].box, face_px, size)
        faces = analyser.faces(frame)
        if not faces:
            continue
        face, work = faces[0], frame.copy()

        def swap(face=face, frame=frame, work=work) -> None:
            np.copyto(work, frame)
            swapper.swap(work, face, registered)

        width = float(np.ptp(face.landmarks[:, 0]))
        ms = _median_ms(swap, repeats)
        rows.append({"face_px": round(width), "median_ms": ms, "ms_per_100k_px": ms / (width * width / 1e5)})
    return rows


def _detect_rows(photo: np.ndarray, repeats: int) -> list[dict]:
    analyser = FaceAnalyser(detector=BlazeFaceDetector(settings=DetectorSettings(tiles=True)))
    detector = analyser.detector
    rows = []
    for width, height in ((1280, 720), (1920, 1080), (3840, 2160)):
        image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_LINEAR)
        boxes = detector._run_square(image)[0]
        rows.append(
            {
                "image": f"{width}x{height}",
                "detect_ms": _median_ms(lambda image=image: detector.detect(image), repeats),
                "faces": len(analyser.faces(image)),
                "tiles_scanned": len(detector._tiles_to_scan(image, boxes)),
                "tiles_all": len(detector._tiles(height, width)),
            }
        )
    return rows


def track_duplicates(clip: Path, max_faces: int = 4) -> dict:
    """Track a clip; count frames where two found faces overlap (one face found twice)."""
    from swapline.io.video import decode_frames, probe

    tracker = FaceTracker(
        BlazeFaceDetector("full"), FaceMeshLandmarker(), TrackerSettings(max_faces=max_faces, redetect_interval=5)
    )
    frames = duplicates = most = 0
    ids: set[int] = set()
    for frame in decode_frames(probe(clip)):
        faces = tracker.update(frame.image)
        frames += 1
        most = max(most, len(faces))
        ids.update(f.track_id for f in faces)
        for i, face in enumerate(faces[1:], start=1):
            others = np.stack([f.box for f in faces[:i]])
            if float(overlap_of_smaller(face.box, others).max()) > 0.5:
                duplicates += 1
                break
    return {"frames": frames, "duplicate_frames": duplicates, "track_ids": len(ids), "most_faces": most}


def run_scale_bench(
    source: Path,
    target: Path,
    sizes=(200, 400, 800),
    repeats: int = 15,
    clip_seconds: float = 2.0,
    on_progress: ProgressCallback = no_progress,
) -> dict:
    """Per-face swap cost by face size, still detection by image size, 4K tracking duplicates."""
    source_image, target_image = read_image(source).pixels, read_image(target).pixels
    on_progress(0, 3)
    swap = _swap_rows(source_image, target_image, sizes, repeats)
    on_progress(1, 3)
    detect = _detect_rows(target_image, max(3, repeats // 5))
    on_progress(2, 3)
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(target), Path(folder) / "4k.mp4", (3840, 2160), 30.0, clip_seconds, 900)
        tracking = track_duplicates(clip)
    on_progress(3, 3)
    names = {"source": Path(source).name, "target": Path(target).name}
    return {**names, "swap": swap, "detect": detect, "tracking_4k": tracking}


def scale_tables(result: dict) -> list:
    swap = [[r["face_px"], r["median_ms"], r["ms_per_100k_px"]] for r in result["swap"]]
    detect = [
        [r["image"], r["detect_ms"], r["faces"], f"{r['tiles_scanned']}/{r['tiles_all']}"] for r in result["detect"]
    ]
    t = result["tracking_4k"]
    return [
        make_table("swap + blend per face", ["face px", "median ms", "ms per 100k px"], swap),
        make_table("still detection (tiles)", ["image", "median ms", "faces", "tiles scanned"], detect),
        make_table(
            "4K clip tracking",
            ["frames", "frames with a face found twice", "track ids", "most faces"],
            [[t["frames"], t["duplicate_frames"], t["track_ids"], t["most_faces"]]],
        ),
    ]


__all__ = ["many_face_frames", "run_scale_bench", "scale_tables", "track_duplicates"]
