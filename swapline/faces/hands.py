"""Hands in front of a face: MediaPipe's palm detector and hand landmarks, looked for around a face.

A hand is skin-coloured, so the colour models of swap/skin.py cannot tell it from the face it
covers; its shape can. The palm detector runs on a square around the face (twice the face's
size, scaled to 128 px: a hand over a face fills a good part of it), and each palm found is
refined into 21 landmarks, from which `hands_mask` draws the hand. `HandFinder` is stateless
(a still; the same frame gives the same hands on any thread). `HandTracker` follows hands over
a feed's frames as FaceMesh follows faces: the landmarks of the last frame give the next
frame's hand square, and the palm search runs only every few frames of a face's track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from swapline.faces.detector import halve_down_to
from swapline.faces.face import Face
from swapline.faces.landmarks import Roi
from swapline.models import builtin_model_path
from swapline.runtime import SessionFactory, shared_sessions
from swapline.runtime.tensors import planar

PALM_INPUT = 128  # the detector's declared 192 costs 12.4 ms on one core, 128 costs 5.9
HAND_INPUT = 224
REGION_SCALE = 2.0  # the square searched, as a multiple of the face's size
# A feed's searches alternate these: on the test hand over the 50 faces of tests/data at two
# sizes, 2.0 finds 94 of 100, 1.5 finds 90, the two together 96.
FEED_REGION_SCALES = (2.0, 1.5)
MIN_PALM_SCORE = 0.5  # MediaPipe's own thresholds, for palms and for hand presence
MIN_PRESENCE = 0.5
NMS_IOU = 0.3
# MediaPipe's hand topology: wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20
FINGERS = ((0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (0, 17, 18, 19, 20))
PALM = (0, 1, 2, 5, 9, 13, 17)


@dataclass(frozen=True, eq=False)
class Hand:
    """One hand: 21 landmarks (x, y in image pixels, MediaPipe's order) and its presence score."""

    points: np.ndarray
    presence: float

    @property
    def palm_length(self) -> float:
        return palm_length(self.points)


def palm_length(points: np.ndarray) -> float:
    """Wrist to the middle finger's knuckle, or across the knuckles for a hand seen edge-on."""
    return float(max(np.linalg.norm(points[9] - points[0]), np.linalg.norm(points[17] - points[5]) * 1.2))


def palm_anchors(size: int) -> np.ndarray:
    """(N, 2) anchor centres (0..1) of the palm detector at a size x size input: MediaPipe's SSD
    options for it (strides 8, 16, 16, 16, one fixed-size anchor pair per layer) give 2 anchors
    per cell at stride 8 and 6 per cell at stride 16, cells row by row."""
    parts = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = math.ceil(size / stride)
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 1, 2)
        parts.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(parts).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (cx, cy, w, h) box with many."""
    lo = np.maximum(box[:2] - box[2:] / 2, boxes[:, :2] - boxes[:, 2:] / 2)
    hi = np.minimum(box[:2] + box[2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    return inter / np.maximum(np.prod(box[2:]) + np.prod(boxes[:, 2:], axis=1) - inter, 1e-9)


def decode_palms(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, size: int) -> list[np.ndarray]:
    """Palms from the detector's outputs: each a (9, 2) array (box centre, box size, then the 7
    palm keypoints: wrist, knuckles, thumb), in 0..1 of the input, merged by MediaPipe's
    weighted non-maximum suppression (overlapping boxes averaged by score)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= MIN_PALM_SCORE)
    if not len(keep):
        return []
    values = raw.reshape(-1, 18)[keep] / size
    values[:, [0, 1]] += anchors[keep]
    values[:, 4:] += np.tile(anchors[keep], 7)
    scores = scores[keep]
    order = np.argsort(-scores)
    values, scores = values[order], scores[order]
    palms = []
    while len(values):
        group = _iou(values[0, :4], values[:, :4]) > NMS_IOU
        weights = scores[group] / scores[group].sum()
        palms.append((weights @ values[group]).reshape(9, 2).astype(np.float32))
        values, scores = values[~group], scores[~group]
    return palms


