import cv2
import numpy as np
import pytest

from swapline.faces import BlazeFaceDetector
from swapline.faces.detector import DetectorSettings, Pyramid, anchor_centers, weighted_nms
from swapline.models import builtin_model_path
from tests.conftest import load

# Face centres in tests/data/obama_and_biden.jpg (1280x914), read off the photo.
BIDEN_CENTER = (534, 339)
OBAMA_CENTER = (793, 315)


def centers(faces):
    return np.array([f.center for f in faces])


def test_anchor_layouts_match_the_models():
    assert anchor_centers(128, 128, ((8, 2), (16, 6))).shape == (896, 2)
    assert anchor_centers(192, 192, ((4, 1),)).shape == (2304, 2)
    first = anchor_centers(128, 128, ((8, 2), (16, 6)))[:3]
    assert np.allclose(first, [[4, 4]] * 2 + [[12, 4]])  # input pixels, row by row
    wide = anchor_centers(64, 128, ((4, 1),))
    assert wide.shape == (16 * 32, 2) and np.allclose(wide[32], [2, 6])  # second row starts


def test_full_range_finds_both_faces_in_the_group_photo():
    faces = BlazeFaceDetector("full").detect(load("obama_and_biden.jpg"))
    found = centers(faces)
    for expected in (BIDEN_CENTER, OBAMA_CENTER):
        assert np.min(np.linalg.norm(found - expected, axis=1)) < 30, (expected, found)


def test_full_range_finds_the_small_face_in_the_full_body_shot():
    image = load("obama3.jpg")
    faces = BlazeFaceDetector("full").detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.width < image.shape[1] * 0.25  # a small face in a big frame
    # keypoints sit inside the box, eyes above the mouth
    assert np.all((face.keypoints[:4] >= face.box[:2]) & (face.keypoints[:4] <= face.box[2:]))
    assert face.keypoints[0, 1] < face.keypoints[3, 1] and face.keypoints[1, 1] < face.keypoints[3, 1]


@pytest.mark.parametrize("detector_range", ["short", "full"])
@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "biden2.jpg", "astronaut.png", "obama2.jpg"])
def test_one_face_per_portrait(detector_range, name):
    faces = BlazeFaceDetector(detector_range).detect(load(name))
    assert len(faces) == 1
    assert faces[0].score > 0.7


def test_letterbox_is_undone_exactly():
    detector = BlazeFaceDetector("full")
    image = load("obama.jpg")
    shifted = np.zeros((image.shape[0], image.shape[1] + 200, 3), np.uint8)
    shifted[:, 200:] = image
    a = detector.detect(image)[0]
    b = detector.detect(shifted)[0]
    assert np.allclose(
        b.box - [200, 0, 200, 0], a.box, atol=0.06 * a.width
    )  # model noise at another scale; a letterbox bug is ~100 px


def test_weighted_nms_averages_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    merged = weighted_nms(boxes, keypoints, np.array([0.9, 0.9, 0.8]), 0.3)
    assert len(merged) == 2
    assert np.allclose(merged[0][0], [0.5, 0.5, 10.5, 10.5])


def test_no_face_in_a_blank_image():
    assert BlazeFaceDetector().detect(np.full((480, 640, 3), 128, np.uint8)) == []


def upscaled(name: str, long_side: int = 3840) -> np.ndarray:
    """A test photo upscaled so its long side is long_side (a 4K still with big faces)."""
    image = load(name)
    scale = long_side / max(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)


def test_the_fine_pass_over_a_big_face_does_not_add_a_second_face():
    """Upscaled to 4K, the finer pass can see eyes and nose of this portrait as a small face
    inside the real one (IoU 0.17: NMS would keep both, and FaceMesh accepted it: the face was
    swapped twice)."""
    image = upscaled("dev/alexandria_ocasio-cortez_1.jpg", 2700)
    faces = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True)).detect(image)
    assert len(faces) == 1 and faces[0].width > 600


@pytest.mark.parametrize("detector_range", ["short", "full"])
def test_the_any_size_model_is_the_model_at_its_own_size(detector_range):
    """The fine pass's model, rewritten to take any input size, gives the shipped model's
    outputs at the shipped size (to float rounding), and decodes the group photo's faces at another size."""
    detector = BlazeFaceDetector(detector_range, settings=DetectorSettings(fine_pass=True))
    size = detector.spec.input_size
    image = load("obama_and_biden.jpg")
    tensor = detector._tensor(cv2.resize(image, (size, size)), size, size)
    any_size = detector._sessions.load(builtin_model_path(f"{detector.spec.model}_any_size"))
    for fixed, rewritten in zip(
        detector.session.run(None, {detector.input_name: tensor}),
        any_size.run(None, {detector.input_name: tensor}),
        strict=True,
    ):
        assert np.allclose(fixed, rewritten, rtol=1e-4, atol=1e-3)  # other kernels, same maths
    boxes, _, scores = detector._run_fine(Pyramid(image), (0, 0, image.shape[1], image.shape[0]))
    found = (boxes[:, :2] + boxes[:, 2:]) / 2
    for expected in (BIDEN_CENTER, OBAMA_CENTER):
        assert np.min(np.linalg.norm(found - expected, axis=1)) < 30, (expected, found)


def test_the_committed_any_size_models_are_the_rewrite_of_the_shipped_ones():
    from tools.make_any_size_models import DETECTORS, any_size_bytes

    for name in DETECTORS:
        assert builtin_model_path(f"{name}_any_size").read_bytes() == any_size_bytes(name), name


def test_the_fine_pass_finds_the_same_faces_on_one_thread_or_two():
    image = cv2.resize(load("obama_and_biden.jpg"), (2560, 1440), interpolation=cv2.INTER_LINEAR)
    one = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True, fine_threads=1)).detect(image)
    two = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True, fine_threads=2))
    for _ in range(3):
        faces = two.detect(image)
        assert len(faces) == len(one) >= 3
        assert all(np.allclose(a.box, b.box, atol=0.01) for a, b in zip(one, faces, strict=True))
