"""Video-rate face tracking: landmarks follow the face; the detector runs only when needed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from swapline.faces.face import Face
from swapline.faces.landmarks import Roi, roi_from_detection, roi_from_landmarks
from swapline.faces.topology import face_mesh
from swapline.protocols import Detector, Landmarker

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


def overlap_of_smaller(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over the smaller of the two areas, box against each of boxes."""
    inter_w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter_w * inter_h / np.maximum(np.minimum(area, areas), 1e-9)


@dataclass(frozen=True)
class TrackerSettings:
    max_faces: int = 1
    presence_threshold: float = 0.5
    # With fewer tracks than max_faces, look for new faces every this many frames.
    redetect_interval: int = 15
    # A track whose face is missed keeps its place (and id) this many frames: a detection that
    # finds the face there again continues the same track instead of starting a new one.
    max_misses: int = 2


@dataclass
class Track:
    """One face followed over frames: where to look next, and how sure we are of it."""

    track_id: int
    roi: Roi
    face: Face
    hits: int = 1  # frames in which the face was found
    misses: int = 0  # frames missed in a row
    from_start: bool = False  # present on the first frame after a reset (a shot's start)


class FaceTracker:
    """Keeps one track per face between frames; any Detector and Landmarker will do."""

    def __init__(self, detector: Detector, landmarker: Landmarker, settings: TrackerSettings | None = None):
        self.detector = detector
        self.landmarker = landmarker
        self.settings = settings or TrackerSettings()
        self.tracks: list[Track] = []
        self._next_id = 0
        self._since_detection = 0
        self._fresh = True
        self.detections_run = 0
        self.light = False  # thermal light mode: look for new faces 4x less often

    def reset(self) -> None:
        """Forget every track (a new shot or a new segment); ids keep counting up."""
        self.tracks = []
        self._fresh = True

    def _measure(self, frame: np.ndarray, roi: Roi) -> Face | None:
        landmarks, presence = self.landmarker.run(frame, roi)
        if presence < self.settings.presence_threshold:
            return None
        return face_from_landmarks(landmarks, presence)

    @staticmethod
    def _overlaps(face: Face, others: list[Face], threshold: float) -> bool:
        """Whether face is one of others: measured as intersection over the smaller box, so a
        detector's tight box inside a landmark box (IoU can be under 0.3) still counts as the
        same face: one face, one track."""
        if not others:
            return False
        return float(np.max(overlap_of_smaller(face.box, np.stack([f.box for f in others])))) > threshold

    def update(self, frame: np.ndarray, timings: dict[str, float] | None = None) -> list[Face]:
        """Faces found in this frame; timings (if given) receive "landmarks" and "detect" ms.

        Each face carries a track_id that stays the same while the face is tracked, also
        across a few missed frames; `tracks` has every live track, missed ones included.
        """
        start = time.perf_counter()
        found: list[Face] = []
        kept: list[Track] = []
        for track in self.tracks:
            face = self._measure(frame, track.roi)
            if face is not None and self._overlaps(face, found, 0.5):
                continue  # two tracks converged on one face: keep the older
            if face is None:
                track.misses += 1
                if track.misses <= self.settings.max_misses:
                    kept.append(track)
                continue
            track.face, track.hits, track.misses = face.replace(track_id=track.track_id), track.hits + 1, 0
            track.roi = roi_from_landmarks(face.landmarks)
            found.append(track.face)
            kept.append(track)
        self.tracks = kept
        self._since_detection += 1
        wants_more = len(found) < self.settings.max_faces
        interval = self.settings.redetect_interval * (4 if self.light else 1)
        if not found or (wants_more and self._since_detection >= interval):
            self._since_detection = 0
            self.detections_run += 1
            detect_start = time.perf_counter()
            detected = self.detector.detect(frame)
            if timings is not None:
                timings["detect"] = (time.perf_counter() - detect_start) * 1000.0
            for candidate in detected:
                if len(found) >= self.settings.max_faces:
                    break
                if self._overlaps(candidate, found, 0.5):
                    continue
                face = self._measure(frame, roi_from_detection(candidate))
                if face is None or self._overlaps(face, found, 0.5):
                    continue
                track = self._revive(face)
                found.append(track.face)
        self._fresh = False
        if timings is not None:
            timings["landmarks"] = (time.perf_counter() - start) * 1000.0 - timings.get("detect", 0.0)
        return found

    def _revive(self, face: Face) -> Track:
        """The missed track this face belongs to (same place), or a new track."""
        missed = [t for t in self.tracks if t.misses > 0 and overlap_of_smaller(face.box, t.face.box[None])[0] > 0.5]
        if missed:
            track = missed[0]
            track.face, track.hits, track.misses = face.replace(track_id=track.track_id), track.hits + 1, 0
            track.roi = roi_from_landmarks(face.landmarks)
            return track
        track = Track(self._next_id, roi_from_landmarks(face.landmarks), face.replace(track_id=self._next_id))
        track.from_start = self._fresh
        self._next_id += 1
        self.tracks.append(track)
        return track
