"""What keeps a 4K video job's memory down: glibc's mmap threshold set once (and nothing off
glibc), a decoder hand-off that counts the frame being decoded, frames converted for the encoder
on the compose thread, and the mark cached as one band. None of it may change an output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import DATA, load

from swapline.bench.clips import make_clip
from swapline.errors import SwaplineError
from swapline.io.video import SegmentWriter, decode_frames, encoder_picture, probe
from swapline.pipeline import video_job
from swapline.pipeline.video_job import DecodeHandOff, VideoSwapJob, feed
from swapline.session import SwapSession
from swapline.settings import SwapSettings, VideoOptions
from swapline.trust.mark import payload as code
from swapline.trust.mark.pattern import TILE
from swapline.trust.watermark import Payload, Watermarker

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = Payload(job_id=2_718_281_828)

# Run in a fresh interpreter (the allocator's settings are per process). `mapped_alone()` asks
# glibc whether an 8 MB block gets a mapping of its own right after a 24 MB one was freed: with
# glibc's rising threshold it does not (it comes from the heap arenas), with ours it does.
_ALLOCATOR_PROBE = """
import ctypes, json, os, sys
import numpy as np

mode = sys.argv[1]
if mode == "not-glibc":
    def confstr(name):
        raise ValueError(name)
    os.confstr = confstr  # as on musl, where CS_GNU_LIBC_VERSION does not exist
from swapline.runtime.memory import M_MMAP_THRESHOLD, tune_allocator, tune_for_frames

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info

def mapped_alone():
    big = np.ones(24 << 20, np.uint8)
    del big
    before = libc.mallinfo2().hblkhd
    block = np.ones(8 << 20, np.uint8)
    alone = libc.mallinfo2().hblkhd - before >= block.nbytes
    del block
    return alone

result = {}
if mode in ("tuned", "once", "not-glibc"):
    result["tuned"] = tune_allocator()
if mode == "720p":
    result["tuned"] = tune_for_frames(1280, 720)  # small frames: glibc's own behaviour
if mode == "4k":
    result["tuned"] = tune_for_frames(3840, 2160)
if mode == "once":
    libc.mallopt(M_MMAP_THRESHOLD, 16 << 20)  # someone else's setting after ours
    result["again"] = tune_allocator()  # must not apply ours a second time
result["mapped_alone"] = mapped_alone()
print(json.dumps(result))
"""


def _glibc_with_mallinfo2() -> bool:
    import ctypes

    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc") and hasattr(ctypes.CDLL(None), "mallinfo2")
    except (AttributeError, ValueError, OSError):
        return False


def _allocator_probe(mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in [k for k in env if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        del env[name]  # glibc's own defaults, whatever the test runner's environment says
    done = subprocess.run(
        [sys.executable, "-c", _ALLOCATOR_PROBE, mode], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="glibc >= 2.33 (mallinfo2) only")
def test_allocator_tuning_maps_big_blocks_once_and_is_a_no_op_off_glibc():
    assert _allocator_probe("plain") == {"mapped_alone": False}  # glibc alone: the fragmenting case
    assert _allocator_probe("tuned") == {"tuned": True, "mapped_alone": True}
    assert _allocator_probe("once") == {"tuned": True, "again": True, "mapped_alone": False}
    assert _allocator_probe("not-glibc") == {"tuned": False, "mapped_alone": False}
    assert _allocator_probe("720p") == {"tuned": False, "mapped_alone": False}  # page faults cost more there
    assert _allocator_probe("4k") == {"tuned": True, "mapped_alone": True}


def test_the_mark_is_the_tiled_pattern_on_every_channel_at_any_size(tmp_path):
    """embed adds rint(tile) repeated over the frame to B, G and R alike (saturating), as it did
    with the full-frame cache: into whole frames of sizes that are no multiple of TILE, and views."""
    marker = Watermarker()
    tile = marker.layout.pattern(code.encode(PAYLOAD)) * np.float32(marker.settings.strength)
    photo = load("obama_and_biden.jpg")
    for width, height in ((1281, 721), (640, 360), (300, 130)):
        frame = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        full = np.rint(np.tile(tile, (-(-height // TILE), -(-width // TILE)))[:height, :width])
        expected = np.clip(frame.astype(np.int16) + full[:, :, None].astype(np.int16), 0, 255).astype(np.uint8)
        marked = frame.copy()
        marker.embed(marked, PAYLOAD)
        assert np.array_equal(marked, expected), (width, height)
        if width == 1281:
            assert marker.decode(marked).payload == PAYLOAD
        outer = frame.copy()
        marker.embed(outer[7:-5, 3:-9], PAYLOAD)  # a view (not contiguous): the pattern starts at its corner
        inner = frame[7:-5, 3:-9]
        h, w = inner.shape[:2]
        want = np.clip(inner.astype(np.int16) + full[:h, :w, None].astype(np.int16), 0, 255).astype(np.uint8)
        assert np.array_equal(outer[7:-5, 3:-9], want)
        assert np.array_equal(outer[:7], frame[:7])


def test_marking_a_4k_frame_allocates_no_full_frame_pattern():
    """The first mark at 4K (cold cache) made two 25 MB cached patterns and float copies of the
    frame's size (~150 MB of numpy buffers); one band of TILE rows is ~3 MB."""
    frame = np.full((2160, 3840, 3), 128, np.uint8)
    marker = Watermarker()
    tracemalloc.start()
    try:
        marker.embed(frame, PAYLOAD)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak / 2**20
    assert marker.decode(cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_AREA)).payload == PAYLOAD


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("memory")
    return make_clip(DATA / "biden2.jpg", folder / "clip.mp4", (640, 360), 30.0, 0.6, 150, 1.0)


