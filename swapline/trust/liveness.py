"""Liveness for live mode: the person blinks, then nods or turns, before anything is swapped.

Why these signals, all from the tracked face's 468 FaceMesh landmarks:

- Blink: a photo cannot blink. Eye openness is the eye aspect ratio (EAR) of the eyelid points,
  divided by the face's own height-to-width ratio (eye line to nose base over inter-ocular
  distance): tilting a photo squashes the eyes and the face alike, so it does not read as a blink.
- Nod or turn: head pose from a perspective fit (PnP) of the step's first landmarks, with their
  depth, to the current 2-D landmarks.
- Flatness: a printed or displayed face moves as one plane. While the head is turned, a
  homography (a plane) must not explain the 2-D landmark motion better than the rigid 3-D head
  does; a real head shows parallax (nose against brows and eye corners), a photo does not.

No wall clock inside: every update carries its own time, so tests and replays are exact.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from swapline.errors import SwaplineError
from swapline.faces.topology import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, face_mesh, inter_ocular_distance

if TYPE_CHECKING:
    from swapline.faces.face import Face
    from swapline.faces.stream import FaceStream
    from swapline.pipeline.frames import Frame
    from swapline.pipeline.stages import TrackStage

STEPS = ("blink", "nod")  # "nod" accepts a nod or a turn of the head

# EAR points (corner, upper, upper, corner, lower, lower) of the subject's right eye; the left
# eye's are their mirror images in the mesh.
_RIGHT_EAR = (33, 160, 158, 133, 153, 144)
_RIGHT_EYE_INNER, _LEFT_EYE_INNER = 133, 362
_NOSE_BASE = 2
# The face is "lost" (prompt: look at the camera) after this long without it.
_LOST_S = 0.5
# Focal length assumed for the pose fit, in inter-ocular distances (a webcam at arm's length).
_FOCAL_IOD = 8.0


@dataclass(frozen=True)
class LivenessSettings:
    """Thresholds of the check; angles in degrees, distances in inter-ocular distances (IOD)."""

    steps: tuple[str, ...] = STEPS
    blink_ratio: float = 0.7  # closed: both eyes' openness below this fraction of their open baseline
    reopen_ratio: float = 0.85  # open again: above this fraction (a blink is closed, then open)
    blink_closed_frames: int = 1  # frames closed before the reopening counts
    blink_max_s: float = 0.8  # last open frame to reopened: longer is not a blink (a photo tilted and back)
    blink_still_degrees: float = 5.0  # the head may turn this much while the eyes are closed
    baseline_frames: int = 30  # open-eye frames remembered for the baseline
    min_frames: int = 5  # open-eye frames needed before a blink can count
    nod_degrees: float = 12.0  # pitch change that makes a nod...
    turn_degrees: float = 15.0  # ...or yaw change that makes a turn
    return_fraction: float = 0.5  # "and back": within this fraction of that angle of the start pose
    blink_timeout_s: float = 8.0
    nod_timeout_s: float = 8.0
    parallax_degrees: float = 6.0  # frames turned at least this much are tested for flatness
    flat_residual: float = 0.006  # a turned frame whose homography residual (IOD) is below this is flat...
    flat_ratio: float = 1.0  # ...as is one a homography explains better than a rigid head (residual ratio)
    retry_after_s: float | None = 3.0  # show a failure this long, then start again (None: stay failed)
    relock_after_s: float = 2.0  # verified face gone this long: verify again

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if not self.steps or unknown:
            raise SwaplineError(f"liveness steps must be some of {', '.join(STEPS)}, not {self.steps!r}")
        if not 0 < self.blink_ratio < self.reopen_ratio <= 1:
            raise SwaplineError("liveness needs 0 < blink ratio < reopen ratio <= 1")
        if min(self.nod_degrees, self.turn_degrees, self.blink_timeout_s, self.nod_timeout_s) <= 0:
            raise SwaplineError("liveness angles and timeouts must be positive")
        if self.min_frames < 1 or self.baseline_frames < self.min_frames or self.blink_closed_frames < 1:
            raise SwaplineError("liveness needs 1 <= min frames <= baseline frames, closed frames >= 1")


@dataclass(frozen=True)
class LivenessState:
    """What the person is asked to do now, and the verdict once there is one."""

    step: str  # "blink", "nod", "verified" or "failed"
    prompt: str
    passed: bool = False
    failed: bool = False
    reason: str | None = None  # why it failed


# -- measurements ------------------------------------------------------------------------------


@functools.cache
def _ear_points() -> tuple[np.ndarray, np.ndarray]:
    right = np.array(_RIGHT_EAR, np.int32)
    return right, face_mesh().mirror[right]


@functools.cache
def rigid_points() -> np.ndarray:
    """Landmarks that keep their shape on a blinking, talking face: brows, eye corners, nose."""
    mesh = face_mesh()
    nose = np.array([1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327])
    corners = [RIGHT_EYE_OUTER, _RIGHT_EYE_INNER, LEFT_EYE_OUTER, _LEFT_EYE_INNER]
    return np.unique(np.concatenate([mesh.right_eyebrow, mesh.left_eyebrow, corners, nose])).astype(np.int32)


def _ear(xy: np.ndarray, idx: np.ndarray) -> float:
    p1, p2, p3, p4, p5, p6 = xy[idx]
    width = max(float(np.linalg.norm(p1 - p4)), 1e-6)
    return float(np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2.0 * width)


def eye_openness(landmarks: np.ndarray) -> tuple[float, float]:
    """(right, left) EAR over the face's height/width ratio: a blink lowers it, a tilted photo does not."""
    xy = landmarks[:, :2].astype(np.float64)
    axis = xy[LEFT_EYE_OUTER] - xy[RIGHT_EYE_OUTER]
    iod = max(float(np.linalg.norm(axis)), 1e-6)
    middle = xy[[RIGHT_EYE_OUTER, _RIGHT_EYE_INNER, LEFT_EYE_OUTER, _LEFT_EYE_INNER]].mean(axis=0)
    down = xy[_NOSE_BASE] - middle
    aspect = max(abs(float(axis[0] * down[1] - axis[1] * down[0])) / iod / iod, 1e-3)
    right, left = _ear_points()
    return _ear(xy, right) / aspect, _ear(xy, left) / aspect