def roi_from_palm(palm: np.ndarray) -> Roi:
    """The hand's square, as MediaPipe makes it from a palm (in pixels): turned so the wrist ->
    middle knuckle line points up, moved half a palm toward the fingers, 2.6 times its size."""
    (cx, cy), (w, h), wrist, middle = palm[0], palm[1], palm[2], palm[4]
    d = middle - wrist
    angle = math.pi / 2 + math.atan2(float(d[1]), float(d[0]))
    cx, cy = cx + 0.5 * h * math.sin(angle), cy - 0.5 * h * math.cos(angle)
    return Roi(float(cx), float(cy), float(max(w, h)) * 2.6, angle)


class HandFinder:
    """Finds hands near a face: palm detection on the square around it, then landmarks per palm."""

    def __init__(self, sessions: SessionFactory | None = None, palm_input: int = PALM_INPUT):
        self.sessions = sessions or shared_sessions()
        self.palm_session = self.sessions.load(builtin_model_path("palm_detection_lite_any_size"))
        self._hand_session = None
        self.palm_input = palm_input
        self.anchors = palm_anchors(palm_input)

    @property
    def hand_session(self):
        """The landmark model, loaded when a first palm is found: a feed without hands never
        holds it (its weights and buffers, ~5 MB of a 4K job's peak)."""
        if self._hand_session is None:
            self._hand_session = self.sessions.load(builtin_model_path("hand_landmark_lite"))
        return self._hand_session

    def warm_up(self) -> None:
        """Both models' first runs (they allocate and plan) before a live feed's frames flow: the
        first frame with a hand then costs what the next ones do."""
        for session, size in ((self.palm_session, self.palm_input), (self.hand_session, HAND_INPUT)):
            session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, size, size), np.float32)})

    def around_face(
        self, image: np.ndarray, face: Face, region_scale: float = REGION_SCALE, known: list[Hand] | None = None
    ) -> list[Hand]:
        """Hands round a face: the square of region_scale x its landmarks' (or box's) larger side."""
        xy = face.landmarks[:, :2] if face.landmarks is not None else face.box.reshape(2, 2)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        centre = (lo + hi) / 2 if face.landmarks is None else xy.mean(axis=0)
        return self.around(image, centre, float((hi - lo).max()), region_scale, known)

    def around(
        self,
        image: np.ndarray,
        centre: np.ndarray,
        face_size: float,
        region_scale: float = REGION_SCALE,
        known: list[Hand] | None = None,
    ) -> list[Hand]:
        """Hands whose palm lies in the square of region_scale x face_size around centre; a palm
        on one of the known hands (already followed) is not looked at again."""
        side = face_size * region_scale
        origin = np.asarray(centre, np.float32) - side / 2
        region = _square(image, origin, side, self.palm_input)
        tensor = planar(region, 1.0 / 255.0)
        outputs = self.palm_session.run(None, {self.palm_session.get_inputs()[0].name: tensor})
        raw, logits = sorted(outputs, key=lambda a: a.shape[-1], reverse=True)
        hands: list[Hand] = []
        for palm in decode_palms(raw, logits, self.anchors, self.palm_input):
            pixels = palm * side
            pixels[[0, *range(2, 9)]] += origin
            if any(_inside(pixels[0], hand.points) for hand in (*(known or ()), *hands)):
                continue  # a second box on a hand already found (a finger, the back of the palm)
            hand = self.landmarks(image, roi_from_palm(pixels))
            if hand is not None:
                hands.append(hand)
        return hands

    def landmarks(self, image: np.ndarray, roi: Roi) -> Hand | None:
        """The hand's 21 landmarks in the ROI, or None where the model sees no hand there (or the
        ROI has collapsed: a degenerate palm box, landmarks all on one point)."""
        if not roi.side >= 2.0:  # also NaN
            return None
        matrix = roi.crop_matrix(HAND_INPUT)
        crop = cv2.warpAffine(image, matrix, (HAND_INPUT, HAND_INPUT), flags=cv2.INTER_LINEAR)
        tensor = planar(crop, 1.0 / 255.0)
        points, presence, _handedness, _world = self.hand_session.run(
            None, {self.hand_session.get_inputs()[0].name: tensor}
        )
        score = float(presence.reshape(-1)[0])
        if score < MIN_PRESENCE:
            return None
        inverse = cv2.invertAffineTransform(matrix)
        xy = points.reshape(21, 3)[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        return Hand(xy.astype(np.float32), score)


def _inside(point: np.ndarray, points: np.ndarray) -> bool:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return bool((point >= lo).all() and (point <= hi).all())


def roi_from_hand(points: np.ndarray) -> Roi:
    """The next frame's hand square from this frame's landmarks, as MediaPipe makes it: turned
    so the wrist -> middle knuckle line points up, around the landmarks' extent in that frame,
    twice its longer side, moved a tenth toward the fingers."""
    d = points[9] - points[0]
    angle = math.pi / 2 + math.atan2(float(d[1]), float(d[0]))
    c, s = math.cos(angle), math.sin(angle)
    u = points[:, 0] * c + points[:, 1] * s
    v = -points[:, 0] * s + points[:, 1] * c
    side = float(max(np.ptp(u), np.ptp(v))) * 2.0
    mu, mv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2 - 0.1 * side
    return Roi(float(mu * c - mv * s), float(mu * s + mv * c), side, angle)


@dataclass
class _Followed:
    hands: list[Hand] = field(default_factory=list)
    searched: int | None = None  # the tracker's frame number of the last palm search round the face
    searches: int = 0  # palm searches round the face so far (they alternate FEED_REGION_SCALES)


class HandTracker:
    """Hands in front of each tracked face over a feed's frames (call update per frame, in order).

    Every frame, the hands of the last frame are followed by the landmark model alone on the
    square their landmarks give (~4 ms a hand, nothing without hands): a hand once found stays
    while the model still sees it, whatever the palm detector makes of the frame. The palm
    detector also looks round a face for new hands (~6 ms) on its first frame and every
    search_every-th frame after, on squares of FEED_REGION_SCALES in turn; at most
    searches_per_frame faces a frame, the longest-waiting first, so that many faces take turns
    instead of all being searched on one frame (a frame's cost stays bounded; with N faces a new
    hand is found within max(search_every, N / searches_per_frame) frames). The result follows
    from the frames in order alone: a video's output does not depend on threads or timing."""

    def __init__(self, finder: HandFinder, search_every: int = 3, searches_per_frame: int = 1):
        self.finder = finder
        self.search_every = max(1, search_every)
        self.searches_per_frame = max(1, searches_per_frame)
        self._by_track: dict[int | None, _Followed] = {}
        self._frame = 0

    def reset(self) -> None:
        self._by_track.clear()
        self._frame = 0

    def _to_search(self, followed: list[_Followed]) -> set[int]:
        """Indices of the faces whose turn it is: never searched first, then the longest waiting."""
        due = [i for i, f in enumerate(followed) if f.searched is None or self._frame - f.searched >= self.search_every]
        due.sort(key=lambda i: -1 if followed[i].searched is None else followed[i].searched)
        return set(due[: self.searches_per_frame])

    def update(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """faces with their hands set (a tuple, empty where none)."""
        followed = [self._by_track.setdefault(face.track_id, _Followed()) for face in faces]
        search = self._to_search(followed)
        out = []
        for index, (face, track) in enumerate(zip(faces, followed, strict=True)):
            found = (self.finder.landmarks(image, roi_from_hand(hand.points)) for hand in track.hands)
            hands = [hand for hand in found if hand is not None]
            if index in search:
                scale = FEED_REGION_SCALES[track.searches % len(FEED_REGION_SCALES)]
                hands += self.finder.around_face(image, face, scale, known=hands)
                track.searched, track.searches = self._frame, track.searches + 1
            track.hands = hands
            out.append(face.replace(hands=tuple(hand.points for hand in hands)))
        seen = {face.track_id for face in faces}
        self._by_track = {k: v for k, v in self._by_track.items() if k in seen}
        self._frame += 1
        return out


def _square(image: np.ndarray, origin: np.ndarray, side: float, size: int) -> np.ndarray:
    """The axis-aligned square (origin, side) of image scaled to size x size (area-averaged,
    black where it leaves the image)."""
    out = np.zeros((size, size, 3), np.uint8)
    scale = size / side
    h, w = image.shape[:2]
    x0, y0 = max(0, math.ceil(origin[0])), max(0, math.ceil(origin[1]))
    x1, y1 = min(w, math.floor(origin[0] + side)), min(h, math.floor(origin[1] + side))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    ox, oy = (max(0, round((v - o) * scale)) for v, o in ((x0, origin[0]), (y0, origin[1])))
    dw, dh = min(size - ox, round((x1 - x0) * scale)), min(size - oy, round((y1 - y0) * scale))
    if dw < 1 or dh < 1:
        return out
    # exact halvings first: INTER_AREA at a non-integer ratio costs ~1.5 ms from a 4K frame's face
    part = halve_down_to(image[y0:y1, x0:x1, :3], dw, dh)
    out[oy : oy + dh, ox : ox + dw] = cv2.resize(part, (dw, dh), interpolation=cv2.INTER_AREA)
    return out


def hands_mask(hands: list[np.ndarray], shape: tuple[int, int], finger_width: float = 1 / 3.5) -> np.ndarray:
    """float32 0..1 mask of the hands (each (21, 2) landmarks in this image's pixels): fingers as
    round-capped strokes finger_width x the palm's length wide (generous: the hand's edge lies
    inside), the palm as a filled polygon with a wider rim, and the wrist on toward the forearm (a hand over a
    face comes with its arm); soft outside that."""
    mask = np.zeros(shape, np.uint8)
    longest = 0.0
    for points in hands:
        length = palm_length(points)
        longest = max(longest, length)
        # each fingertip's landmark lies short of the nail's end: the last bone drawn 40% longer
        tips = points[[4, 8, 12, 16, 20]]
        points = np.vstack([points, tips + 0.4 * (tips - points[[3, 7, 11, 15, 19]])])
        pts = np.round(points * 4).astype(np.int32)  # 2 fractional bits
        cv2.fillConvexPoly(mask, cv2.convexHull(pts[list(PALM)]), 255, cv2.LINE_AA, 2)
        width = max(2, round(length * finger_width))
        fingers = [pts[[*chain, 21 + k]] for k, chain in enumerate(FINGERS)]
        cv2.polylines(mask, fingers, False, 255, width, cv2.LINE_AA, 2)
        # the palm's edges bulge past the knuckle-wrist polygon (most below the little finger)
        rim = max(2, round(length * 0.4))
        cv2.polylines(mask, [pts[list(PALM)]], True, 255, rim, cv2.LINE_AA, 2)
        elbow = np.round((points[0] + (points[0] - points[9])) * 4).astype(np.int32)
        wrist = max(2, round(float(np.linalg.norm(points[17] - points[5]))))
        cv2.line(mask, tuple(int(v) for v in pts[0]), tuple(int(v) for v in elbow), 255, wrist, cv2.LINE_AA, 2)
    if longest > 0:
        soft = cv2.GaussianBlur(cv2.dilate(mask, None), (0, 0), max(1.0, longest * 0.06))
        np.maximum(mask, soft, out=mask)
    return mask.astype(np.float32) * (1.0 / 255.0)


def clear_of_hands(hands: tuple[np.ndarray, ...] | None, matrix: np.ndarray, size: int) -> np.ndarray | None:
    """For a swapper or enhancer working on an aligned size x size crop (matrix: frame -> crop):
    1 where no hand of the face is, 0 on its hands (soft edge), or None when there are none."""
    if not hands:
        return None
    held = [points @ matrix[:, :2].T + matrix[:, 2] for points in hands]
    return 1.0 - hands_mask(held, (size, size))
