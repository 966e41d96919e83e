"""Video-rate face tracking: landmarks follow the face; the detector runs only when needed."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

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


def footprint(face: Face, margin: float) -> np.ndarray:
    """The box a swap of this face may read or write: its landmarks' (or box's) extent grown by
    margin x its larger side, plus 2 px for rounding."""
    if face.landmarks is not None:
        xy = face.landmarks[:, :2]
        lo, hi = xy.min(axis=0), xy.max(axis=0)
    else:
        lo, hi = face.box[:2], face.box[2:4]
    pad = float((hi - lo).max()) * margin + 2.0
    return np.array([lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad], np.float32)


def independent_groups(boxes: Sequence[np.ndarray]) -> list[list[int]]:
    """Indices grouped so that boxes of different groups never touch (connected components of
    overlap), each group in the original order: groups can run side by side, each in order, and
    the result is the serial one."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


T = TypeVar("T")
R = TypeVar("R")


def default_face_workers() -> int:
    """The cores, at most 4: per-face work in one frame rarely has more faces worth splitting."""
    return max(1, min(4, os.cpu_count() or 1))


class FaceWorkers:
    """A small thread pool for the per-face work of one frame (landmarks, swaps).

    ONNX Runtime and OpenCV release the GIL, so faces run side by side on the cores. The caller's
    thread works too, and every thread takes the next face not yet taken, so the faces spread
    evenly (eight faces on two threads: four each, not one and seven). The pool's threads start on
    first use. Size 1: inline. Safe to share between threads (the video job's track and compose
    threads share one).
    """

    def __init__(self, size: int | None = None):
        self.size = max(1, size if size is not None else default_face_workers())
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """fn over items, results in order; an exception propagates as from a loop (the first
        failing item's), once every thread has stopped."""
        if self.size == 1 or len(items) < 2:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.size - 1, thread_name_prefix="face")
            pool = self._pool
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(items)):
            todo.put(index)
        results: list = [None] * len(items)
        errors: dict[int, BaseException] = {}

        def work() -> None:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = fn(items[index])
                except BaseException as exc:  # noqa: BLE001 - re-raised below, in item order
                    errors[index] = exc

        helpers = [pool.submit(work) for _ in range(min(self.size, len(items)) - 1)]
        try:
            work()
        finally:
            for helper in helpers:
                helper.result()  # wait for all, even when one item failed
        if errors:
            raise errors[min(errors)]
        return results

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


@dataclass(frozen=True)
class TrackerSettings:
    max_faces: int = 1
    presence_threshold: float = 0.5
    # With fewer tracks than max_faces, look for new faces every this many frames.
    redetect_interval: int = 15
    # A track whose face is missed keeps its place (and id) this many frames: a detection that
    # finds the face there again continues the same track instead of starting a new one.
    max_misses: int = 2
    # With faces already tracked, the periodic look for more runs on a thread of its own (on a
    # copy of the frame) and what it finds joins on a later frame: a frame that has its faces
    # never waits for the detector (live: those frames made the latency tail). Off: every
    # frame's result follows from the frames before it alone (files, tests).
    detect_aside: bool = False


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

    def __init__(
        self,
        detector: Detector,
        landmarker: Landmarker,
        settings: TrackerSettings | None = None,
        workers: FaceWorkers | None = None,
    ):
        """workers: where the faces' landmark passes of one frame run (default: inline, one by one)."""
        self.detector = detector
        self.landmarker = landmarker
        self.settings = settings or TrackerSettings()
        self.workers = workers or FaceWorkers(1)
        self.tracks: list[Track] = []
        self._next_id = 0
        self._since_detection = 0
        self._fresh = True
        self.detections_run = 0
        self.light = False  # thermal light mode: look for new faces 4x less often
        self._pending: Future | None = None  # the detection running aside, if any

    def reset(self) -> None:
        """Forget every track (a new shot or a new segment); ids keep counting up."""
        self.tracks = []
        self._fresh = True
        self._pending = None  # found on the old shot: not wanted

    def wait_aside(self, timeout: float | None = None) -> None:
        """Until the detection running aside (if any) is done: its faces join at the next update."""
        pending = self._pending
        if pending is not None:
            wait([pending], timeout)

    def _detect_aside(self, frame: np.ndarray) -> None:
        """One detection on a short-lived thread of its own (a pool per stream would keep an idle
        thread alive for every live session ever opened)."""
        if self._pending is not None:
            return  # one at a time: the next look starts when this one has joined
        pending: Future = Future()
        copy = frame.copy()  # the frame goes on to be composed in place

        def run() -> None:
            try:
                pending.set_result(self.detector.detect(copy))
            except BaseException as exc:  # raised where the result is taken, as inline
                pending.set_exception(exc)

        self._pending = pending
        threading.Thread(target=run, name="detect-aside", daemon=True).start()

    def _measure(self, frame: np.ndarray, roi: Roi) -> Face | None:
        landmarks, presence = self.landmarker.run(frame, roi)
        if presence < self.settings.presence_threshold:
            return None
        return face_from_landmarks(landmarks, presence)

    def _measure_all(self, frame: np.ndarray, rois: list[Roi]) -> list[Face | None]:
        """Every ROI's landmark pass, side by side on the workers; in the order given."""
        return self.workers.map(lambda roi: self._measure(frame, roi), rois)

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
        # The landmark passes run side by side; what is kept is decided after, in track order,
        # exactly as a one-by-one loop would.
        measured = self._measure_all(frame, [track.roi for track in self.tracks])
        for track, face in zip(self.tracks, measured, strict=True):
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
        if found and self._pending is not None and self._pending.done():
            detected, self._pending = self._pending.result(), None
            self._add_detected(frame, detected, found)  # landmarked on this frame, where they are now
        wants_more = len(found) < self.settings.max_faces
        interval = self.settings.redetect_interval * (4 if self.light else 1)
        if found and wants_more and self._since_detection >= interval and self.settings.detect_aside:
            self._since_detection = 0
            self.detections_run += 1
            self._detect_aside(frame)
        elif not found or (wants_more and self._since_detection >= interval):
            self._since_detection = 0
            self.detections_run += 1
            self._pending = None  # nothing to follow: look now, on this frame
            detect_start = time.perf_counter()
            detected = self.detector.detect(frame)
            if timings is not None:
                timings["detect"] = (time.perf_counter() - detect_start) * 1000.0
            self._add_detected(frame, detected, found)
        self._fresh = False
        if timings is not None:
            timings["landmarks"] = (time.perf_counter() - start) * 1000.0 - timings.get("detect", 0.0)
        return found

    def _add_detected(self, frame: np.ndarray, detected: list[Face], found: list[Face]) -> None:
        """New tracks from detections, taken in the detector's order as a one-by-one loop would;
        the landmark passes of as many candidates as faces are still wanted run side by side."""
        pending = [c for c in detected if not self._overlaps(c, found, 0.5)]
        while pending and len(found) < self.settings.max_faces:
            wanted = self.settings.max_faces - len(found)
            batch, pending = pending[:wanted], pending[wanted:]
            batch = [c for c in batch if not self._overlaps(c, found, 0.5)]
            measured = self._measure_all(frame, [roi_from_detection(c) for c in batch])
            for candidate, face in zip(batch, measured, strict=True):
                if len(found) >= self.settings.max_faces:
                    return
                if self._overlaps(candidate, found, 0.5) or face is None or self._overlaps(face, found, 0.5):
                    continue
                found.append(self._revive(face).face)

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
