import numpy as np

from swapline.faces import BlazeFaceDetector, DetectorSettings, FaceMeshLandmarker, FaceTracker
from swapline.faces.landmarks import roi_from_landmarks
from swapline.faces.topology import face_mesh, inter_ocular_distance
from tests.conftest import load


def test_landmarks_fall_on_the_face(photos):
    mesh = face_mesh()
    for name, (_, face) in photos.items():
        assert face.landmarks.shape == (468, 3), name
        assert face.presence > 0.9, name
        xy = face.landmarks[:, :2]
        pad = 0.35 * face.width
        assert np.all(xy >= face.box[:2] - pad) and np.all(xy <= face.box[2:] + pad), name
        # eye rings land on the detector's eye keypoints (partial face: its left eye is cut)
        if name != "obama_partial_face.jpg":
            right = xy[mesh.right_eye].mean(axis=0)
            left = xy[mesh.left_eye].mean(axis=0)
            assert np.linalg.norm(right - face.keypoints[0]) < 0.1 * face.width, name
            assert np.linalg.norm(left - face.keypoints[1]) < 0.1 * face.width, name
        # the mouth is below the eyes, the chin (152) below the mouth
        assert xy[152, 1] > xy[13, 1] > xy[mesh.right_eye, 1].mean(), name


def test_tracking_roi_reproduces_the_landmarks(photos):
    landmarker = FaceMeshLandmarker()
    for name, (image, face) in photos.items():
        again, presence = landmarker.run(image, roi_from_landmarks(face.landmarks))
        error = np.linalg.norm(again[:, :2] - face.landmarks[:, :2], axis=1).mean()
        assert presence > 0.9 and error < 0.03 * inter_ocular_distance(face.landmarks), name


def test_presence_rejects_a_detector_false_positive():
    landmarker = FaceMeshLandmarker()
    image = load("biden.jpg")
    # the tiled detector also fires on Biden's wristwatch; FaceMesh's presence score says no
    faces = BlazeFaceDetector(settings=DetectorSettings(fine_pass=True)).detect(image)
    scores = sorted(landmarker.refine(image, f).presence for f in faces)
    assert scores[-1] > 0.9
    assert all(s < 0.5 for s in scores[:-1])


def test_tracker_detects_only_when_tracking_is_lost():
    image = load("obama.jpg")
    tracker = FaceTracker(BlazeFaceDetector("short"), FaceMeshLandmarker())
    for step in range(10):  # the face drifts right 4 px a frame
        frame = np.roll(image, 4 * step, axis=1)
        faces = tracker.update(frame)
        assert len(faces) == 1
    assert tracker.detections_run == 1
    track_id = faces[0].track_id
    blank = np.full_like(image, 90)
    assert tracker.update(blank) == []  # missed: the detector looked (and found nothing)...
    assert tracker.detections_run == 2 and len(tracker.tracks) == 1  # ...but the track is kept a while
    again = tracker.update(image)  # back where it was: the same track, no detection needed
    assert [f.track_id for f in again] == [track_id] and tracker.detections_run == 2
    for _ in range(tracker.settings.max_misses + 1):
        assert tracker.update(blank) == []
    assert tracker.tracks == []  # missed too long: dropped
    again = tracker.update(image)  # found again by a fresh detection, as a new track
    assert again and again[0].track_id != track_id
