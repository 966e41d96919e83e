"""Cost that grows gently with the work: big faces, big photos, 4K clips (issue 16).

No timing asserts: each test checks that the cheap path gives the result of the full one.
"""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from swapline.bench.clips import make_clip
from swapline.bench.scale import track_duplicates
from swapline.bench.speed import make_frame
from swapline.faces import BlazeFaceDetector
from swapline.faces.detector import DetectorSettings, Pyramid, box_iou
from swapline.faces.topology import face_mesh
from swapline.faces.tracker import overlap_of_smaller
from swapline.swap import MeshSwapper, MeshSwapSettings
from swapline.swap.masks import feathered_face_mask
from swapline.swap.mesh_swapper import apply_at_full_size
from tests.conftest import DATA, load


@pytest.fixture(scope="module")
def big_face(photos, analyser):
    """biden2.jpg's face ~760 px wide in a 1760x1440 frame."""
    image, face = photos["biden2.jpg"]
    frame = make_frame(image, face.box, 800, (1760, 1440))
    return frame, analyser.faces(frame)[0]


def test_big_face_at_working_scale_matches_the_full_size_compose(photos, big_face):
    frame, face = big_face
    source = photos["obama.jpg"]
    full_res = MeshSwapper(replace(MeshSwapSettings(), work_face_px=0))  # 0: never scale down
    working = MeshSwapper()
    assert float(np.ptp(face.landmarks[:, 0])) > 2.5 * working.settings.work_face_px
    results = []
    for swapper in (full_res, working):
        out = frame.copy()
        assert swapper.swap(out, face, swapper.register(*source))
        results.append(out)
    changed = np.abs(results[0].astype(int) - frame).max(axis=2) > 8
    assert changed.mean() > 0.1  # the face really was replaced
    diff = np.abs(results[0].astype(int) - results[1]).max(axis=2)
    assert diff.mean() < 2.0 and np.percentile(diff[changed], 95) < 16
    # outside the face crop nothing is written
    x0, y0 = np.floor(face.landmarks[:, :2].min(axis=0) - 0.2 * np.ptp(face.landmarks[:, :2], axis=0)).astype(int)
    untouched = np.ones(frame.shape[:2], bool)
    untouched[max(0, y0) :, max(0, x0) :] = False
    assert np.array_equal(results[1][untouched], frame[untouched])


def test_small_faces_are_composed_exactly_as_before(photos):
    """At ~200 px the working scale is not used: the result is bit-identical to no cap."""
    target, face = photos["obama2.jpg"]
    out = []
    for cap in (0, 256):
        swapper = MeshSwapper(replace(MeshSwapSettings(), work_face_px=cap))
        image = target.copy()
        swapper.swap(image, face, swapper.register(*photos["biden.jpg"]))
        out.append(image)
    assert np.array_equal(out[0], out[1])


def test_the_fine_pass_skips_background_and_finds_the_same_small_faces():
    """A group photo shrunk into a corner of a plain 4K frame: the fine pass covers only the
    part with unexplained skin, and finds the faces a pass over the whole frame finds."""
    group = cv2.resize(load("obama_and_biden.jpg"), (640, 457), interpolation=cv2.INTER_AREA)
    canvas = np.empty((2160, 3840, 3), np.uint8)
    ramp = np.linspace(60, 200, 3840)[None, :, None] * np.array([1.0, 0.9, 0.6])
    canvas[:] = ramp.astype(np.uint8)
    canvas[1200:1657, 2400:3040] = group
    every = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True, fine_min_skin=0.0))
    guided = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True))
    found = guided._run_square(canvas)[0]
    assert every.fine_region(Pyramid(canvas), found) == (0, 0, 3840, 2160)
    x0, y0, x1, y1 = guided.fine_region(Pyramid(canvas), found)
    assert x0 <= 2400 and y0 <= 1200 and x1 >= 3040 and y1 >= 1657  # the group photo is inside
    assert (x1 - x0) * (y1 - y0) < 3840 * 2160 / 2
    a, b = every.detect(canvas), guided.detect(canvas)
    assert len(a) == len(b) >= 2 and all(f.width < 100 for f in b)  # small faces: only the fine pass finds them
    for x, y in zip(a, b, strict=True):
        assert box_iou(x.box, y.box[None])[0] > 0.9


def test_grey_photos_get_the_fine_pass_everywhere():
    grey = cv2.cvtColor(cv2.cvtColor(load("obama_and_biden.jpg"), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    detector = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True))
    assert detector.fine_region(Pyramid(grey), np.zeros((0, 4))) == (0, 0, grey.shape[1], grey.shape[0])


