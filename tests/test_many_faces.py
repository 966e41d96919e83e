"""Many faces per frame (issue 16): per-face work spread over threads gives the serial result.

Frames come from real photos (a grid of copies of one face, as `bench scale` makes them) and go
through the real models and the real encoder. No timing asserts.
"""

import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from swapline.bench.clips import many_face_frames, write_clip
from swapline.bench.scale import track_duplicates
from swapline.faces import BlazeFaceDetector, FaceMeshLandmarker
from swapline.faces.tracker import FaceTracker, FaceWorkers, TrackerSettings, footprint, independent_groups
from swapline.io.video import SegmentWriter, decode_frames, decoder_threads, encoder_lookahead, encoder_threads, probe
from swapline.pipeline.video_job import VideoSwapJob, compose_backlog
from swapline.session import SwapSession
from swapline.settings import SwapSettings
from tests.conftest import DATA

SIZE, FPS = (1280, 720), 10.0


@pytest.fixture(scope="module")
def crowd(photos):
    """Four frames of 8 faces (~145 px each) in a 4x2 grid."""
    image, face = photos["biden.jpg"]
    return list(many_face_frames(image, face.box, SIZE, FPS, 0.4, 8))


@pytest.fixture(scope="module")
def sessions():
    serial = SwapSession(SwapSettings(face_workers=1))
    parallel = SwapSession(SwapSettings(face_workers=4))
    parallel.mark_payload = serial.mark_payload  # one job id: the same invisible mark in both
    return serial, parallel


def _track(frames, workers: FaceWorkers):
    tracker = FaceTracker(BlazeFaceDetector("full"), FaceMeshLandmarker(), TrackerSettings(max_faces=16), workers)
    return [tracker.update(frame) for frame in frames]


def test_parallel_landmarks_equal_serial_landmarks(crowd):
    serial, parallel = _track(crowd, FaceWorkers(1)), _track(crowd, FaceWorkers(4))
    for a, b in zip(serial, parallel, strict=True):
        assert len(a) == len(b) == 8
        assert [f.track_id for f in a] == [f.track_id for f in b]
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x.landmarks, y.landmarks)


def test_the_callers_thread_takes_faces_too_until_none_is_left():
    """Two workers, eight faces: the pool's one thread holds its first face until the caller's
    thread has done the seven others. Were the work split up front (the caller one face, the
    pool the rest), the pool's thread would wait with six faces queued behind it and the caller
    would do one."""
    others_done = threading.Event()
    by_caller = []

    def work(item: int) -> int:
        if threading.current_thread().name.startswith("face"):
            others_done.wait(timeout=10)
        else:
            by_caller.append(item)
            if len(by_caller) == 7:
                others_done.set()
        return item * item

    workers = FaceWorkers(2)
    try:
        assert workers.map(work, list(range(8))) == [i * i for i in range(8)]
    finally:
        workers.close()
    assert len(by_caller) == 7, by_caller


def test_a_failing_face_raises_its_own_error_once_every_face_is_done():
    done = []

    def work(item: int) -> int:
        if item in (2, 5):
            raise ValueError(f"face {item}")
        done.append(item)
        return item

    workers = FaceWorkers(3)
    try:
        with pytest.raises(ValueError, match="face 2"):
            workers.map(work, list(range(8)))
    finally:
        workers.close()
    assert sorted(done) == [0, 1, 3, 4, 6, 7]


def test_parallel_swaps_give_the_serial_frame_bit_for_bit(crowd, sessions):
    serial, parallel = sessions
    faces = serial.find_faces(crowd[0])
    assert len(faces) == 8
    margin = serial._swapper.settings.crop_margin
    # the faces of the grid are apart: eight groups, really swapped side by side
    assert len(independent_groups([footprint(f, margin) for f in faces])) == 8
    source = serial.register_source(*_source())
    out = []
    for session in (serial, parallel):
        frame = crowd[0].copy()
        assert session.compose(frame, faces, source) == 8
        out.append(frame)
    assert np.array_equal(out[0], out[1])
    assert not np.array_equal(out[0], crowd[0])


def test_touching_faces_are_swapped_in_order_and_match_serial(photos, sessions):
    """Two faces whose crops overlap land in one group (swapped one after the other), so the
    frame is still the serial one."""
    serial, parallel = sessions
    image, face = photos["obama.jpg"]
    shifted = face.replace(landmarks=face.landmarks + np.array([0.6 * face.width, 0.0, 0.0], np.float32))
    faces = [face, shifted]
    margin = serial._swapper.settings.crop_margin
    assert independent_groups([footprint(f, margin) for f in faces]) == [[0, 1]]
    source = serial.register_source(*_source("biden.jpg"))
    out = []
    for session in (serial, parallel):
        frame = image.copy()
        assert session.compose(frame, faces, source) == 2
        out.append(frame)
    assert np.array_equal(out[0], out[1])


def test_groups_keep_order_and_split_only_what_does_not_touch():
    a, b = np.array([0, 0, 10, 10.0]), np.array([9, 0, 20, 10.0])
    c, d = np.array([30, 30, 40, 40.0]), np.array([19, 5, 25, 8.0])
    assert independent_groups([a, c, b]) == [[0, 2], [1]]
    assert independent_groups([a, c, d, b]) == [[0, 2, 3], [1]]  # a-b-d chained
    assert independent_groups([]) == []


