"""`swapline bench liveness`: photo attacks are refused, live-like faces pass.

- Photo attacks: each photo is held up to a virtual camera and moved (swayed in the image plane,
  tilted, turned, both), rendered as a flat plane in perspective and run through the live
  path's face stream (BlazeFace, FaceMesh tracking, One Euro smoothing). Each clip goes through
  the full check (blink, then nod) and through the nod step alone, which isolates the flatness
  test from the blink test.
- Live faces: no camera can be shipped, so the photo's own FaceMesh landmarks (with depth) are
  animated: eyelids close and open, the head nods or turns in 3-D and is projected with
  perspective, with jitter. The check reads landmarks before smoothing, live and here alike.
Counts: an attack accepted is a false accept; a live face refused is a false reject.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from swapline.bench.clips import face_frame_matrix
from swapline.bench.report import ProgressCallback, make_table, no_progress
from swapline.errors import SwaplineError
from swapline.faces import BlazeFaceDetector, FaceAnalyser, FaceMeshLandmarker, FaceTracker
from swapline.faces.face import Face
from swapline.faces.selection import FaceSelector
from swapline.faces.smoothing import OneEuroSettings
from swapline.faces.stream import FaceStream
from swapline.faces.topology import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, face_mesh, inter_ocular_distance
from swapline.faces.tracker import face_from_landmarks
from swapline.io import read_image
from swapline.io.images import FORMATS
from swapline.trust.liveness import LivenessCheck, LivenessSettings, unsmoothed

SIZE = (640, 480)
FOCAL_PX = 700.0  # the virtual camera: a 200 px face at this focal length is about arm's length away

# motion name -> t -> (in-plane sway amount, pitch degrees, yaw degrees) of the held photo
Motion = Callable[[float], tuple[float, float, float]]
MOTIONS: dict[str, Motion] = {
    "sway": lambda t: (1.0, 0.0, 0.0),
    "tilt": lambda t: (0.3, 50.0 * math.sin(t * 1.5), 0.0),
    "turn": lambda t: (0.3, 0.0, 65.0 * math.sin(t * 1.5)),
    "wobble": lambda t: (0.6, 30.0 * math.sin(t * 1.1), 45.0 * math.sin(t * 1.7)),
}


def plane_homography(size: tuple[int, int], pitch: float, yaw: float, focal: float = FOCAL_PX) -> np.ndarray:
    """3x3 map of a flat picture facing the camera to the same picture turned about its centre."""
    w, h = size
    camera = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]])
    rotation = (
        cv2.Rodrigues(np.array([0.0, math.radians(yaw), 0.0]))[0]
        @ cv2.Rodrigues(np.array([math.radians(pitch), 0.0, 0.0]))[0]
    )
    turned = np.column_stack([rotation[:, 0], rotation[:, 1], [0, 0, 1]])  # plane points (X, Y, 0) + (0, 0, 1)
    return camera @ turned @ np.linalg.inv(camera)


def photo_attack_frames(
    photo: np.ndarray, face_box: np.ndarray, motion: Motion, fps: float, seconds: float, face_px: int = 200
) -> Iterator[np.ndarray]:
    """Frames of `photo` held up to the camera (face centred, face_px wide) and moved by `motion`."""
    for index in range(int(round(fps * seconds))):
        t = index / fps
        sway, pitch, yaw = motion(t)
        affine = np.vstack([face_frame_matrix(face_box, SIZE, face_px, t, sway), [0, 0, 1]])
        matrix = plane_homography(SIZE, pitch, yaw) @ affine
        yield cv2.warpPerspective(photo, matrix, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class LiveScript:
    """What an animated live face does: blinks (start s, length s), head moves (axis, start s, length s, degrees)."""

    name: str
    blinks: tuple[tuple[float, float], ...] = ()
    moves: tuple[tuple[str, float, float, float], ...] = ()
    seconds: float = 6.0
    fps: float = 30.0
    closure: float = 0.75  # how far the eyelids close at the bottom of a blink (1 = shut)
    jitter: float = 0.003  # landmark noise per frame, inter-ocular distances


LIVE_SCRIPTS = (
    LiveScript("blink, nod", blinks=((1.0, 0.2),), moves=(("pitch", 2.0, 1.2, 18.0),)),
    LiveScript("blink, turn", blinks=((1.0, 0.2),), moves=(("yaw", 2.0, 1.4, 25.0),)),
    LiveScript("quick blink, nod, 15 fps", blinks=((1.2, 0.14),), moves=(("pitch", 2.0, 1.0, 16.0),), fps=15.0),
    LiveScript("slow blink, slow turn", blinks=((2.0, 0.4),), moves=(("yaw", 3.0, 2.5, 20.0),), seconds=8.0),
    LiveScript("half blink, nod down", blinks=((1.0, 0.25),), moves=(("pitch", 2.0, 1.2, -16.0),), closure=0.6),
    LiveScript("blinks twice, turns left", blinks=((0.8, 0.2), (1.5, 0.2)), moves=(("yaw", 2.2, 1.4, -22.0),)),
)


def _pulse(t: float, start: float, length: float) -> float:
    """0 -> 1 -> 0 over [start, start + length]: a third closing, a third held, a third opening."""
    u = (t - start) / length
    if u <= 0 or u >= 1:
        return 0.0
    return min(1.0, 3 * u, 3 * (1 - u))


def _close_eyes(points: np.ndarray, amount: float) -> None:
    """Move each eyelid point toward its eye's corner line (in place); amount 1 shuts the eye."""
    mesh = face_mesh()
    corners = ((RIGHT_EYE_OUTER, 133), (LEFT_EYE_OUTER, 362))  # outer, inner
    for ring, (a, b) in zip((mesh.right_eye, mesh.left_eye), corners, strict=True):
        start, end = points[a, :2], points[b, :2]
        axis = (end - start) / max(float(np.linalg.norm(end - start)), 1e-6)
        lids = [i for i in ring if i not in (a, b)]
        offset = points[lids, :2] - start
        foot = start + np.outer(offset @ axis, axis)
        points[lids, :2] = foot + (1.0 - amount) * (points[lids, :2] - foot)


