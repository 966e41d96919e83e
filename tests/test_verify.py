"""`swapline verify` on real outputs: label, invisible mark and C2PA, before and after re-encoding."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import pytest

from swapline.bench.clips import make_clip
from tests.conftest import DATA

pytest.importorskip("c2pa")


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swapline", *map(str, args)], capture_output=True, text=True)


def verify(path: Path) -> tuple[int, dict]:
    result = run("verify", path, "--json")
    assert result.returncode in (0, 2), result.stderr
    return result.returncode, json.loads(result.stdout)["files"][0]


def reencode(src: Path, dst: Path, crf: int, scale: float) -> Path:
    """H.264 at this CRF and size, as a platform would re-encode an upload (no metadata kept)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        rate = inp.streams.video[0].average_rate or 30
        stream = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1000))
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.pix_fmt = "yuv420p"
        first = True
        for frame in inp.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
            if first:
                stream.width, stream.height, first = image.shape[1], image.shape[0], False
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(DATA / "biden2.jpg", tmp_path_factory.mktemp("verify") / "clip.mp4", seconds=1.5)


@pytest.fixture(scope="module")
def clip720(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("verify720")
    return make_clip(DATA / "biden2.jpg", folder / "clip.mp4", (1280, 720), seconds=1.5, face_px=260)


def test_an_image_output_proves_itself_before_and_after_jpeg_and_resize(tmp_path):
    out = tmp_path / "out.jpg"
    assert run("swap", "-s", DATA / "obama.jpg", "-t", DATA / "biden2.jpg", "-o", out).returncode == 0
    code, report = verify(out)
    assert code == 0 and report["label"]["found"] and report["mark"]["payload"]["tool"] == "swapline"
    assert report["credentials"]["state"] == "valid" and report["credentials"]["ai_generated"]
    image = cv2.imread(str(out))
    half = tmp_path / "half.jpg"
    cv2.imwrite(
        str(half), cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 75]
    )
    code, report = verify(half)
    assert code == 0 and report["mark"]["payload"] == verify(out)[1]["mark"]["payload"]
    assert report["credentials"]["state"] == "absent"  # re-saving drops the manifest; the mark stays


def test_a_video_output_and_a_live_recording_prove_themselves_after_h264(clip, clip720, tmp_path):
    out = tmp_path / "out.mp4"
    assert run("swap", "-s", DATA / "obama.jpg", "-t", clip720, "-o", out).returncode == 0
    code, report = verify(out)
    assert code == 0 and report["kind"] == "video" and report["label"]["found"]
    payload = report["mark"]["payload"]
    assert payload is not None and report["credentials"]["state"] == "valid"
    code, report = verify(reencode(out, tmp_path / "crf28.mp4", 28, 1.0))  # re-encoded: still marked
    mark = report["mark"]
    assert code == 0 and mark is not None and mark["confidence"] > mark["threshold"]
    assert mark["payload"] in (payload, None)  # read in most runs (BENCHMARKS: 89/90 frames); never misread
    assert report["credentials"]["state"] == "absent"
    # (a video halved AND re-encoded is near the mark's limit: detected in some runs, not all, so it is
    # not asserted; the 50% resize is asserted on images above)

    rec = tmp_path / "rec.mp4"
    live = run("live", "-s", DATA / "obama.jpg", "--input", clip, "--sink", rec, "--max-latency-ms", "10000")
    assert live.returncode == 0, live.stderr
    code, report = verify(rec)
    assert code == 0 and report["mark"] is not None and report["credentials"]["state"] == "valid"


def test_unmarked_files_exit_2_and_bad_files_exit_1(clip, tmp_path):
    code, report = verify(DATA / "biden2.jpg")
    assert code == 2 and not report["label"]["found"] and report["mark"] is None
    assert report["credentials"]["state"] == "absent"
    code, report = verify(clip)
    assert code == 2 and report["mark"] is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    result = run("verify", broken)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
