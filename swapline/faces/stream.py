"""Faces over time, shared by video files and live: track, cut detection, hysteresis, select, smooth.

- A hard cut (the picture changes at once) restarts tracking and smoothing, so a face from the
  last shot is never pasted into the next one.
- A face that appears mid-shot is swapped only after `confirm_frames` sightings; a tracked face
  that is missed is held at its last place for up to `hold_frames` frames. Together they stop
  faces popping in and out in crowd shots.
- Landmarks of the chosen faces are smoothed with a One Euro filter per track.
- With a HandTracker, the hands in front of each chosen face are followed too (the swappers and
  the enhancer keep them in front); with a SkinTracker, each face's skin colour is learned.
"""

from __future__ import annotations

import time
from typing import Protocol

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.hands import HandTracker
from swapline.faces.selection import FaceSelector
from swapline.faces.smoothing import OneEuroFilter, OneEuroSettings
from swapline.faces.tracker import FaceTracker

_THUMB = (32, 32)


class SceneCutDetector:
    """Flags a frame whose coarse picture differs from the previous frame's by more than a threshold."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._previous: np.ndarray | None = None
        self.cuts = 0

    def is_cut(self, image: np.ndarray) -> bool:
        small = image[:: max(1, image.shape[0] // 128), :: max(1, image.shape[1] // 128)]  # a view, no copy
        gray = cv2.cvtColor(cv2.resize(small, _THUMB, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        previous, self._previous = self._previous, gray
        if previous is None or self.threshold <= 0:
            return False
        cut = float(cv2.absdiff(gray, previous).mean()) > self.threshold
        self.cuts += cut
        return cut

    def reset(self) -> None:
        self._previous = None


class FaceAnnotator(Protocol):
    """What a feed learns per tracked face over its frames and carries on Face (the swapper's
    skin colour, see swap.skin.SkinTracker): update per frame, in order; reset at a cut."""

    def update(self, image: np.ndarray, faces: list[Face]) -> list[Face]: ...

    def reset(self) -> None: ...


class FaceStream:
    """One video or camera feed: call update() per frame, in order, with the frame's time."""

    def __init__(
        self,
        tracker: FaceTracker,
        selector: FaceSelector,
        smoothing: OneEuroSettings,
        scene_cut: float,
        confirm_frames: int,
        hold_frames: int,
        hands: HandTracker | None = None,
        skin: FaceAnnotator | None = None,
    ):
        self.tracker = tracker
        self.selector = selector
        self.smoothing = smoothing
        self.cuts = SceneCutDetector(scene_cut)
        self.confirm_frames = confirm_frames
        self.hold_frames = hold_frames
        self.hands = hands
        self.skin = skin
        self._filters: dict[int, OneEuroFilter] = {}
        self._shown: dict[int, Face] = {}  # last face swapped per track: what a held track shows

    @property
    def _annotators(self) -> list[tuple[str, FaceAnnotator]]:
        """(stage name, annotator) in the order they run: hands first (found on the frame as
        shot), then the skin colour."""
        return [(name, a) for name, a in (("hands", self.hands), ("skin", self.skin)) if a is not None]

    def reset(self) -> None:
        """Start afresh (a new segment or shot): no tracks, no smoothing history."""
        self.cuts.reset()
        self._forget()

    def _forget(self) -> None:
        self.tracker.reset()
        self.selector.reset()
        self._filters.clear()
        self._shown.clear()
        for _, annotator in self._annotators:
            annotator.reset()

    def update(self, image: np.ndarray, time_s: float, timings: dict[str, float] | None = None) -> list[Face]:
        """The faces to swap in this frame, smoothed."""
        if self.cuts.is_cut(image):
            self._forget()
        found = self.tracker.update(image, timings)
        found_ids = {f.track_id for f in found}
        confirmed = {t.track_id for t in self.tracker.tracks if t.from_start or t.hits >= self.confirm_frames}
        # held: tracks missed in this frame but not yet dropped show their last swapped face
        held = [
            self._shown[t.track_id]
            for t in self.tracker.tracks
            if t.track_id not in found_ids and t.track_id in self._shown and t.misses <= self.hold_frames
        ]
        candidates = [f for f in found if f.track_id in confirmed] + held
        faces = []
        for face in self.selector.select(image, candidates):
            if face.track_id in found_ids:
                smoother = self._filters.setdefault(face.track_id, OneEuroFilter(self.smoothing))
                face = face.replace(landmarks=smoother(face.landmarks, time_s))
            faces.append(face)
        for stage, annotator in self._annotators:
            start = time.perf_counter()
            faces = annotator.update(image, faces)
            if timings is not None:
                timings[stage] = (time.perf_counter() - start) * 1000.0
        live_ids = {t.track_id for t in self.tracker.tracks}
        self._shown = {k: v for k, v in self._shown.items() if k in live_ids}
        self._shown.update({f.track_id: f for f in faces})
        for gone in set(self._filters) - live_ids:
            del self._filters[gone]
        return faces