def test_eight_faces_are_all_swapped_once_in_a_video_job(tmp_path, crowd, sessions):
    clip = write_clip(crowd, tmp_path / "crowd.mp4", FPS, SIZE)
    tracking = track_duplicates(clip, max_faces=16)
    assert tracking["most_faces"] == 8 and tracking["duplicate_frames"] == 0 and tracking["track_ids"] == 8
    _, parallel = sessions  # default max_faces: every face
    report = VideoSwapJob(parallel, DATA / "obama.jpg", clip, tmp_path / "out.mp4").run()
    assert report.frames == len(crowd)
    assert report.faces_swapped_per_frame == 8.0  # all of them, none twice


def test_big_frames_keep_fewer_frames_in_flight():
    assert decoder_threads(1280, 720, cores=2) == 3  # FFmpeg's own choice (cores + 1)
    assert decoder_threads(1920, 1080, cores=16) == 5
    assert decoder_threads(3840, 2160, cores=16) == 1
    assert encoder_lookahead(1920, 1080, "veryfast") is None  # the preset's own 10
    assert encoder_lookahead(3840, 2160, "veryfast") == 3
    assert encoder_lookahead(3840, 2160, "ultrafast") is None  # never raised above the preset's
    assert encoder_threads(1280, 720, cores=2) == 3  # x264's own choice: frame threads
    assert encoder_threads(1920, 1080, cores=16) == 4  # fewer than x264's 24
    assert encoder_threads(3840, 2160, cores=16) == 1  # slice threads
    for width, height, expected in ((1280, 720, 4), (3840, 2160, 1)):
        assert compose_backlog(SimpleNamespace(width=width, height=height), workers=2) == expected


def test_the_encoder_reads_strided_frames_in_place_or_copies_them(tmp_path, crowd):
    """Frames written from a view with padded rows (in place) and from a BGRA view (copied)
    both decode to the picture given."""
    info = probe(write_clip(crowd[:1], tmp_path / "in.mp4", FPS, SIZE))
    wide = np.zeros((SIZE[1], SIZE[0] + 8, 3), np.uint8)
    wide[:, : SIZE[0]] = crowd[1]
    four = np.dstack([crowd[2], np.full(crowd[2].shape[:2], 255, np.uint8)])
    writer = SegmentWriter(tmp_path / "seg.mp4", info, 12, "ultrafast")
    views = [wide[:, : SIZE[0]], four[..., :3]]
    for index, view in enumerate(views):
        writer.write(view, index * round(1 / (FPS * info.time_base)))
    writer.close()
    decoded = [f.image for f in decode_frames(replace(info, path=tmp_path / "seg.mp4", duration_s=0.0, frames=2))]
    assert len(decoded) == 2
    for got, want in zip(decoded, (crowd[1], crowd[2]), strict=True):
        assert np.abs(got.astype(int) - want).mean() < 3.0


def _source(name: str = "obama.jpg"):
    from swapline.io import read_image

    return read_image(DATA / name).pixels, name


def test_the_thread_count_does_not_change_the_work_folder_key():
    # a job resumed with another --face-workers finds its segments; another crf does not
    from swapline.pipeline.segments import fingerprint
    from swapline.pipeline.video_job import output_shaping
    from swapline.settings import SwapSettings
    from tests.conftest import DATA

    inputs = [DATA / "obama.jpg", DATA / "biden2.jpg"]

    def key(workers, crf=20):
        return fingerprint(inputs, output_shaping(SwapSettings(face_workers=workers), crf, "veryfast", 300))

    assert key(1) == key(4) == key(None)
    assert key(1, crf=28) != key(1)


class _ThreadNoting:
    """The real detector, noting on which thread each detection ran."""

    def __init__(self, detector):
        self.detector, self.threads = detector, []

    def detect(self, image):
        self.threads.append(threading.current_thread().name)
        return self.detector.detect(image)


def test_new_faces_are_found_aside_while_tracked_frames_never_wait(crowd):
    """Live (detect_aside): with a face tracked, the periodic look for more runs on its own thread
    and the faces it finds join on a later frame; with nothing tracked it runs on the frame's."""
    frame = crowd[0]
    one = frame.copy()
    found = BlazeFaceDetector("full").detect(frame)
    keep = max(found, key=lambda f: f.box[0] + f.box[1])  # one face; the others painted out
    x0, y0, x1, y1 = footprint(keep, 0.4).astype(int)
    one[:] = 0
    one[max(0, y0) : y1, max(0, x0) : x1] = frame[max(0, y0) : y1, max(0, x0) : x1]
    detector = _ThreadNoting(BlazeFaceDetector("full"))
    settings = TrackerSettings(max_faces=16, redetect_interval=2, detect_aside=True)
    tracker = FaceTracker(detector, FaceMeshLandmarker(), settings)
    caller = threading.current_thread().name
    assert len(tracker.update(one)) == 1 and detector.threads == [caller]  # nothing tracked: now
    assert len(tracker.update(frame)) == 1  # the crowd arrives; not looked for yet
    assert len(tracker.update(frame)) == 1  # looked for aside; this frame did not wait
    tracker.wait_aside()
    assert len(tracker.update(frame)) == len(found) == 8  # joined on the next frame
    assert detector.threads[1:] and all(name.startswith("detect-aside") for name in detector.threads[1:])
