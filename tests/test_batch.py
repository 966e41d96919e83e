"""Batch jobs: outputs identical to single-process `swapline swap`, on the local pool and on Ray.

Ray tests skip when Ray is not installed; one Ray instance (on this machine) serves the module.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import av
import cv2
import numpy as np
import pytest

from swapline.batch import BatchJob, BatchOptions, ray_available
from swapline.batch.frames import Misplaced, chunk_frames, scan_frames
from swapline.batch.plan import chunk_video, output_name
from swapline.bench.clips import render_frames, write_clip
from swapline.errors import SwaplineError
from swapline.io.video import decode_frames, probe, read_video_provenance
from swapline.pipeline.image_job import swap_image_file
from swapline.pipeline.video_job import VideoSwapJob
from swapline.session import SwapSession
from swapline.settings import VideoOptions
from swapline.trust.watermark import Payload
from tests.conftest import DATA, load

SIZE = (320, 240)
FPS = 30.0
SOURCE = DATA / "obama.jpg"
VIDEO = VideoOptions(segment_frames=10)
CHUNK_SECONDS = 0.6  # two segments of 10 frames per chunk at 30 fps
STILLS = [DATA / "biden2.jpg", DATA / "obama2.jpg"]

# The CLI with `batch` added (a no-op once swapline/cli/parser.py registers it itself).
CLI = """
import sys
import swapline.cli.parser as parser
build = parser.build_parser
def with_batch():
    p = build()
    sub = p._subparsers._group_actions[0]
    if "batch" not in sub.choices:
        from swapline.cli.batch import register
        register(sub, sub.choices["bench"]._subparsers._group_actions[0])
    return p
parser.build_parser = with_batch
if "--no-ray" in sys.argv:  # as on a machine without Ray
    sys.argv.remove("--no-ray")
    sys.modules["ray"] = None
from swapline.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli(*args) -> list[str]:
    return [sys.executable, "-c", CLI, *map(str, args)]


@pytest.fixture(scope="module")
def session():
    return SwapSession()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, analyser):
    folder = tmp_path_factory.mktemp("batch_inputs")
    image = load("biden2.jpg")
    box = analyser.faces(image)[0].box

    def frames(seconds):
        return list(render_frames(image, box, SIZE, FPS, seconds, face_px=96))

    vfr_times = list(np.cumsum([0] + [0.02, 0.05] * 20)[:40])
    return {
        "talk": write_clip(frames(2.0), folder / "talk.mp4", FPS, SIZE, audio_hz=440, seconds=2.0),  # 3 chunks
        "vfr": write_clip(frames(40 / FPS), folder / "vfr.mp4", FPS, SIZE, times=vfr_times),  # 2 chunks
        "short": write_clip(frames(0.5), folder / "short.mkv", FPS, SIZE),  # 1 chunk, Matroska out
    }


@pytest.fixture(scope="module")
def expected(clips, session, tmp_path_factory):
    """What single-process `swapline swap` makes of every input."""
    folder = tmp_path_factory.mktemp("single_process")
    made = {"folder": folder}
    for clip in clips.values():
        made[clip.name] = VideoSwapJob(session, SOURCE, clip, folder / output_name(clip), VIDEO).run().output
    for still in STILLS:
        made[still.name] = swap_image_file(SOURCE, still, folder / still.name, session=session).output
    return made


@pytest.fixture(scope="module")
def ray_here():
    """One Ray on this machine for the module (the jobs use it and leave it running)."""
    if not ray_available():
        pytest.skip("ray is not installed")
    from swapline.batch.runners import RayRunner

    runner = RayRunner(None, workers=2, max_retries=3, ship_files=None)
    yield runner
    runner.close()