def live_landmarks(landmarks: np.ndarray, script: LiveScript, seed: int = 0) -> list[tuple[float, np.ndarray]]:
    """(time, (468, 3) landmarks) of the scripted live face, jittered, perspective-projected."""
    rng = np.random.default_rng(seed)
    base = landmarks.astype(np.float64)
    iod = inter_ocular_distance(base)
    focal = 6.0 * iod  # not the check's own assumption (8 IOD)
    centre = base.mean(axis=0)
    frames = []
    for index in range(int(round(script.fps * script.seconds))):
        t = index / script.fps
        points = base.copy()
        closed = max((_pulse(t, s, n) for s, n in script.blinks), default=0.0)
        if closed:
            _close_eyes(points, closed * script.closure)
        pitch, yaw = _angle(script, "pitch", t), _angle(script, "yaw", t)
        roll = 2.0 * math.sin(t * 0.8)  # a little sway, as a held head has
        rotation = cv2.Rodrigues(np.radians([pitch, yaw, 0.0]))[0]
        rotation = cv2.Rodrigues(np.radians([0.0, 0.0, roll]))[0] @ rotation
        turned = (points - centre) @ rotation.T
        depth = focal + turned[:, 2]
        xy = turned[:, :2] * (focal / depth)[:, None] + centre[:2] + [8.0 * math.sin(t * 1.1), 4.0 * math.sin(t * 0.7)]
        out = np.column_stack([xy, turned[:, 2]]) + rng.normal(0.0, script.jitter * iod, base.shape)
        frames.append((t, out.astype(np.float32)))
    return frames


def _angle(script: LiveScript, axis: str, t: float) -> float:
    """The head's angle about `axis` at time t: each move goes out to its angle and back."""
    return sum(
        degrees * math.sin(math.pi * min(1.0, max(0.0, (t - start) / length)))
        for name, start, length, degrees in script.moves
        if name == axis
    )


@dataclass
class Verdict:
    accepted: bool
    reason: str | None
    decided_at_s: float | None  # None: no verdict before the frames ran out


def check_faces(check: LivenessCheck, frames) -> Verdict:
    """Feed (time, faces) pairs until the check decides."""
    for t, faces in frames:
        state = check.update(faces, t)
        if state.passed or state.failed:
            return Verdict(state.passed, state.reason, round(t, 3))
    return Verdict(False, "no verdict", None)


def check_landmarks(check: LivenessCheck, frames: list[tuple[float, np.ndarray]]) -> Verdict:
    """A live script's landmarks, as one tracked face."""
    return check_faces(check, ((t, [face_from_landmarks(p, 1.0).replace(track_id=0)]) for t, p in frames))


def face_stream() -> FaceStream:
    """The live path's face stream (tracking, smoothing) with the built-in models, one face."""
    tracker = FaceTracker(BlazeFaceDetector(), FaceMeshLandmarker())
    return FaceStream(tracker, FaceSelector("largest", 1), OneEuroSettings(), 30.0, 3, 2)


