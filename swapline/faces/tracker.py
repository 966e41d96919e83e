"""Video-rate face tracking: landmarks follow the face; the detector runs only when needed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from swapline.faces.detector import BlazeFaceDetector, _iou
from swapline.faces.face import Face
from swapline.faces.landmarks import FaceMeshLandmarker, Roi, roi_from_detection, roi_from_landmarks
from swapline.faces.topology import face_mesh

# Landmarks standing in for BlazeFace's six keypoints when a face comes from tracking.
_NOSE_TIP, _UPPER_LIP, _LOWER_LIP, _RIGHT_CHEEK, _LEFT_CHEEK = 1, 13, 14, 234, 454


def face_from_landmarks(landmarks: np.ndarray, presence: float) -> Face:
    """A Face whose box and keypoints are derived from its landmarks."""
    mesh = face_mesh()
    xy = landmarks[:, :2]
    box = np.concatenate([xy.min(axis=0), xy.max(axis=0)]).astype(np.float32)
    keypoints = np.stack(
        [
            xy[mesh.right_eye].mean(axis=0),
            xy[mesh.left_eye].mean(axis=0),
            xy[_NOSE_TIP],
            (xy[_UPPER_LIP] + xy[_LOWER_LIP]) / 2,
            xy[_RIGHT_CHEEK],
            xy[_LEFT_CHEEK],
        ]
    ).astype(np.float32)
    return Face(box=box, score=presence, keypoints=keypoints, landmarks=landmarks, presence=presence)


@dataclass(frozen=True)
class TrackerSettings:
    max_faces: int = 1
    presence_threshold: float = 0.5
    # With fewer tracks than max_faces, look for new faces every this many frames.
    redetect_interval: int = 15


class FaceTracker:
    """Keeps one ROI per tracked face between frames."""

    def __init__(
        self,
        detector: BlazeFaceDetector,
        landmarker: FaceMeshLandmarker,
        settings: TrackerSettings | None = None,
    ):
        self.detector = detector
        self.landmarker = landmarker
        self.settings = settings or TrackerSettings()
        self._rois: list[Roi] = []
        self._ids: list[int] = []
        self._next_id = 0
        self._since_detection = 0
        self.detections_run = 0
        self.light = False  # thermal light mode: look for new faces 4x less often

    def reset(self) -> None:
        self._rois = []
        self._ids = []

    def _measure(self, frame: np.ndarray, roi: Roi) -> Face | None:
        landmarks, presence = self.landmarker.run(frame, roi)
        if presence < self.settings.presence_threshold:
            return None
        return face_from_landmarks(landmarks, presence)

    def update(self, frame: np.ndarray, timings: dict[str, float] | None = None) -> list[Face]:
        """Faces in this frame; timings (if given) receive "landmarks" and "detect" milliseconds.

        Each face carries a track_id that stays the same while the face is tracked; a face
        found again after being lost gets a new id.
        """
        start = time.perf_counter()
        faces = []
        for roi, track_id in zip(self._rois, self._ids, strict=True):
            face = self._measure(frame, roi)
            if face is None:
                continue
            if faces and np.max(_iou(face.box, np.stack([f.box for f in faces]))) > 0.5:
                continue  # two tracks converged on one face: keep the older
            faces.append(face.replace(track_id=track_id))
        self._since_detection += 1
        wants_more = len(faces) < self.settings.max_faces
        interval = self.settings.redetect_interval * (4 if self.light else 1)
        if not faces or (wants_more and self._since_detection >= interval):
            self._since_detection = 0
            self.detections_run += 1
            detect_start = time.perf_counter()
            found_faces = self.detector.detect(frame)
            if timings is not None:
                timings["detect"] = (time.perf_counter() - detect_start) * 1000.0
            for found in found_faces:
                if len(faces) >= self.settings.max_faces:
                    break
                if faces and np.max(_iou(found.box, np.stack([f.box for f in faces]))) > 0.3:
                    continue
                tracked = self._measure(frame, roi_from_detection(found))
                if tracked is not None:
                    faces.append(tracked.replace(track_id=self._next_id))
                    self._next_id += 1
        self._rois = [roi_from_landmarks(f.landmarks) for f in faces]
        self._ids = [f.track_id for f in faces]
        if timings is not None:
            timings["landmarks"] = (time.perf_counter() - start) * 1000.0 - timings.get("detect", 0.0)
        return faces
