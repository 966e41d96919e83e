"""`swapline bench scale`: how cost grows with the work (face size, image size, faces per frame).

Five measurements, each on real photos or clips made from them:
  swap + blend per face at several face widths (the working-scale compose keeps big faces cheap),
  as a feed's frame pays it and as a still's (which also looks for hands round the face);
  still detection (full-frame pass plus the fine pass where small faces may be) on photos up to 4K;
  tracking a 4K clip: frames in which one face was found twice (it would be swapped twice);
  faces per frame: the whole video job on 720p clips with 1/2/4/8 faces (fps, floor ratio, faces
  swapped per frame);
  frame size: the video job with one face at 720p/1080p/4K (floor ratio, peak RSS).

Video jobs (and their decode+encode floors) run in a fresh child process each, so the peak RSS is
the job's own and not the benchmark's.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.clips import make_clip, many_face_frames, write_clip
from swapline.bench.report import ProgressCallback, make_table, no_progress
from swapline.bench.speed import landmark_box, make_frame
from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, FaceAnalyser, FaceMeshLandmarker
from swapline.faces.detector import DetectorSettings, Pyramid
from swapline.faces.tracker import FaceTracker, TrackerSettings, overlap_of_smaller
from swapline.io import read_image
from swapline.settings import SwapSettings, VideoOptions
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
        frame = make_frame(target, landmark_box(target_faces[0]), face_px, size)
        faces = analyser.faces(frame)
        if not faces:
            continue
        face, work = faces[0], frame.copy()

        def swap(face=face, frame=frame, work=work) -> None:
            np.copyto(work, frame)
            swapper.swap(work, face, registered)

        width = float(np.ptp(face.landmarks[:, 0]))
        # a feed's frame: its HandTracker looked for hands (none here), the swap does not; a
        # still's: the swapper looks around the face itself
        ms = _median_ms(lambda face=face: swap(face.replace(hands=())), repeats)
        still = _median_ms(swap, repeats)
        rows.append(
            {"face_px": round(width), "median_ms": ms, "ms_per_100k_px": ms / (width * width / 1e5), "still_ms": still}
        )
    return rows


def _detect_rows(photo: np.ndarray, repeats: int) -> list[dict]:
    analyser = FaceAnalyser(detector=BlazeFaceDetector(settings=DetectorSettings(fine_pass=True)))
    detector = analyser.detector
    rows = []
    for width, height in ((1280, 720), (1920, 1080), (3840, 2160)):
        image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_LINEAR)
        region = detector.fine_region(Pyramid(image), detector._run_square(image)[0])
        fine = detector._fine_scale(height, width)
        covered = (region[2] - region[0]) * (region[3] - region[1]) if region else 0
        rows.append(
            {
                "image": f"{width}x{height}",
                "detect_ms": _median_ms(lambda image=image: detector.detect(image), repeats),
                # the floor: the full-frame pass alone, what detect costs when no fine pass is worth it
                "full_pass_ms": _median_ms(lambda image=image: detector._run_square(image), repeats),
                "faces": len(analyser.faces(image)),
                "fine_pass_share": covered / (width * height),
                "fine_px_per_input_px": fine,
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


def _peak_rss_mb() -> float:
    """This process's peak RSS since it started its program. Linux: VmHWM, which starts afresh at
    exec (ru_maxrss does not: a spawned child inherits the parent's peak at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # an upper bound: kB (bytes on macOS)
    return peak / (1 << 20 if sys.platform == "darwin" else 1 << 10)


def _children_peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / (1 << 20 if sys.platform == "darwin" else 1 << 10)


def _job_in_child(
    kind: str, source: str, video: str, workdir: str, settings: SwapSettings, options: VideoOptions
) -> dict:
    """Runs in a fresh process: the swap job ("swap") or the decode+encode floor ("floor")."""
    from swapline.bench.video import floor_run
    from swapline.io.video import probe
    from swapline.pipeline.video_job import VideoSwapJob
    from swapline.runtime.memory import tune_for_frames
    from swapline.session import SwapSession

    info = probe(Path(video))
    tune_for_frames(info.width, info.height)  # the floor under the job's allocator setting: a fair ratio
    if kind == "floor":
        seconds = floor_run(Path(video), options, Path(workdir))
        return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb()}
    session = SwapSession(settings)
    start = time.monotonic()
    report = VideoSwapJob(session, source, video, Path(workdir) / "swapped.mp4", options).run()
    seconds = time.monotonic() - start
    return {
        "seconds": seconds,
        "frames": report.frames,
        "faces_swapped_per_frame": report.faces_swapped_per_frame,
        "stages_ms": report.stages_ms,
        "peak_rss_mb": _peak_rss_mb(),
        # compose processes (VideoOptions.processes), on top of the above: the largest one's peak
        # (an upper bound: a spawned child's count starts from this process's at the fork)
        "worker_peak_rss_mb": _children_peak_rss_mb() if options.processes else 0.0,
    }