def test_still_faces_unchanged_on_the_test_photos(analyser):
    """The analyser (detector schedule + landmarks) finds one face per portrait and the three
    people of the group photo, as before the schedule changed."""
    for name, expected in (("obama.jpg", 1), ("biden.jpg", 1), ("obama3.jpg", 1), ("obama_and_biden.jpg", 3)):
        assert len(analyser.faces(load(name))) == expected, name


def test_detector_box_inside_a_landmark_box_is_the_same_face():
    landmark_box = np.array([100, 100, 300, 340], np.float32)
    detector_box = np.array([150, 170, 250, 270], np.float32)  # tight, inner face
    assert box_iou(detector_box, landmark_box[None])[0] < 0.3  # IoU would call it another face
    assert overlap_of_smaller(detector_box, landmark_box[None])[0] == pytest.approx(1.0)
    beside = np.array([320, 100, 520, 340], np.float32)
    assert overlap_of_smaller(beside, landmark_box[None])[0] == 0.0


def test_a_4k_clip_has_one_track_per_face_and_no_face_twice(tmp_path):
    clip = make_clip(DATA / "obama.jpg", tmp_path / "4k.mp4", (3840, 2160), fps=10, seconds=1.5, face_px=900)
    result = track_duplicates(clip, max_faces=4)
    assert result["frames"] == 15
    assert result["duplicate_frames"] == 0
    assert result["track_ids"] == 1 and result["most_faces"] == 1


def test_the_small_face_of_the_group_photo_is_found_at_4k(analyser):
    """obama_and_biden.jpg at 4K: the girl at the bottom right (dark, looking down) is found only
    by the fine pass, never by the full-frame pass; the fine pass must still cover her."""
    image = cv2.resize(load("obama_and_biden.jpg"), (3840, 2160), interpolation=cv2.INTER_LINEAR)
    faces = analyser.faces(image)
    assert len(faces) == 3
    girl = np.array([3096, 1601, 3349, 1854], np.float32)  # her box before the schedule changed
    assert max(box_iou(girl, f.box[None])[0] for f in faces) > 0.8
    full_pass = BlazeFaceDetector(settings=DetectorSettings(fine_pass=False)).detect(image)
    assert all(box_iou(girl, f.box[None])[0] < 0.3 for f in full_pass)


def test_big_face_blend_edge_has_no_stair_steps(big_face):
    """The blend weight of a big face is made at working scale and brought to full size by
    bilinear interpolation: written over a flat grey crop it must ramp smoothly at full
    resolution (a nearest-pixel or blocky upscale leaves a step every ~3 px, which this
    measure sees at once)."""
    frame, face = big_face
    points = face.landmarks[:, :2]
    size = float(np.ptp(points, axis=0).max())
    scale = MeshSwapSettings().work_face_px / size
    x0, y0 = np.floor(points.min(axis=0) - 0.12 * size).astype(int)
    h, w = (np.ceil(np.ptp(points, axis=0) + 0.24 * size).astype(int))[::-1]
    work = (round(h * scale), round(w * scale))
    on_work = (points - [x0, y0] + 0.5) * [work[1] / w, work[0] / h] - 0.5
    mask = feathered_face_mask(on_work[face_mesh().face_oval], work, size * scale, MeshSwapSettings().feather)
    region = np.full((h, w, 3), 100, np.uint8)
    composed = np.repeat(100.0 + 100.0 * mask[..., None], 3, axis=2).astype(np.float32)  # 200 on the face
    apply_at_full_size(region, composed, np.full((*work, 3), 100, np.float32), mask)
    ramp = region[..., 1].astype(np.float32)
    edge = (ramp > 105) & (ramp < 195)
    assert edge.sum() > 20 * size  # a band several pixels wide all round the face
    assert len(np.unique(ramp[edge])) > 80  # every level on the way: anti-aliased
    steps = np.maximum(np.abs(np.diff(ramp, axis=0))[:, :-1], np.abs(np.diff(ramp, axis=1))[:-1])
    assert np.percentile(steps[edge[:-1, :-1]], 99.9) <= 3  # neighbours: a level or two apart


def test_the_job_bench_measures_the_job_and_its_floor_in_child_processes(tmp_path, photos):
    """`bench scale` runs the video job and the decode+encode floor each in a fresh process:
    every face swapped, and each run's own peak RSS (the job holds models, the floor does not)."""
    from swapline.bench.clips import many_face_frames, write_clip
    from swapline.bench.scale import measure_job

    image, face = photos["biden.jpg"]
    frames = many_face_frames(image, face.box, (640, 360), 10.0, 0.5, 2)
    clip = write_clip(frames, tmp_path / "two.mp4", 10.0, (640, 360))
    row = measure_job(DATA / "obama.jpg", clip)
    assert row["frames"] == 5 and row["faces_swapped_per_frame"] == 2.0
    assert row["peak_rss_mb"] > row["floor_peak_rss_mb"] > 50
    assert row["swap_over_floor"] > 0 and row["fps"] > 0
