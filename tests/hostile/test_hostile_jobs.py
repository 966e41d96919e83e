"""Hostile conditions for long jobs: full disks, read-only folders, power loss, rival jobs, signals.

Each case ends in one line naming the file and the problem (or a correct result), and no case
loses finished work. Add a case: a function here, using the helpers below.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from swapline.bench.clips import make_clip
from tests.conftest import DATA

SOURCE = DATA / "obama.jpg"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """4 s of a moving face at 320x240: 120 frames, 6 segments of 20."""
    return make_clip(DATA / "biden2.jpg", tmp_path_factory.mktemp("jobs") / "clip.mp4", (320, 240), 30.0, 4.0, 100)


def _ctrl_c_as_at_a_terminal() -> None:
    """In the child, before exec: a test run started in the background of a non-interactive shell
    inherits SIGINT ignored, and Python (like any program) keeps an ignored SIGINT ignored; a
    user's terminal does not, so the child gets the default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "swapline", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_at_a_terminal,
        **kwargs,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def frames_of(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def wait_for_segments(work: Path, count: int, process: subprocess.Popen, seconds: float = 90) -> None:
    """Poll the manifest until `count` segments are recorded (a deterministic point in the job)."""
    manifest = work / "manifest.json"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            if len(json.loads(manifest.read_text())["segments"]) >= count:
                return
        time.sleep(0.02)
    pytest.fail(f"the job did not record {count} segments (exit {process.poll()})")


def swap_args(clip: Path, out: Path) -> list:
    return ["swap", "-s", SOURCE, "-t", clip, "-o", out, "--segment-frames", "20"]


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_video_into_a_read_only_folder_is_one_line(clip, tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        code, _, err = finish(cli(*swap_args(clip, folder / "out.mp4")))
    assert code == 1 and "cannot write in" in one_line(err) and "Read-only file system" in err


def test_disk_full_keeps_finished_segments_and_the_rerun_resumes(clip, tmp_path):
    with tmpfs(tmp_path / "small", "size=120k") as folder:
        out = folder / "out.mp4"
        code, _, err = finish(cli(*swap_args(clip, out)))
        line = one_line(err)
        assert (
            code == 1
            and line.startswith(f"swapline: error: disk full while writing {out};")
            and "run again to resume" in line
        )
        kept = int(line.split("; ")[1].split()[0])
        manifest = json.loads((folder / ".out.mp4.swapline-parts" / "manifest.json").read_text())
        assert len(manifest["segments"]) == kept and not out.exists()
        subprocess.run(["mount", "-o", "remount,size=20m", str(folder)], check=True)
        code, out_json, err = finish(cli(*swap_args(clip, out), "--json"))
        assert code == 0, err
        assert json.loads(out_json)["resumed_segments"] == kept and frames_of(out) == 120


def test_a_segment_cut_short_by_power_loss_is_made_again(clip, tmp_path):
    out = tmp_path / "out.mp4"
    work = tmp_path / ".out.mp4.swapline-parts"
    process = cli(*swap_args(clip, out))
    wait_for_segments(work, 2, process)
    process.kill()  # power loss: no clean-up
    process.wait()
    segment = work / "segment_00000.mp4"
    segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])  # written but never flushed
    code, report, err = finish(cli(*swap_args(clip, out), "--json"))
    assert code == 0 and "Traceback" not in err, err
    assert frames_of(out) == 120 and json.loads(report)["resumed_segments"] >= 1


def test_a_second_job_on_the_same_output_is_refused(clip, tmp_path):
    out = tmp_path / "out.mp4"
    first = cli(*swap_args(clip, out))
    wait_for_segments(tmp_path / ".out.mp4.swapline-parts", 1, first)
    # the first job held still while the second starts: on a busy machine it could otherwise
    # finish (and let go of the output) before the second job's start-up is done
    first.send_signal(signal.SIGSTOP)
    try:
        code, _, err = finish(cli(*swap_args(clip, out), "--crf", "30"))  # other settings: would wipe the work
    finally:
        first.send_signal(signal.SIGCONT)
    assert code == 1 and one_line(err) == f"swapline: error: {out}: another swapline job is writing this output"
    code, _, err = finish(first)
    assert code == 0, err
    assert frames_of(out) == 120 and not list(tmp_path.glob(".out.mp4*"))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_video_exits_130_and_resumes(clip, tmp_path, stop):
    out = tmp_path / "out.mp4"
    process = cli(*swap_args(clip, out))
    wait_for_segments(tmp_path / ".out.mp4.swapline-parts", 1, process)
    process.send_signal(stop)
    code, _, err = finish(process)
    assert code == 130 and "run the same command to resume" in one_line(err)
    code, _, err = finish(cli(*swap_args(clip, out)))
    assert code == 0 and frames_of(out) == 120, err


def _live_recording(clip: Path, out: Path) -> subprocess.Popen:
    return cli("live", "-s", SOURCE, "--input", clip, "--loop", "--sink", out, "--json", "--max-latency-ms", "10000")


def _wait_for_frames(process: subprocess.Popen, folder: Path) -> None:
    """The recording's temporary file grows once frames flow."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.stat().st_size > 2000 for p in folder.glob(".rec.mp4.*")):
            return
        time.sleep(0.05)
    pytest.fail("the live run produced no frames")


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]])
def test_live_recording_survives_sigterm_and_a_double_ctrl_c(clip, tmp_path, signals):
    out = tmp_path / "rec.mp4"
    process = _live_recording(clip, out)
    _wait_for_frames(process, tmp_path)
    for sig in signals:
        process.send_signal(sig)
    code, stdout, err = finish(process)
    summary = json.loads(stdout)  # the summary is printed
    assert code == 0 and summary["stop_reason"] == "interrupted", err
    assert frames_of(out) == summary["frames_out"] > 0  # the recording was closed and renamed
    assert not list(tmp_path.glob(".rec.mp4*"))
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