@dataclass(frozen=True)
class PoseFit:
    """The current landmarks against the step's first ones, under two explanations of the motion."""

    pitch: float  # degrees, from the rigid 3-D fit
    yaw: float
    rigid_residual: float  # RMS, IOD: the first frame's 3-D points turned and projected (a head)
    flat_residual: float  # RMS, IOD: the first frame's 2-D points through a homography (a plane)

    @property
    def turned(self) -> float:
        return max(abs(self.pitch), abs(self.yaw))


def fit_pose(reference: np.ndarray, landmarks: np.ndarray) -> PoseFit:
    """Head pose of `landmarks` relative to `reference` (both (468, 3) pixels), and how flat the motion is."""
    idx = rigid_points()
    iod = max(inter_ocular_distance(reference), 1e-6)
    model = reference[idx].astype(np.float64)
    model -= model.mean(axis=0)
    seen = landmarks[idx, :2].astype(np.float64)
    centre = seen.mean(axis=0)
    focal = _FOCAL_IOD * iod
    camera = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]], np.float64)
    guess_t = np.array([[0.0], [0.0], [focal]])
    _, rvec, tvec = cv2.solvePnP(
        model, seen, camera, None, np.zeros((3, 1)), guess_t, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    projected = cv2.projectPoints(model, rvec, tvec, camera, None)[0][:, 0]
    rotation = cv2.Rodrigues(rvec)[0]
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    yaw = math.degrees(math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0))))
    before = reference[idx, :2].astype(np.float64)
    homography, _ = cv2.findHomography(before, seen, 0)
    planar = seen + np.inf if homography is None else cv2.perspectiveTransform(before[None], homography)[0]
    return PoseFit(pitch, yaw, _rms(projected - seen) / iod, _rms(planar - seen) / iod)


def _rms(d: np.ndarray) -> float:
    return float(np.sqrt((d**2).sum(axis=1).mean()))


# -- the steps ---------------------------------------------------------------------------------