def check_clip(check: LivenessCheck, frames: Iterator[np.ndarray], fps: float) -> Verdict:
    """Frames through the face stream into the check, stopping at the verdict."""
    stream = face_stream()

    def faces():
        for index, image in enumerate(frames):
            t = index / fps
            yield t, unsmoothed(stream, stream.update(image, t))

    return check_faces(check, faces())


def _photos(folder: Path) -> list[tuple[str, np.ndarray, Face]]:
    analyser = FaceAnalyser()
    found = []
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FORMATS):
        pixels = read_image(path).pixels
        faces = analyser.faces(pixels)
        if len(faces) == 1:  # one person per photo: an attack holds up one face
            found.append((path.name, pixels, faces[0]))
    if not found:
        raise SwaplineError(f"{folder}: no photo with exactly one face")
    return found


def run_liveness_bench(
    faces: Path,
    settings: LivenessSettings | None = None,
    fps: float = 15.0,
    motions: tuple[str, ...] = tuple(MOTIONS),
    on_progress: ProgressCallback = no_progress,
) -> dict:
    """Attack clips from every one-face photo in `faces`, live scripts from the same faces; verdicts and counts.

    fps: the attack clips' frame rate (each live script has its own).
    """
    settings = settings or LivenessSettings()
    unknown = [m for m in motions if m not in MOTIONS]
    if unknown:
        raise SwaplineError(f"motions must be some of {', '.join(MOTIONS)}, not {', '.join(unknown)}")
    photos = _photos(faces)
    nod_only = replace(settings, steps=("nod",))
    attack_seconds = settings.blink_timeout_s + settings.nod_timeout_s + 1.0
    total = len(photos) * (2 * len(motions) + len(LIVE_SCRIPTS))
    cases: list[dict] = []

    def record(kind: str, photo: str, what: str, live: bool, verdict: Verdict) -> None:
        cases.append({"kind": kind, "photo": photo, "case": what, "live": live, **asdict(verdict)})
        on_progress(len(cases), total)

    for seed, (name, pixels, face) in enumerate(photos):
        for motion in motions:
            for kind, chosen in (("photo attack", settings), ("photo attack, nod step only", nod_only)):
                frames = photo_attack_frames(pixels, face.box, MOTIONS[motion], fps, attack_seconds)
                record(kind, name, motion, False, check_clip(LivenessCheck(chosen), frames, fps))
        for script in LIVE_SCRIPTS:
            frames = live_landmarks(face.landmarks, script, seed)
            record(
                "live (animated landmarks)", name, script.name, True, check_landmarks(LivenessCheck(settings), frames)
            )
    return {"settings": asdict(settings), "fps": fps, "cases": cases, "summary": _summary(cases)}


def _summary(cases: list[dict]) -> list[dict]:
    rows = []
    for kind in dict.fromkeys(c["kind"] for c in cases):
        group = [c for c in cases if c["kind"] == kind]
        live = group[0]["live"]
        accepted = sum(c["accepted"] for c in group)
        rejected = len(group) - accepted
        times = [c["decided_at_s"] for c in group if c["decided_at_s"] is not None]
        rows.append(
            {
                "kind": kind,
                "cases": len(group),
                "true_accept": accepted if live else 0,
                "false_reject": rejected if live else 0,
                "true_reject": 0 if live else rejected,
                "false_accept": 0 if live else accepted,
                "median_decision_s": float(np.median(times)) if times else None,
                "reasons": _count(c["reason"] or "verified" for c in group),
            }
        )
    return rows


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def liveness_tables(result: dict) -> list:
    """Counts per kind of case, then the outcome of every case."""
    columns = ["cases", "true accept", "false reject", "true reject", "false accept", "median s to verdict"]
    counts = [
        [row["kind"], row["cases"], row["true_accept"], row["false_reject"], row["true_reject"], row["false_accept"]]
        + ["-" if row["median_decision_s"] is None else row["median_decision_s"]]
        for row in result["summary"]
    ]
    reasons = [[row["kind"], ", ".join(f"{k}: {v}" for k, v in row["reasons"].items())] for row in result["summary"]]
    detail = [
        [c["kind"], c["photo"], c["case"], "accepted" if c["accepted"] else "refused", c["reason"] or "verified"]
        for c in result["cases"]
    ]
    return [
        make_table(f"Liveness at {result['fps']:g} fps", ["kind", *columns], counts),
        make_table("Outcomes", ["kind", "outcomes"], reasons),
        make_table("Every case", ["kind", "photo", "case", "verdict", "why"], detail),
    ]