def measure_job(
    source: Path, video: Path, settings: SwapSettings | None = None, options: VideoOptions | None = None
) -> dict:
    """The swap job and its floor on one video, each in a spawned child: seconds, fps, ratio, peak RSS."""
    settings, options = settings or SwapSettings(), options or VideoOptions()
    runs = {}
    with tempfile.TemporaryDirectory() as workdir:
        for kind in ("floor", "swap"):
            # one child per run: ru_maxrss is the peak of that run alone (spawn: nothing inherited)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
                args = (kind, str(source), str(video), workdir, settings, options)
                runs[kind] = child.submit(_job_in_child, *args).result()
    swap, floor = runs["swap"], runs["floor"]
    return {
        "frames": swap["frames"],
        "fps": swap["frames"] / swap["seconds"],
        "floor_fps": swap["frames"] / floor["seconds"],
        "swap_over_floor": swap["seconds"] / floor["seconds"],
        "faces_swapped_per_frame": swap["faces_swapped_per_frame"],
        "stages_ms": swap["stages_ms"],
        "peak_rss_mb": swap["peak_rss_mb"],
        "worker_peak_rss_mb": swap["worker_peak_rss_mb"],
        "floor_peak_rss_mb": floor["peak_rss_mb"],
    }


def _face_box(photo: np.ndarray) -> np.ndarray:
    faces = FaceAnalyser().faces(photo)
    if not faces:
        raise SwaplineError("no face found in the target photo")
    return faces[0].box


def faces_per_frame_rows(
    source: Path,
    target: Path,
    counts=(1, 2, 4, 8),
    size=(1280, 720),
    seconds: float = 2.0,
    fps: float = 30.0,
    options: VideoOptions | None = None,
) -> list[dict]:
    """The whole video job on clips with `count` faces in a grid: every face must be swapped."""
    photo = read_image(target).pixels
    box = _face_box(photo)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for count in counts:
            clip = Path(folder) / f"faces{count}.mp4"
            write_clip(many_face_frames(photo, box, size, fps, seconds, count), clip, fps, size)
            rows.append({"faces": count, "size": f"{size[0]}x{size[1]}", **measure_job(source, clip, options=options)})
            clip.unlink()
    return rows