def test_the_decoder_holds_no_finished_frame_beyond_its_bound(clip):
    """With a hand-off of one, a decoder that is never read from has made at most two frames: the
    one taken and the one waiting (a plain queue of one lets it hold a third, blocked in put)."""
    made = []

    def counted():
        for frame in decode_frames(probe(clip)):
            made.append(frame.index)
            yield frame

    hand_off, stop, errors = DecodeHandOff(1), threading.Event(), []  # the 4K bound, on a small clip
    reader = threading.Thread(target=feed, args=(counted(), hand_off, stop, errors), daemon=True)
    reader.start()
    try:
        first = hand_off.get(stop)
        deadline = time.monotonic() + 10.0
        while len(made) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # time enough to decode several more, were it allowed
        assert first.index == 0 and made == [0, 1]
    finally:
        stop.set()
        reader.join(timeout=5.0)
    assert not errors and not reader.is_alive()


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def test_encoder_pictures_encode_exactly_as_bgr_frames(clip, tmp_path):
    """A frame converted on another thread (encoder_picture) gives the packets the encoder's own
    conversion gives, also for an odd size (padded) read from a view."""
    info = probe(clip)
    for name, odd in (("even", False), ("odd", True)):
        outs = []
        for mode in ("bgr", "picture"):
            size = replace(info, width=info.width - 1, height=info.height - 1) if odd else info
            writer = SegmentWriter(tmp_path / f"{name}-{mode}.mp4", size, 20, "veryfast")
            for frame in decode_frames(info):
                image = frame.image[: size.height, : size.width]
                writer.write(image if mode == "bgr" else encoder_picture(image), frame.pts)
            writer.close()
            outs.append(_packets(writer.path))
        assert len(outs[0]) == 18 and outs[0] == outs[1], name


@pytest.fixture(scope="module")
def session() -> SwapSession:
    made = SwapSession(SwapSettings())
    made.mark_payload = PAYLOAD  # one job id for the job and the reference
    return made


def _one_by_one(session: SwapSession, clip: Path, out: Path) -> list[bytes]:
    """The job's frames made without threads or hand-offs: decode, follow, compose, encode."""
    info = probe(clip)
    registered = session.register_source(load("obama.jpg"), str(DATA / "obama.jpg"))
    stream = session.stream()
    writer = SegmentWriter(out, info, VideoOptions().crf, VideoOptions().preset)
    for frame in decode_frames(info):
        image = frame.image
        session.compose(image, stream.update(image, frame.time_s), registered)
        writer.write(image, frame.pts)
    writer.close()
    return _packets(out)


@pytest.mark.parametrize("tight", [False, True], ids=["default-bounds", "4k-bounds"])
def test_the_job_writes_what_one_by_one_processing_writes(session, clip, tmp_path, monkeypatch, tight):
    """Frames in flight (decoded ahead, composing on the pool, converted for the encoder) are each
    their own: the job's video equals frame-by-frame processing, with the default bounds and with
    the one-frame bounds 4K gets (hand-off of one, backlog of one, one compose thread)."""
    if tight:
        monkeypatch.setattr(video_job, "DECODE_BUFFER_BYTES", 1)
        monkeypatch.setattr(video_job, "COMPOSE_BUFFER_BYTES", 1)
    expected = _one_by_one(session, clip, tmp_path / "reference.mp4")
    report = VideoSwapJob(session, DATA / "obama.jpg", clip, tmp_path / "job.mp4").run()
    assert report.frames == 18 and report.faces_swapped_per_frame == 1.0
    assert _packets(tmp_path / "job.mp4") == expected


def test_a_failed_write_stops_the_job_with_a_clear_error(session, clip, tmp_path):
    """A write that fails (the work folder removed under the job) ends the job with the one-line
    error, no output and no thread left behind."""
    out = tmp_path / "job.mp4"
    job = VideoSwapJob(session, DATA / "obama.jpg", clip, out, VideoOptions(segment_frames=6))

    def remove_the_work_folder(done: int, total: int | None) -> None:
        if done >= 3:
            shutil.rmtree(job.store.path, ignore_errors=True)

    with pytest.raises(SwaplineError, match=f"{out}: cannot write"):
        job.run(remove_the_work_folder)
    assert not out.exists()
    assert not [t for t in threading.enumerate() if t.name.startswith(("compose", "decode"))]
