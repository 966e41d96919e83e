"""The three modes (still, video file, live) behave alike: same options, same errors, same faces.

Every test here runs the real `swapline` command on the test photos and on clips the suite
encodes from them. The two-face clip is made from obama_and_biden.jpg: Obama's face, large, in
the left half and Biden's face, smaller, in the right half, so `all`, `largest` and
`reference` (Biden) each pick a different set of faces.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from swapline.bench.clips import face_frame_matrix, write_clip
from swapline.io import read_image, read_provenance
from tests.conftest import DATA

SOURCE = DATA / "astronaut.png"  # a face unlike both targets: a swap is plain to see
GROUP = DATA / "obama_and_biden.jpg"
CLIP_SIZE = (480, 240)
CLIP_FPS = 30.0
OBAMA_PX, BIDEN_PX = 120, 84  # face widths in the clip: Obama is clearly the largest face
MODES = ("image", "video", "live")


# -- the two-face clip -----------------------------------------------------------------------------


def group_faces(analyser) -> dict[str, np.ndarray]:
    """Detector boxes of the people in obama_and_biden.jpg, by name (Biden stands on the left)."""
    faces = analyser.faces(read_image(GROUP).pixels)
    grown_ups = sorted((f for f in faces if f.box[1] < 500), key=lambda f: f.box[0])  # the girl is lower down
    assert len(grown_ups) == 2, [f.box for f in faces]
    return {"biden": grown_ups[0].box, "obama": grown_ups[1].box}


def two_face_frames(analyser, seconds: float = 1.0, fps: float = CLIP_FPS) -> list[np.ndarray]:
    """Frames cut from obama_and_biden.jpg: Obama (large) left, Biden (small) right, swaying a little."""
    photo = read_image(GROUP).pixels
    boxes = group_faces(analyser)
    half = (CLIP_SIZE[0] // 2, CLIP_SIZE[1])
    frames = []
    for index in range(int(round(seconds * fps))):
        t = index / fps
        parts = [
            cv2.warpAffine(
                photo, face_frame_matrix(boxes[who], half, px, t, 0.3), half, borderMode=cv2.BORDER_REPLICATE
            )
            for who, px in (("obama", OBAMA_PX), ("biden", BIDEN_PX))
        ]
        frames.append(np.ascontiguousarray(np.concatenate(parts, axis=1)))
    return frames


# Centres of the faces' inner regions in the clip (the faces sway by ~10 px at most). A swapped
# face changes there by ~20 grey levels on average; two rounds of H.264 alone by 3-5.
OBAMA_REGION = np.s_[80:160, 80:160]
BIDEN_REGION = np.s_[95:150, 340:395]


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def change(after: np.ndarray, before: np.ndarray, region) -> float:
    return float(np.abs(after[region].astype(int) - before[region].astype(int)).mean())


@pytest.fixture(scope="module")
def clip(tmp_path_factory, analyser) -> Path:
    folder = tmp_path_factory.mktemp("two_faces")
    return write_clip(two_face_frames(analyser), folder / "two.mp4", CLIP_FPS, CLIP_SIZE)


@pytest.fixture(scope="module")
def clip_frames(clip) -> list[np.ndarray]:
    frames = decode(clip)
    assert len(frames) == 30
    return frames


# -- running the command -----------------------------------------------------------------------


def command(*args) -> list[str]:
    return [sys.executable, "-m", "swapline", *map(str, args)]


def run(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout)


def mode_command(mode: str, clip: Path, out: Path, *extra) -> list:
    """The same swap in each mode, written to `out` (live: a video stands in for the camera).

    "-v" in extra (log model loading and providers) is a top-level option: it goes first.
    """
    verbose = ["-v"] if "-v" in extra else []
    extra = [e for e in extra if e != "-v"]
    if mode == "image":
        return [*verbose, "swap", "-s", SOURCE, "-t", GROUP, "-o", out, "--json", *extra]
    if mode == "video":
        return [*verbose, "swap", "-s", SOURCE, "-t", clip, "-o", out, "--json", *extra]
    return [*verbose, "live", "-s", SOURCE, "--input", clip, "--sink", out, "--json", *extra]


def error_command(mode: str, clip: Path, folder: Path, *extra) -> list:
    """mode_command for runs that must fail: outputs into an empty folder, live for 1 s at most."""
    out = folder / {"image": "out.png", "video": "out.mp4", "live": "rec.mp4"}[mode]
    return mode_command(mode, clip, out, *extra, *(["--seconds", "1"] if mode == "live" else []))


# The successful runs of the module: started together when a test first needs one, shared by all.
# Lenient latency for live (on a busy machine frames are still dropped rather than late; the
# tests assert counts only as frames_out > 0 and frames_out + dropped == frames_in).
LIVE = ["--max-latency-ms", "5000"]
RUNS = {
    "image-all": ("image", ["--faces", "all", "--device", "cpu", "-v"], "all.png"),
    "image-largest": ("image", ["--faces", "largest", "--providers", "CPUExecutionProvider", "-v"], "largest.png"),
    "image-reference": ("image", ["--faces", "reference", "--reference", DATA / "biden.jpg"], "reference.png"),
    "video-all": ("video", ["--faces", "all", "--device", "cpu", "-v"], "all.mp4"),
    "video-largest": ("video", ["--faces", "largest", "--providers", "CPUExecutionProvider", "-v"], "largest.mkv"),
    "video-reference": ("video", ["--faces", "reference", "--reference", DATA / "biden.jpg"], "reference.mp4"),
    "live-largest": ("live", ["--faces", "largest", "--device", "cpu", "-v", *LIVE], "rec.mp4"),
    "live-reference": (
        "live",
        ["--faces", "reference", "--reference", DATA / "biden.jpg", "--providers", "CPUExecutionProvider", "-v", *LIVE],
        "rec.mkv",
    ),
}


class Runs:
    """Starts every run of RUNS at once (three at a time) and hands each result out when asked."""

    def __init__(self, folder: Path, clip: Path):
        self.folder = folder
        self._pool = ThreadPoolExecutor(max_workers=3)
        self._futures = {}
        for name, (mode, extra, output) in RUNS.items():
            out = folder / output
            self._futures[name] = (self._pool.submit(run, *mode_command(mode, clip, out, *extra)), out)

    def __call__(self, name: str) -> tuple[subprocess.CompletedProcess, Path]:
        future, out = self._futures[name]
        result = future.result()
        assert result.returncode == 0, (name, result.stderr)
        return result, out

    def report(self, name: str) -> tuple[dict, Path]:
        result, out = self(name)
        return json.loads(result.stdout), out

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, clip):
    started = Runs(tmp_path_factory.mktemp("runs"), clip)
    yield started
    started.close()


# -- 1. model choices and where they run: the same in every mode -------------------------------


def _run_all_modes(clip: Path, tmp_path: Path, *extra) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """The same options in the three modes, run side by side; each mode writes into its own folder."""
    started = {}
    for mode in MODES:
        folder = tmp_path / mode
        folder.mkdir()
        process = subprocess.Popen(
            command(*error_command(mode, clip, folder, *extra)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[mode] = (process, folder)
    results = {}
    for mode, (process, folder) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        results[mode] = (subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), folder)
    return results


BAD_MODELS = {
    "detector": (["--detector", "/no/such.onnx"], "/no/such.onnx", "model file not found"),
    "swapper": (["--swapper", "/no/such.onnx"], "/no/such.onnx", "model file not found"),
    "enhancer": (["--enhancer", "/no/such.onnx"], "/no/such.onnx", "model file not found"),
    "identity": (
        ["--faces", "reference", "--reference", DATA / "biden.jpg", "--identity", "/no/such.onnx"],
        "/no/such.onnx",
        "model file not found",
    ),
    "detector-not-onnx": (["--detector", DATA / "README.md"], str(DATA / "README.md"), "not a loadable ONNX model"),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_a_bad_model_is_the_same_one_line_error_in_every_mode(clip, tmp_path, case):
    extra, path, message = BAD_MODELS[case]
    results = _run_all_modes(clip, tmp_path, *extra)
    lines = {}
    for mode, (result, folder) in results.items():
        assert result.returncode == 1, (mode, result.stderr)
        assert result.stdout == "", (mode, result.stdout)  # not even with --json
        assert "Traceback" not in result.stderr, (mode, result.stderr)
        error_lines = result.stderr.strip().splitlines()
        assert len(error_lines) == 1, (mode, result.stderr)
        line = error_lines[0]
        assert line.startswith("swapline: error:") and path in line and message in line, (mode, line)
        assert list(folder.iterdir()) == [], (mode, list(folder.iterdir()))  # no output, no temporary
        lines[mode] = line
    assert len(set(lines.values())) == 1, lines  # word for word the same in every mode


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_device_is_refused_by_the_parser_in_every_mode(clip, tmp_path, mode):
    result = run(*error_command(mode, clip, tmp_path, "--device", "gpu"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device" in lines[0] and "invalid choice" in lines[0] and "'gpu'" in lines[0]
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", MODES)
def test_device_and_providers_are_accepted_in_every_mode(runs, mode):
    """--device cpu in one run, --providers CPUExecutionProvider in another; -v names where models ran."""
    names = [n for n in RUNS if n.startswith(mode) and "-v" in RUNS[n][1]]
    assert len(names) == 2
    options = set()
    for name in names:
        result, out = runs(name)
        assert out.exists()
        assert "runs on CPUExecutionProvider" in result.stderr, result.stderr
        assert "runs on CUDAExecutionProvider" not in result.stderr
        options |= {"--device", "--providers"} & set(map(str, RUNS[name][1]))
    assert options == {"--device", "--providers"}


# -- 2. which faces: the same choice in every mode ----------------------------------------------


def test_image_faces_all_largest_reference(runs, analyser):
    original = read_image(GROUP).pixels
    boxes = group_faces(analyser)

    def inner(box):  # the middle 60% of a face box
        x0, y0, x1, y1 = box
        dx, dy = (x1 - x0) * 0.2, (y1 - y0) * 0.2
        return np.s_[int(y0 + dy) : int(y1 - dy), int(x0 + dx) : int(x1 - dx)]

    girl = np.s_[700:770, 1045:1105]  # the third, smaller face at the bottom right
    regions = {"biden": inner(boxes["biden"]), "obama": inner(boxes["obama"]), "girl": girl}
    expected = {  # name -> faces swapped, faces whose region must change
        "image-all": (3, {"biden", "obama", "girl"}),
        "image-largest": (1, {"biden"}),  # by detector box Biden's face is the largest of the photo
        "image-reference": (1, {"biden"}),
    }
    for name, (swapped, changed) in expected.items():
        report, out = runs.report(name)
        assert report["faces_found"] == 3 and report["faces_swapped"] == swapped, (name, report)
        result = read_image(out).pixels
        for who, region in regions.items():
            delta = change(result, original, region)
            if who in changed:
                assert delta > 8, (name, who, delta)
            else:
                assert delta < 4, (name, who, delta)  # untouched faces: only the invisible mark (~2 levels)


def test_video_faces_all_largest_reference(runs, clip_frames):
    expected = {  # name -> faces swapped per frame, is Obama's (left) face swapped, is Biden's
        "video-all": (2.0, True, True),
        "video-largest": (1.0, True, False),
        "video-reference": (1.0, False, True),
    }
    for name, (per_frame, obama, biden) in expected.items():
        report, out = runs.report(name)
        assert report["frames"] == 30 and report["frames_with_faces"] == 30, (name, report)
        assert report["faces_swapped_per_frame"] == per_frame, (name, report)
        swapped = decode(out)
        assert len(swapped) == 30
        for index in (0, 15, 29):  # from the first frame on (faces present at the start need no confirming)
            for region, expect in ((OBAMA_REGION, obama), (BIDEN_REGION, biden)):
                delta = change(swapped[index], clip_frames[index], region)
                assert (delta > 12) if expect else (delta < 8), (name, index, region, delta)


@pytest.mark.parametrize(("name", "obama", "biden"), [("live-largest", True, False), ("live-reference", False, True)])
def test_live_faces_largest_and_reference_are_recorded(runs, clip_frames, name, obama, biden):
    summary, out = runs.report(name)
    assert summary["frames_in"] == 30 and summary["stop_reason"] == "source ended" and summary["error"] is None
    assert summary["frames_out"] > 0 and summary["frames_out"] + summary["dropped"] == summary["frames_in"]
    recorded = decode(out)
    assert len(recorded) == summary["frames_out"]
    # a live run may drop frames, so compare each recorded frame with the closest original
    for frame in recorded:
        for region, expect in ((OBAMA_REGION, obama), (BIDEN_REGION, biden)):
            closest = min(change(frame, original, region) for original in clip_frames)
            assert (closest > 12) if expect else (closest < 8), (name, region, closest)


# -- 4. provenance in every recording ------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["image-all", "video-all", "video-largest", "video-reference", "live-largest", "live-reference"]
)
def test_outputs_carry_provenance(runs, name):
    _, out = runs(name)
    assert out.suffix in {".png", ".mp4", ".mkv"}
    record = read_provenance(out)
    assert record is not None, out
    assert record["ai_generated"] is True and record["generator"].startswith("swapline"), record


# -- 6. --json: stdout is the JSON and nothing else ------------------------------------------------


@pytest.mark.parametrize("name", list(RUNS))
def test_json_is_all_there_is_on_stdout(runs, name):
    result, _ = runs(name)
    payload = json.loads(result.stdout)  # fails on anything before or after the JSON
    assert isinstance(payload, dict) and result.stdout.lstrip().startswith("{")
    if "-v" in RUNS[name][1]:
        assert "runs on" in result.stderr and "runs on" not in result.stdout  # logs go to stderr