class _Blink:
    """A blink: both eyes' openness drops below a fraction of their open baseline, then comes back.

    It must be quick and the head must hold still meanwhile: FaceMesh misreads the eyelids of a
    photo tilted far back, but that takes the whole face with it, and takes longer.
    """

    def __init__(self, s: LivenessSettings):
        self.s = s
        self.open: deque[tuple[float, float]] = deque(maxlen=s.baseline_frames)
        self.before: tuple[float, np.ndarray] | None = None  # the last open frame: time, landmarks
        self.closed = 0
        self.moved = False

    def feed(self, landmarks: np.ndarray, t: float) -> bool:
        s = self.s
        right, left = eye_openness(landmarks)
        if len(self.open) < s.min_frames:
            self.open.append((right, left))
            self.before = (t, landmarks)
            return False
        base_right, base_left = np.percentile(np.asarray(self.open), 75, axis=0)
        ratio = max(right / max(base_right, 1e-6), left / max(base_left, 1e-6))
        if ratio < s.blink_ratio:
            self.closed += 1
            if self.before is not None and fit_pose(self.before[1], landmarks).turned > s.blink_still_degrees:
                self.moved = True
            return False
        if ratio < s.reopen_ratio:
            return False
        quick = self.before is not None and t - self.before[0] <= s.blink_max_s
        blinked = self.closed >= s.blink_closed_frames and quick and not self.moved
        self.closed, self.moved = 0, False
        self.open.append((right, left))
        self.before = (t, landmarks)
        return blinked


class _Nod:
    """A nod or turn away from the step's first pose and back; and whether the turned frames were flat."""

    def __init__(self, s: LivenessSettings):
        self.s = s
        self.reference: np.ndarray | None = None
        self.axis: str | None = None  # "pitch" or "yaw" once the head has turned far enough
        self.flat: list[bool] = []

    def feed(self, landmarks: np.ndarray) -> bool:
        if self.reference is None:
            self.reference = landmarks
            return False
        pose = fit_pose(self.reference, landmarks)
        s = self.s
        if pose.turned >= s.parallax_degrees:
            self.flat.append(
                pose.flat_residual < s.flat_residual or pose.flat_residual < s.flat_ratio * pose.rigid_residual
            )
        if self.axis is None:
            if abs(pose.pitch) >= s.nod_degrees:
                self.axis = "pitch"
            elif abs(pose.yaw) >= s.turn_degrees:
                self.axis = "yaw"
            return False
        if self.axis == "pitch":
            return abs(pose.pitch) <= s.nod_degrees * s.return_fraction
        return abs(pose.yaw) <= s.turn_degrees * s.return_fraction

    @property
    def looks_flat(self) -> bool:
        """Most frames that turned moved as one plane."""
        return bool(self.flat) and sum(self.flat) * 2 >= len(self.flat)


_PROMPTS = {"blink": "Blink", "nod": "Now nod your head"}
_MISSING = {"blink": "no blink", "nod": "no nod or turn"}


