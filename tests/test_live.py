"""The real live pipeline on a generated clip: swapped, labelled, in order, recorded."""

import json
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from swapline.bench.clips import make_clip
from swapline.io import read_image, read_provenance
from swapline.io.sinks import VideoFileSink
from swapline.pipeline.rate import AdaptiveRateSettings
from swapline.pipeline.realtime import build_live_pipeline
from swapline.session import SwapSession
from swapline.settings import LiveOptions, ModelChoices, SwapSettings
from swapline.trust import has_label
from tests.conftest import DATA, LockstepSink, LockstepSource


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(DATA / "biden2.jpg", tmp_path_factory.mktemp("clips") / "biden.mp4", seconds=2.0)


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_live_run_records_labelled_swapped_frames(clip, tmp_path):
    out = tmp_path / "live.mp4"
    session = SwapSession(SwapSettings(models=ModelChoices(detector="short")))
    registered = session.register_source(read_image(DATA / "obama.jpg").pixels, "obama.jpg")
    frames = LockstepSource(decode(clip))  # paced by the sink: no frame dropped, however busy the machine
    sink = LockstepSink(VideoFileSink(out, provenance=session.provenance(mode="live")), frames)
    options = LiveOptions(max_latency_ms=1e9, rate=AdaptiveRateSettings(enabled=False))
    pipeline = build_live_pipeline(session, registered, frames, sink, options, sensor=lambda: None)
    stats = pipeline.run()
    assert stats.stop_reason == "source ended" and stats.error is None
    assert stats.frames_in == stats.frames_out == 60
    assert pipeline.alive_threads == []
    recorded, original = decode(out), decode(clip)
    assert len(recorded) == stats.frames_out
    assert read_provenance(out)["ai_generated"] is True
    assert all(has_label(frame) for frame in recorded[::5])
    # the face changed (centre of the frame), the background did not (corner)
    centre = np.s_[180:300, 260:380]
    corner = np.s_[0:60, -60:]  # top-right: the label copies sit bottom-right and top-left
    assert np.abs(recorded[10][centre].astype(int) - original[10][centre].astype(int)).mean() > 8
    assert np.abs(recorded[10][corner].astype(int) - original[10][corner].astype(int)).mean() < 4


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "swapline", *map(str, args)], capture_output=True, text=True)


def test_live_cli_with_a_video_standing_in_for_a_camera(clip, tmp_path):
    out = tmp_path / "rec.mp4"
    result = run_cli("live", "--source", DATA / "obama.jpg", "--input", clip, "--sink", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout holds the JSON alone
    assert summary["frames_in"] == 60 and summary["stop_reason"] == "source ended"
    assert summary["frames_out"] > 0 and summary["frames_out"] + summary["dropped"] == 60
    assert {"capture wait", "landmarks", "swap", "label", "output"} <= set(summary["stages_ms"])
    assert out.exists() and not list(tmp_path.glob(".*"))
    assert read_provenance(out)["generator"].startswith("swapline")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "/dev/video-missing"], "cannot be opened"),
        (["--input", "missing.mp4"], "no such file"),
        (["--input", DATA / "README.md"], "not a readable video"),
        (["--input", "CLIP", "--sink", "out.avi"], "unsupported recording format"),
    ],
)
def test_live_cli_errors_are_one_line(clip, tmp_path, args, message):
    args = [clip if a == "CLIP" else (tmp_path / a if a == "out.avi" else a) for a in args]
    result = run_cli("live", "--source", DATA / "obama.jpg", "--sink", "null", *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_window_sink_without_a_display_is_a_clear_error(monkeypatch):
    from swapline.errors import SwaplineError
    from swapline.io.sinks import WindowSink

    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SwaplineError, match="no display available"):
        WindowSink()


def test_virtual_camera_without_a_device_is_a_clear_error():
    from swapline.errors import SwaplineError
    from swapline.io.sinks import VirtualCameraSink

    with pytest.raises(SwaplineError, match="virtual camera"):
        VirtualCameraSink(640, 480, 30)


@pytest.fixture
def virtual_display(monkeypatch):
    import shutil
    import time as _time

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb) - the window sink needs a display")
    server = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "800x600x24"], stderr=subprocess.DEVNULL)
    _time.sleep(1.0)
    monkeypatch.setenv("DISPLAY", ":97")
    yield
    server.terminate()
    server.wait()


def test_window_sink_shows_frames_and_q_quits(virtual_display):
    from swapline.io.sinks import WindowSink
    from swapline.pipeline.frames import Frame
    from swapline.pipeline.live import LiveStats

    sink = WindowSink()
    stats = LiveStats(started_at=time.monotonic())
    frame = Frame(seq=0, captured_at=time.monotonic(), image=np.full((240, 320, 3), 100, np.uint8))
    assert sink.write(frame, stats)
    assert frame.image.mean() == 100  # the overlay is drawn on a copy, never on the frame
    sink._root.focus_force()
    sink._root.event_generate("<KeyPress-q>", when="tail")
    sink._root.update()
    assert not sink.write(frame, stats)  # q asks the run to stop
    sink.close()


def test_compose_meter_keeps_the_frames_compose_saw_and_replays_them_alike(clip):
    """The compose-gap bench compares like with like: what it keeps is the frame before the swap (a
    copy, not the array compose then paints on), and composing it again alone gives the same pixels."""
    from swapline.bench.latency import compose_alone, meter_compose
    from swapline.io.sinks import NullSink
    from swapline.pipeline.live import LivePipeline
    from swapline.pipeline.realtime import build_stages

    session = SwapSession(SwapSettings(models=ModelChoices(detector="short")))
    registered = session.register_source(read_image(DATA / "obama.jpg").pixels, "obama.jpg")
    original = decode(clip)[:12]
    options = LiveOptions(max_latency_ms=1e9, rate=AdaptiveRateSettings(enabled=False))
    stages = build_stages(session, registered, options, sensor=lambda: None)
    meter = meter_compose(stages, every=3, keep=3)

    class Keep(NullSink):
        def __init__(self):
            self.composed = {}

        def write(self, frame, stats):
            self.composed[frame.seq] = frame.image.copy()
            return True

    frames = LockstepSource([image.copy() for image in original])
    sink = Keep()
    stats = LivePipeline(frames, stages, LockstepSink(sink, frames), options).run()
    assert stats.frames_out == 12 and stats.error is None
    assert [s.seq for s in meter.samples] == [2, 5, 8]  # every 3rd frame, at most 3
    for sample in meter.samples:
        assert sample.faces and sample.wall_ms > 0 and sample.cpu_ms >= 0
        assert np.array_equal(sample.image, original[sample.seq])  # kept before the swap painted on it
        composed = sink.composed[sample.seq]
        assert np.abs(composed.astype(int) - sample.image.astype(int)).mean() > 0.5  # the pipeline swapped it
        again, _, _ = compose_alone(meter, sample)
        assert np.array_equal(again.image, composed)  # the same work, done alone
        assert np.array_equal(sample.image, original[sample.seq])  # and the kept copy is left as it was
