"""`swapline bench video`: swap throughput against the decode+encode floor, and landmark jitter.

- throughput: the whole video job (decode, track, swap, label, encode, join with audio) in fps;
- floor: decode and encode the same video with the same encoder settings, no processing;
- ratio: swap time / floor time;
- stability: on a clip of a still head, the mean frame-to-frame movement of FaceMesh landmarks
  measured on the output, against the same measure on the input (pixels).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from swapline.bench.clips import make_clip
from swapline.bench.report import make_table
from swapline.faces import BlazeFaceDetector, FaceMeshLandmarker, FaceTracker
from swapline.io.atomic import atomic_output
from swapline.io.video import SegmentWriter, decode_frames, join_segments, probe
from swapline.pipeline.video_job import VideoSwapJob
from swapline.session import SwapSession
from swapline.settings import SwapSettings, VideoOptions


def floor_run(video: Path, options: VideoOptions, workdir: Path) -> float:
    """Seconds to decode and re-encode the video (and join its audio) with no processing."""
    info = probe(video)
    start = time.monotonic()
    segment = workdir / "floor_segment.mp4"
    writer = SegmentWriter(segment, info, options.crf, options.preset, options.encoder_cores)
    for frame in decode_frames(info):
        writer.write(frame.image, frame.pts)
    writer.close()
    output = workdir / "floor.mp4"
    with atomic_output(output) as tmp:
        join_segments([segment], info, output, tmp)
    return time.monotonic() - start


def landmark_jitter(video: Path) -> float:
    """Mean frame-to-frame landmark movement (px) of the largest tracked face."""
    tracker = FaceTracker(BlazeFaceDetector("full"), FaceMeshLandmarker())
    previous, steps = None, []
    for frame in decode_frames(probe(video)):
        faces = tracker.update(frame.image)
        if not faces:
            previous = None
            continue
        current = faces[0].landmarks[:, :2]
        if previous is not None:
            steps.append(float(np.linalg.norm(current - previous, axis=1).mean()))
        previous = current
    return float(np.mean(steps)) if steps else float("nan")


def run_video_bench(
    source: Path,
    video: Path,
    settings: SwapSettings | None = None,
    options: VideoOptions | None = None,
    still_photo: Path | None = None,
    still_seconds: float = 4.0,
) -> dict:
    options = options or VideoOptions()
    session = SwapSession(settings)
    info = probe(video)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        floor_s = floor_run(video, options, workdir)
        start = time.monotonic()
        report = VideoSwapJob(session, source, video, workdir / "swapped.mp4", options).run()
        swap_s = time.monotonic() - start
        result = {
            "input": {
                "video": Path(video).name,
                "width": info.width,
                "height": info.height,
                "fps": info.fps,
                "frames": report.frames,
                "preset": options.preset,
                "crf": options.crf,
            },
            "swap": {
                "seconds": round(swap_s, 3),
                "fps": round(report.frames / swap_s, 2),
                "stages_ms": report.stages_ms,
                "faces_swapped_per_frame": report.faces_swapped_per_frame,
            },
            "floor": {"seconds": round(floor_s, 3), "fps": round(report.frames / floor_s, 2)},
            "swap_over_floor": round(swap_s / floor_s, 2),
        }
        if still_photo is not None:
            still = make_clip(
                still_photo,
                workdir / "still.mp4",
                (info.width, info.height),
                info.fps,
                still_seconds,
                face_px=round(info.height * 0.36),
                motion=0.0,
            )
            still_out = workdir / "still_swapped.mp4"
            VideoSwapJob(session, source, still, still_out, options).run()
            jitter_in, jitter_out = landmark_jitter(still), landmark_jitter(still_out)
            result["stability"] = {
                "clip": f"still head from {Path(still_photo).name}, {still_seconds:g} s",
                "input_jitter_px": round(jitter_in, 3),
                "output_jitter_px": round(jitter_out, 3),
                "difference_px": round(jitter_out - jitter_in, 3),
            }
    return result


def video_tables(result: dict) -> list:
    inp = result["input"]
    rows = [
        ["swap (whole job)", result["swap"]["seconds"], result["swap"]["fps"]],
        ["floor (decode + encode)", result["floor"]["seconds"], result["floor"]["fps"]],
    ]
    title = f"{inp['width']}x{inp['height']} {inp['fps']:g} fps, {inp['frames']} frames, preset {inp['preset']}"
    tables: list = [make_table(title, ["run", "seconds", "fps"], rows)]
    tables.append(f"swap / floor time: {result['swap_over_floor']}  per-frame stages ms: {result['swap']['stages_ms']}")
    if "stability" in result:
        st = result["stability"]
        tables.append(f"jitter on a still head: input {st['input_jitter_px']} px, output {st['output_jitter_px']} px")
    return tables
