"""Video files end to end, on clips the suite makes from the test photos."""

import json
import os
import signal
import subprocess
import sys
import time

import av
import cv2
import numpy as np
import pytest

from swapline.bench.clips import render_frames, two_face_frames, write_clip
from swapline.trust import has_label
from tests.conftest import DATA, load

SIZE = (320, 240)
FPS = 30.0


@pytest.fixture(scope="module")
def biden(analyser):
    image = load("biden2.jpg")
    return image, analyser.faces(image)[0].box


@pytest.fixture(scope="module")
def clips(tmp_path_factory, biden, analyser):
    """name -> path of each test clip, made once for the module."""
    folder = tmp_path_factory.mktemp("clips")
    image, box = biden

    def frames(seconds, size=SIZE, motion=1.0):
        return list(render_frames(image, box, size, FPS, seconds, face_px=size[1] * 0.4, motion=motion))

    made = {
        "audio": write_clip(frames(2.0), folder / "audio.mp4", FPS, SIZE, audio_hz=440, seconds=2.0),
        "silent": write_clip(frames(1.0), folder / "silent.mkv", FPS, SIZE),
        "odd": write_clip(frames(1.0, (321, 241)), folder / "odd.mp4", FPS, (321, 241), pix_fmt="yuv444p"),
        "rotated": write_clip(frames(1.0, (240, 320)), folder / "rotated.mp4", FPS, (240, 320), rotation=90),
        "vfr": write_clip(
            frames(1.0), folder / "vfr.mp4", FPS, SIZE, times=list(np.cumsum([0] + [0.02, 0.05] * 15)[:30])
        ),
        "truncate_me": write_clip(frames(2.0), folder / "full.mp4", FPS, SIZE, faststart=True),
        "long": write_clip(frames(4.0), folder / "long.mp4", FPS, SIZE, audio_hz=330, seconds=4.0),
    }
    obama = load("obama.jpg")
    two = list(two_face_frames(obama, analyser.faces(obama)[0].box, image, box, (480, 240), FPS, 1.0))
    made["two"] = write_clip(two, folder / "two.mp4", FPS, (480, 240))
    for suffix in ("mov", "webm", "avi"):
        made[suffix] = write_clip(frames(0.5), folder / f"clip.{suffix}", FPS, SIZE, audio_hz=440, seconds=0.5)
    return made