class LivenessCheck:
    """Feed it each frame's faces and time; it says what to ask for and, in the end, passed or failed.

    The largest face is checked, and the same track is followed: if another face takes its place,
    the check starts again. Once passed, it stays passed while that face is in view.
    """

    def __init__(self, settings: LivenessSettings | None = None):
        self.settings = settings or LivenessSettings()
        self.reset()

    def reset(self) -> None:
        """Start again from the first step."""
        self._index = 0
        self._track: int | None = None
        self._started: float | None = None  # when the current step began
        self._seen: float | None = None  # when the checked face was last seen
        self._failed_at: float | None = None
        self._reason: str | None = None
        self._lost = False
        self._new_step()

    def _new_step(self) -> None:
        self._blink = _Blink(self.settings)
        self._nod = _Nod(self.settings)

    @property
    def passed(self) -> bool:
        return self._index >= len(self.settings.steps)

    @property
    def failed(self) -> bool:
        return self._failed_at is not None

    @property
    def verified_track(self) -> int | None:
        """The track id of the face that passed (None before, or for faces without track ids)."""
        return self._track if self.passed else None

    @property
    def state(self) -> LivenessState:
        if self.failed:
            return LivenessState("failed", f"Failed: {self._reason}", failed=True, reason=self._reason)
        if self.passed:
            return LivenessState("verified", "Verified", passed=True)
        step = self.settings.steps[self._index]
        return LivenessState(step, "Look at the camera" if self._lost else _PROMPTS[step])

    def _pick(self, faces: list[Face]) -> Face | None:
        usable = [f for f in faces if f.landmarks is not None]
        same = [f for f in usable if self._track is not None and f.track_id == self._track]
        return same[0] if same else max(usable, key=lambda f: f.area, default=None)

    def _fail(self, t: float, reason: str) -> None:
        self._failed_at, self._reason = t, reason

    def update(self, faces: list[Face], t: float) -> LivenessState:
        """One frame: its faces (with landmarks) and its capture time in seconds."""
        s = self.settings
        if self._failed_at is not None:
            if s.retry_after_s is None or t - self._failed_at < s.retry_after_s:
                return self.state
            self.reset()
        face = self._pick(faces)
        other = face is not None and self._track is not None and face.track_id not in (None, self._track)
        if self.passed:
            if face is not None and not other:
                self._seen = t
            elif self._seen is not None and t - self._seen > s.relock_after_s:
                self.reset()  # the verified face is gone: whoever is there now starts afresh
            if self.passed:
                return self.state
        elif other:  # someone (or something) else took the face's place: start again...
            started = self._started if self._index == 0 else None
            self.reset()
            self._started = started  # ...on the same clock, if still at the first step
        if face is None:
            self._lost = self._seen is None or t - self._seen >= _LOST_S
            self._check_timeout(t)
            return self.state
        self._lost = False
        self._track, self._seen = face.track_id, t
        if self._started is None:
            self._started = t  # the clock of a step runs from the first face seen
        step = s.steps[self._index]
        if step == "blink" and self._blink.feed(face.landmarks, t):
            self._advance(t)
        elif step == "nod" and self._nod.feed(face.landmarks):
            if self._nod.looks_flat:
                self._fail(t, "looks like a photo")
            else:
                self._advance(t)
        else:
            self._check_timeout(t)
        return self.state

    def _advance(self, t: float) -> None:
        self._index += 1
        self._started = t
        self._new_step()

    def _check_timeout(self, t: float) -> None:
        if self._started is None or self.passed:
            return
        step = self.settings.steps[self._index]
        limit = self.settings.blink_timeout_s if step == "blink" else self.settings.nod_timeout_s
        if t - self._started < limit:
            return
        if step == "nod" and self._nod.looks_flat:
            self._fail(t, "looks like a photo")
        else:
            self._fail(t, f"{_MISSING[step]} in {limit:g} s")


# -- the live stage ----------------------------------------------------------------------------


def unsmoothed(stream: FaceStream, chosen: list[Face]) -> list[Face]:
    """The tracker's own faces (landmarks before smoothing) for the faces the stream chose this frame."""
    ids = {f.track_id for f in chosen}
    return [t.face for t in stream.tracker.tracks if t.misses == 0 and t.track_id in ids]


_COLOURS = {"verified": (80, 200, 80), "failed": (60, 60, 230)}


def draw_prompt(image: np.ndarray, state: LivenessState) -> None:
    """The prompt in a dark band near the top of the frame (in place; ASCII only)."""
    h, w = image.shape[:2]
    scale = max(0.4, min(h, w) / 480 * 0.8)
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(state.prompt, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = max(4, (w - tw) // 2), max(th + 8, int(h * 0.14))
    pad = max(4, th // 2)
    cv2.rectangle(image, (x - pad, y - th - pad), (x + tw + pad, y + base + pad), (0, 0, 0), -1)
    colour = _COLOURS.get(state.step, (255, 255, 255))
    cv2.putText(image, state.prompt, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


class LivenessStage:
    """Wraps the track stage: until the check passes, no face goes on to be swapped and the prompt is drawn.

    Once passed, only the verified face is swapped: a photo held up beside it stays as it is.
    The check reads the tracker's own landmarks for the faces chosen this frame, before the
    stream's smoothing, which would flatten a quick blink. The compose stage after it still runs
    on every frame (with no faces until verified), so the AI-generated label is stamped on every
    frame, prompts included.
    """

    def __init__(self, inner: TrackStage, check: LivenessCheck):
        self.inner = inner
        self.check = check
        self.name = inner.name

    def process(self, frame: Frame) -> Frame:
        frame = self.inner.process(frame)
        state = self.check.update(unsmoothed(self.inner.stream, frame.faces), frame.captured_at)
        if state.passed:
            verified = self.check.verified_track
            frame.faces = [f for f in frame.faces if verified is None or f.track_id == verified]
        else:
            frame.faces = []
            draw_prompt(frame.image, state)
        return frame