def frame_size_rows(
    source: Path,
    target: Path,
    sizes=((1280, 720), (1920, 1080), (3840, 2160)),
    seconds: float = 2.0,
    options: VideoOptions | None = None,
) -> list[dict]:
    """The video job with one face (a third of the frame's height) at each frame size."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for width, height in sizes:
            clip = make_clip(Path(target), Path(folder) / f"{height}p.mp4", (width, height), 30.0, seconds, height // 3)
            rows.append({"size": f"{width}x{height}", **measure_job(source, clip, options=options)})
            clip.unlink()
    return rows


def run_scale_bench(
    source: Path,
    target: Path,
    sizes=(200, 400, 800),
    repeats: int = 15,
    clip_seconds: float = 2.0,
    on_progress: ProgressCallback = no_progress,
    face_counts=(1, 2, 4, 8),
    frame_sizes=((1280, 720), (1920, 1080), (3840, 2160)),
    processes: int = 0,
) -> dict:
    """Per-face swap cost by face size, still detection by image size, 4K tracking duplicates,
    the video job by faces per frame and by frame size; with processes, both job tables again
    with compose in that many worker processes (VideoOptions.processes)."""
    source_image, target_image = read_image(source).pixels, read_image(target).pixels
    steps = 7 if processes else 5
    on_progress(0, steps)
    swap = _swap_rows(source_image, target_image, sizes, repeats)
    on_progress(1, steps)
    detect = _detect_rows(target_image, max(3, repeats // 5))
    on_progress(2, steps)
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(target), Path(folder) / "4k.mp4", (3840, 2160), 30.0, clip_seconds, 900)
        tracking = track_duplicates(clip)
    on_progress(3, steps)
    faces = faces_per_frame_rows(Path(source), Path(target), face_counts, seconds=clip_seconds)
    on_progress(4, steps)
    frames = frame_size_rows(Path(source), Path(target), frame_sizes, seconds=clip_seconds)
    on_progress(5, steps)
    in_processes = {}
    if processes:
        # longer clips: each job starts its worker processes (a second or two, models loaded)
        options, clip_seconds = VideoOptions(processes=processes), clip_seconds * 3
        in_processes = {
            "processes": processes,
            "clip_seconds": clip_seconds,
            "faces_per_frame": faces_per_frame_rows(
                Path(source), Path(target), face_counts, seconds=clip_seconds, options=options
            ),
        }
        on_progress(6, steps)
        in_processes["frame_size"] = frame_size_rows(Path(source), Path(target), frame_sizes, clip_seconds, options)
        on_progress(7, steps)
    names = {"source": Path(source).name, "target": Path(target).name}
    return {
        **names,
        "swap": swap,
        "detect": detect,
        "tracking_4k": tracking,
        "faces_per_frame": faces,
        "frame_size": frames,
        **({"in_processes": in_processes} if in_processes else {}),
    }


def _fine_pass_cell(row: dict) -> str:
    """What the still's second pass covered."""
    if not row["fine_pass_share"]:
        return "none"
    return f"{row['fine_pass_share']:.0%} of the frame at 1/{row['fine_px_per_input_px']:.1f}"


def scale_tables(result: dict) -> list:
    swap = [[r["face_px"], r["median_ms"], r["ms_per_100k_px"], r.get("still_ms", "")] for r in result["swap"]]
    detect = [
        [r["image"], r["detect_ms"], r.get("full_pass_ms", ""), r["faces"], _fine_pass_cell(r)]
        for r in result["detect"]
    ]
    t, processes = result["tracking_4k"], result.get("in_processes", {})
    detect_columns = ["image", "median ms", "full-frame pass ms"]
    return [
        make_table(
            "swap + blend per face (in a feed; a still also looks for hands)",
            ["face px", "median ms", "ms per 100k px", "a still's ms"],
            swap,
        ),
        make_table("still detection", [*detect_columns, "faces", "fine pass"], detect),
        make_table(
            "4K clip tracking",
            ["frames", "frames with a face found twice", "track ids", "most faces"],
            [[t["frames"], t["duplicate_frames"], t["track_ids"], t["most_faces"]]],
        ),
        *_job_tables(result),
        *_job_tables(
            processes, f", compose in {processes.get('processes')} processes, {processes.get('clip_seconds')} s clips"
        ),
    ]


def _job_tables(result: dict, how: str = "") -> list:
    tables = []
    if result.get("faces_per_frame"):
        rows = [
            [r["faces"], r["faces_swapped_per_frame"], r["fps"], r["floor_fps"], r["swap_over_floor"], r["peak_rss_mb"]]
            for r in result["faces_per_frame"]
        ]
        columns = ["faces", "swapped per frame", "fps", "floor fps", "swap / floor", "peak RSS MB"]
        tables.append(make_table(f"faces per frame ({result['faces_per_frame'][0]['size']}{how})", columns, rows))
    if result.get("frame_size"):
        rows = [
            [r["size"], r["fps"], r["floor_fps"], r["swap_over_floor"], r["peak_rss_mb"], r["floor_peak_rss_mb"]]
            for r in result["frame_size"]
        ]
        columns = ["frame", "fps", "floor fps", "swap / floor", "peak RSS MB", "floor peak RSS MB"]
        tables.append(make_table(f"frame size (one face{how})", columns, rows))
    return tables


__all__ = [
    "faces_per_frame_rows",
    "frame_size_rows",
    "many_face_frames",
    "measure_job",
    "run_scale_bench",
    "scale_tables",
    "track_duplicates",
]