def run(*args, **kwargs):
    cmd = [sys.executable, "-m", "swapline", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def swap(clip, out, *extra, source="obama.jpg"):
    result = run("swap", "-s", DATA / source, "-t", clip, "-o", out, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def frames_of(path):
    with av.open(str(path)) as container:
        return [(f.pts, f.time, f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


def audio_packets(path, exact=True):
    """Audio packets: bytes and timestamps (exact ticks; or, across containers, seconds to the
    ms from the first packet, since Matroska shifts AAC's negative priming offset to zero)."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.audio[0]) if p.size]
        if exact:
            return [(bytes(p), p.pts, p.dts) for p in packets]
        start = float(packets[0].pts * packets[0].time_base)
        return [bytes(p) for p in packets], np.array([float(p.pts * p.time_base) - start for p in packets])


def test_audio_is_copied_and_timestamps_kept(clips, tmp_path):
    out = tmp_path / "out.mp4"
    report = swap(clips["audio"], out, "--segment-frames", "25")
    assert report["segments"] == 3 and report["frames"] == 60 and report["dropped"] == 0
    assert audio_packets(out) == audio_packets(clips["audio"])
    original, swapped = frames_of(clips["audio"]), frames_of(out)
    assert [f[0] for f in swapped] == [f[0] for f in original]
    assert all(has_label(f[2]) for f in swapped[::6])
    centre = np.s_[80:160, 120:200]
    assert np.abs(swapped[30][2][centre].astype(int) - original[30][2][centre].astype(int)).mean() > 8
    assert not list(tmp_path.glob(".*"))  # no work folder or temporary file left behind


def test_variable_frame_rate_is_kept(clips, tmp_path):
    out = tmp_path / "vfr_out.mp4"
    swap(clips["vfr"], out)
    times_in = [round(f[1], 4) for f in frames_of(clips["vfr"])]
    times_out = [round(f[1], 4) for f in frames_of(out)]
    assert times_out == times_in
    assert len(set(np.round(np.diff(times_in), 3))) == 2  # really variable


def test_rotated_input_comes_out_upright(clips, tmp_path, analyser):
    out = tmp_path / "rot_out.mp4"
    swap(clips["rotated"], out)
    with av.open(str(out)) as container:
        first = next(container.decode(video=0))
    assert (first.width, first.height) == (240, 320) and not first.rotation
    faces = analyser.faces(first.to_ndarray(format="bgr24"))
    assert faces and faces[0].keypoints[0, 1] < faces[0].keypoints[3, 1]  # eyes above the mouth


@pytest.mark.parametrize("extra", [(), ("--processes", "2")], ids=["threads", "processes"])
def test_odd_size_is_padded_to_even(clips, tmp_path, extra):
    out = tmp_path / "odd_out.mp4"
    report = swap(clips["odd"], out, *extra)
    swapped = frames_of(out)
    assert swapped[0][2].shape[:2] == (242, 322) and len(swapped) == report["frames"] == 30
    assert has_label(swapped[0][2][:241, :321])


def test_silent_mkv_and_frames_without_faces(clips, tmp_path):
    out = tmp_path / "silent_out.mp4"
    report = swap(clips["silent"], out)
    with av.open(str(out)) as container:
        assert not container.streams.audio
    assert report["frames"] == 30
    blank = write_clip([np.full((240, 320, 3), 90, np.uint8)] * 10, tmp_path / "blank.mp4", FPS, SIZE)
    report = swap(blank, tmp_path / "blank_out.mp4")
    assert report["frames_with_faces"] == 0 and report["frames"] == 10
    assert all(has_label(f[2]) for f in frames_of(tmp_path / "blank_out.mp4"))


@pytest.mark.parametrize("suffix", ["mov", "webm", "avi"])
def test_input_containers(clips, tmp_path, suffix):
    out = tmp_path / f"{suffix}_out.mkv"
    report = swap(clips[suffix], out)
    assert report["frames"] == len(frames_of(clips[suffix])) == len(frames_of(out))
    data_out, times_out = audio_packets(out, exact=False)
    data_in, times_in = audio_packets(clips[suffix], exact=False)
    assert data_out == data_in and np.allclose(times_out, times_in, atol=0.0015)  # Matroska keeps ms


def test_reference_mode_swaps_only_the_reference_person(clips, tmp_path):
    out = tmp_path / "ref_out.mp4"
    swap(clips["two"], out, "--faces", "reference", "--reference", DATA / "obama2.jpg", source="astronaut.png")
    original, swapped = frames_of(clips["two"]), frames_of(out)
    left, right = np.s_[60:180, 60:180], np.s_[60:180, 300:420]  # Obama's face, Biden's face
    for index in (5, 20):
        before, after = original[index][2].astype(int), swapped[index][2].astype(int)
        changed_left = np.abs(after[left] - before[left]).mean()
        changed_right = np.abs(after[right] - before[right]).mean()  # re-encoding noise only
        assert changed_left > 8 and changed_right < 6 and changed_left > 3 * changed_right


def test_truncated_input_names_the_last_good_time(clips, tmp_path):
    data = clips["truncate_me"].read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out.mp4"
    result = run("swap", "-s", DATA / "obama.jpg", "-t", broken, "-o", out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated: the last good frame is at" in lines[0] and str(broken) in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))


def test_killed_job_resumes_and_matches_an_uninterrupted_run(clips, tmp_path):
    clean = tmp_path / "clean.mp4"
    swap(clips["long"], clean, "--segment-frames", "20")
    out = tmp_path / "resumed.mp4"
    args = ["swap", "-s", DATA / "obama.jpg", "-t", clips["long"], "-o", out, "--segment-frames", "20", "--json"]
    process = subprocess.Popen([sys.executable, "-m", "swapline", *map(str, args)], stdout=subprocess.PIPE)
    manifest = tmp_path / ".resumed.mp4.swapline-parts" / "manifest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = json.loads(manifest.read_text())["segments"] if manifest.exists() else {}
        if len(done) >= 2 or process.poll() is not None:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)  # a crash or power loss: no chance to clean up
    process.wait()
    assert not out.exists()
    report = swap(clips["long"], out, "--segment-frames", "20")
    assert report["resumed_segments"] >= 2
    assert len(frames_of(out)) == len(frames_of(clean)) == 120
    assert audio_packets(out) == audio_packets(clean) == audio_packets(clips["long"])
    assert not list(tmp_path.glob(".resumed*"))


def test_audio_longer_than_video_is_not_truncation(tmp_path, biden):
    image, box = biden
    frames = list(render_frames(image, box, SIZE, FPS, 1.0, face_px=96))
    clip = write_clip(frames, tmp_path / "long_audio.mkv", FPS, SIZE, audio_hz=440, seconds=1.4)
    report = swap(clip, tmp_path / "out.mp4")
    assert report["frames"] == 30


def test_video_errors_are_one_line(clips, tmp_path):
    cases = [
        (["-t", clips["audio"], "-o", tmp_path / "a.mp4", "--segment-frames", "0"], "segment frames must be"),
        (["-t", clips["audio"], "-o", tmp_path / "b.mp4", "--preset", "fastest"], "preset must be one of"),
        (["-t", clips["audio"], "-o", tmp_path / "x.gif"], "unsupported output format"),
        (["-t", clips["audio"], "-o", clips["audio"]], "would overwrite an input"),
        (["-t", clips["two"], "-o", tmp_path / "y.mp4", "--faces", "reference"], "needs a reference photo"),
        (["-t", DATA / "missing.mp4", "-o", tmp_path / "z.mp4"], "no such file"),
    ]
    for extra, message in cases:
        result = run("swap", "-s", DATA / "obama.jpg", *extra)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and message in lines[0], (extra, result.stderr)


def test_x264_runs_at_avx2_where_the_cpu_has_avx512():
    """x264's AVX-512 code made the same pictures encode to different bytes from run to run
    (batch outputs then differed from a single run's); its AVX2 level does not."""
    from swapline.io.video import X264_AVX512, x264_options

    full = tuple((name, True) for name in X264_AVX512)
    assert x264_options(full) == {"x264-params": "asm=AVX2"}
    assert x264_options((*full[:-1], (X264_AVX512[-1], False))) == {}  # x264 needs all five
    assert x264_options((("AVX2", True),)) == {}  # left to x264's own choice


def _x264_threading(path) -> dict[str, str]:
    """The thread settings x264 wrote into its stream's SEI (its options, as text)."""
    data = path.read_bytes()
    start = data.find(b"x264 - core")
    assert start >= 0, f"{path}: no x264 SEI"
    words = data[start : start + 2000].split(b" ")
    wanted = (b"threads=", b"sliced_threads=")
    return dict(w.decode().split("=", 1) for w in words if w.startswith(wanted))


@pytest.mark.parametrize("size", [(320, 240), (3840, 2160)])
def test_x264_threads_follow_the_cores_given_not_this_machines(tmp_path, size):
    """x264's output follows its thread count: a batch tells every node the driver's cores."""
    from fractions import Fraction

    from swapline.io.video import SegmentWriter, VideoInfo, encoder_threads

    info = VideoInfo(
        path=tmp_path / "in.mp4",
        width=size[0],
        height=size[1],
        rotation=0,
        fps=FPS,
        time_base=Fraction(1, 15360),
        frames=2,
        duration_s=2 / FPS,
        audio_streams=0,
    )
    picture = cv2.resize(load("biden2.jpg"), size)
    for cores in (3, 7):
        path = tmp_path / f"{size[0]}-{cores}.mp4"
        writer = SegmentWriter(path, info, 20, "ultrafast", cores=cores)
        for index in range(2):
            writer.write(np.roll(picture, index * 4, axis=1), index * 512)
        writer.close()
        frame_threads = encoder_threads(*size, cores=cores)
        if frame_threads > 1:  # small frames: x264's own count, 1.5 a core
            assert _x264_threading(path) == {"threads": str(cores * 3 // 2), "sliced_threads": "0"}
        else:  # 4K: slice threads, one per core
            assert _x264_threading(path) == {"threads": str(cores), "sliced_threads": "1"}