def decoded(path):
    with av.open(str(path)) as container:
        return [(f.pts, f.time, f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


def audio_packets(path):
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [(bytes(p), p.pts, p.dts) for p in container.demux(container.streams.audio[0]) if p.size]


def video_packets(path):
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def assert_same_video(made, reference):
    ours, theirs = decoded(made), decoded(reference)
    assert len(ours) == len(theirs) > 0
    assert [f[0] for f in ours] == [f[0] for f in theirs]  # timestamps
    assert [f[1] for f in ours] == [f[1] for f in theirs]
    different = [n for n, (a, b) in enumerate(zip(ours, theirs, strict=True)) if not np.array_equal(a[2], b[2])]
    assert not different, f"frames {different[:10]} differ"
    assert audio_packets(made) == audio_packets(reference)


def assert_same_still(made, reference):
    assert np.array_equal(cv2.imread(str(made)), cv2.imread(str(reference)))


def inputs_of(clips):
    return [clips["talk"], clips["vfr"], clips["short"], *STILLS]


def check_batch(report, out, clips, expected):
    assert not report.failed, [r.error for r in report.failed]
    chunks = {os.path.basename(r.input): r.chunks for r in report.inputs}
    assert chunks == {"talk.mp4": 3, "vfr.mp4": 2, "short.mkv": 1, "biden2.jpg": 1, "obama2.jpg": 1}
    for clip in clips.values():
        assert_same_video(out / output_name(clip), expected[clip.name])
    for still in STILLS:
        assert_same_still(out / still.name, expected[still.name])
    left = sorted(p.name for p in out.iterdir())
    assert left == sorted(p.name for p in expected["folder"].iterdir())  # outputs (and C2PA sidecars) only


def test_seeking_finds_exactly_the_planned_frames(clips):
    for name in ("talk", "vfr"):
        info = probe(clips[name])
        everything = list(decode_frames(info))
        chunks = chunk_video(clips[name], info, BatchOptions(video=VIDEO, chunk_seconds=CHUNK_SECONDS))
        assert len(chunks) > 1 and all(c.first_frame % VIDEO.segment_frames == 0 for c in chunks)
        found = [frame for chunk in chunks for frame in chunk_frames(info, chunk)]
        assert [(f.index, f.pts, f.time_s) for f in found] == [(f.index, f.pts, f.time_s) for f in everything]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(found, everything, strict=True))
    # a plan the container does not match is refused, never decoded into the wrong frames
    wrong = replace(chunks[1], frame_pts=tuple(p + 1 for p in chunks[1].frame_pts))
    with pytest.raises(Misplaced):
        list(chunk_frames(info, wrong))
    rescanned = [f.index for f in scan_frames(info, chunks[1])]
    assert rescanned == list(range(chunks[1].first_frame, chunks[1].first_frame + len(chunks[1].frame_pts)))


def test_pool_batch_equals_single_process_runs(clips, expected, session, tmp_path):
    seen = []
    options = BatchOptions(video=VIDEO, chunk_seconds=CHUNK_SECONDS, runner="pool", workers=2)
    report = BatchJob(session, SOURCE, inputs_of(clips), tmp_path, options).run(seen.append)
    check_batch(report, tmp_path, clips, expected)
    assert (
        report.runner == "process pool" and report.chunks == 8
    )  # 3 + 2 + 1 chunks, two stills in two groups (2 workers)
    assert seen[-1].chunks_done == seen[-1].chunks_total == 8 and seen[-1].frames_done == 60 + 40 + 15 + 2
    assert report.frames == 117 and report.fps > 0


def test_chunks_are_encoded_for_the_drivers_cores_not_the_workers(clips, session, tmp_path, monkeypatch):
    """x264's output follows its thread count, which follows the cores: a driver on 6 cores makes
    what a single run on 6 cores makes, whatever the cores of the machine its workers run on."""
    six = replace(VIDEO, encoder_cores=6)
    single = VideoSwapJob(session, SOURCE, clips["talk"], tmp_path / "single6.mp4", six).run().output
    here = VideoSwapJob(session, SOURCE, clips["talk"], tmp_path / "single.mp4", VIDEO).run().output
    assert video_packets(single) != video_packets(here)  # x264 writes its thread count into every segment
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(os, "cpu_count", lambda: 6)  # the driver's machine; spawned workers see their own
    options = BatchOptions(video=VIDEO, chunk_seconds=CHUNK_SECONDS, runner="pool", workers=2)
    report = BatchJob(session, SOURCE, [clips["talk"]], out, options).run()
    assert not report.failed and report.chunks == 3
    assert_same_video(out / "talk.mp4", single)
    assert video_packets(out / "talk.mp4") == video_packets(single)


def test_killed_worker_in_the_pool_is_replaced_and_its_chunk_redone(clips, expected, session, tmp_path):
    marker = tmp_path / "crashed"
    out = tmp_path / "out"
    out.mkdir()
    options = BatchOptions(video=VIDEO, chunk_seconds=CHUNK_SECONDS, runner="pool", workers=2, crash_once_marker=marker)
    report = BatchJob(session, SOURCE, [clips["talk"]], out, options).run()
    assert marker.exists() and report.retries >= 1  # a worker died mid-chunk...
    assert not report.failed
    assert_same_video(out / "talk.mp4", expected["talk.mp4"])  # ...and nothing shows


def test_ray_batch_equals_single_process_runs(ray_here, clips, expected, session, tmp_path):
    # ship_files: inputs travel through the object store, as to a cluster without shared files
    options = BatchOptions(video=VIDEO, chunk_seconds=CHUNK_SECONDS, runner="ray", ship_files=True)
    report = BatchJob(session, SOURCE, inputs_of(clips), tmp_path, options).run()
    check_batch(report, tmp_path, clips, expected)
    assert report.runner == "ray (local)" and report.workers == 2


def test_killed_ray_worker_is_retried_with_the_same_result(ray_here, clips, expected, session, tmp_path):
    marker = tmp_path / "crashed"
    out = tmp_path / "out"
    out.mkdir()
    options = BatchOptions(video=VIDEO, chunk_seconds=CHUNK_SECONDS, runner="ray", crash_once_marker=marker)
    report = BatchJob(session, SOURCE, [clips["talk"]], out, options).run()
    assert marker.exists()  # a worker process died mid-chunk (os._exit), and Ray ran the chunk again
    assert not report.failed
    assert_same_video(out / "talk.mp4", expected["talk.mp4"])


def test_killed_driver_resumes_with_identical_output(clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = ["batch", "-s", SOURCE, clips["talk"], "-o", out, "--segment-frames", "10", "--chunk-seconds", "0.3"]
    args += ["--workers", "1", "--json"]
    driver = subprocess.Popen(
        cli(*args, "--runner", "pool"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    manifest = out / ".talk.mp4.swapline-parts" / "manifest.json"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            with_segments = json.loads(manifest.read_text())["segments"] if manifest.exists() else {}
            if len(with_segments) >= 2:
                break
            time.sleep(0.02)
        os.kill(driver.pid, signal.SIGKILL)  # the driver dies: no cleanup of any kind
        driver.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # its orphaned worker, in the session started for it
    assert not (out / "talk.mp4").exists()  # complete or not at all
    # the rerun, here on a machine without Ray: the same chunks run on the pool, said once
    result = subprocess.run(cli(*args, "--no-ray"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Ray is not installed") == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["runner"] == "process pool" and report["resumed_chunks"] >= 2 and report["chunks"] == 6
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no work folder or temporary left
    # every frame carries the first run's job id in its invisible mark, as the provenance says:
    # the same output as one uninterrupted single-process run with that job id
    job_id = read_video_provenance(out / "talk.mp4")["mark"]["job_id"]
    single = SwapSession()
    single.mark_payload = Payload(job_id=job_id)
    reference = VideoSwapJob(single, SOURCE, clips["talk"], tmp_path / "single.mp4", VIDEO).run().output
    assert_same_video(out / "talk.mp4", reference)


def test_errors_name_the_input_and_spare_the_rest(clips, session, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    twin = tmp_path / "elsewhere" / STILLS[0].name
    twin.parent.mkdir()
    twin.write_bytes(STILLS[0].read_bytes())
    with pytest.raises(SwaplineError, match="would both be written"):
        BatchJob(session, SOURCE, [STILLS[0], twin], out)
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    with pytest.raises(SwaplineError, match="neither a video nor an image"):
        BatchJob(session, SOURCE, [notes], out)
    options = BatchOptions(video=VIDEO, runner="pool", workers=1)
    report = BatchJob(session, SOURCE, [blank, clips["short"]], out, options).run()
    (failed,) = report.failed
    assert failed.input == str(blank) and "no face found" in failed.error
    assert (out / "short.mkv").exists() and not (out / "blank.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
