"""BlazeFace face detection (MediaPipe's short- and full-range models, converted to ONNX).

The model sees the image letterboxed into a square; it regresses, for each of a fixed set of
anchors, a box and 6 keypoints relative to that anchor, plus a score logit. We decode all
anchors at once with numpy and merge overlapping hits with weighted NMS, as MediaPipe does.
Stills add a finer pass for small faces: the same model rewritten to take any input size, run
once over the part of the photo that may hold them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.tracker import overlap_of_smaller
from swapline.models import builtin_model_path
from swapline.runtime import SessionFactory, shared_sessions
from swapline.runtime.tensors import planar


@dataclass(frozen=True)
class BlazeFaceSpec:
    model: str
    input_size: int
    # (stride, anchors per feature-map cell); layers with the same stride are merged.
    layers: tuple[tuple[int, int], ...]
    # The any-size pass's input sides must be multiples of this (the coarsest feature map's step).
    multiple: int


SPECS = {
    "short": BlazeFaceSpec("face_detection_short_range", 128, ((8, 2), (16, 6)), 16),
    "full": BlazeFaceSpec("face_detection_full_range", 192, ((4, 1),), 32),
}


@dataclass(frozen=True)
class DetectorSettings:
    score_threshold: float = 0.5
    nms_iou: float = 0.3
    # Stills only: a second, finer pass over the frame so small faces in big photos are found
    # (one any-size model run, the photo seen as if cut into square tiles of half its short
    # side: faces down to ~2.5% of the short side).
    fine_pass: bool = False
    # The fine pass runs on this many threads: a still has no other stage to share the cores with.
    fine_threads: int = 2
    max_faces: int = 16
    # The fine pass covers only the cells (overlapping squares of that tile size) where
    # skin-coloured pixels are left unexplained by the faces the full-frame pass found: this
    # share of a cell, at least (colour images only).
    fine_min_skin: float = 0.001


@functools.lru_cache(maxsize=16)  # the fine pass's input size follows each photo's: bounded
def anchor_centers(height: int, width: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(N, 2) anchor centres in input pixels, in the model's output order (row, column, anchor)."""
    centers = []
    for stride, per_cell in layers:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        grid = np.stack([(xs + 0.5) * stride, (ys + 0.5) * stride], axis=-1).reshape(-1, 1, 2)
        centers.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centers).astype(np.float32)


def halve(image: np.ndarray) -> np.ndarray:
    """Half size by 2x2 averaging: INTER_AREA at exactly 2x is a fast path (3x a pyrDown)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return cv2.resize(image[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def halve_down_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """image halved while it stays at least twice (width, height): anti-aliasing on the cheap."""
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        image = halve(image)
    return image


class Pyramid:
    """An image and its successive halvings, made once per detect and shared by every pass (the
    full frame, the skin map, each tile): a 4K frame is then read once, not once per pass."""

    def __init__(self, image: np.ndarray):
        self.levels = [image]

    def level(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            self.levels.append(halve(self.levels[-1]))
        return self.levels[k]

    def depth_for(self, width: float, height: float, target_w: int, target_h: int) -> int:
        """How many halvings halve_down_to would apply to a (width, height) region of level 0."""
        k = 0
        while width / 2**k >= 2 * target_w and height / 2**k >= 2 * target_h:
            k += 1
        return k

    def region(self, x: int, y: int, w: int, h: int, target: int) -> tuple[np.ndarray, float, float, float]:
        """The region (level-0 pixels) at the level halve_down_to would reach (long side still
        at least target); returns (pixels, origin x, origin y, level-0 pixels per level pixel)."""
        long = max(w, h)
        scale = target / long
        k = self.depth_for(w, h, max(1, round(w * scale)), max(1, round(h * scale)))
        level, f = self.level(k), 2**k
        x0, y0 = x // f, y // f
        x1, y1 = min(level.shape[1], math.ceil((x + w) / f)), min(level.shape[0], math.ceil((y + h) / f))
        return level[y0:y1, x0:x1], float(x0 * f), float(y0 * f), float(f)


def skin_map(image: np.ndarray) -> np.ndarray | None:
    """uint8 0/1 map of skin-coloured pixels (a broad YCrCb range, any ethnicity, any light
    that is not strongly coloured); None for a grey image, where colour says nothing."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    chroma = np.abs(ycrcb[..., 1:].astype(np.int16) - 128)
    if float(chroma.mean()) < 2.0:
        return None
    return cv2.inRange(ycrcb, (20, 133, 77), (255, 180, 130)) // 255


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Cluster overlapping detections; each cluster becomes the score-weighted mean of its members."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), dtype=bool)
    merged = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        members = remaining & (box_iou(boxes[i], boxes) > iou_threshold)
        members[i] = True
        weights = scores[members][:, None]
        total = float(weights.sum())
        box = (boxes[members] * weights).sum(axis=0) / total
        kps = (keypoints[members] * weights[:, :, None]).sum(axis=0) / total
        merged.append((box, kps, float(scores[i])))
        remaining &= ~members
    return merged


class BlazeFaceDetector:
    """Finds faces in a BGR image; returns them largest first."""

    def __init__(
        self, range: str = "full", settings: DetectorSettings | None = None, sessions: SessionFactory | None = None
    ):
        """range: "full" (faces up to ~5 m) or "short" (selfie distance, faster)."""
        self.settings = settings or DetectorSettings()
        if range not in SPECS:
            raise ValueError(f"detector range must be one of {sorted(SPECS)}, not {range!r}")
        self.range = range
        self.spec = SPECS[range]
        self._sessions = sessions or shared_sessions()
        self.session = self._sessions.load(builtin_model_path(self.spec.model))
        self.input_name = self.session.get_inputs()[0].name

    def _decode(
        self, outputs: list[np.ndarray], height: int, width: int, origin: np.ndarray, per_pixel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, keypoints and scores above the threshold from one model run on a (height, width)
        input, mapped to image pixels: origin + input pixel * per_pixel (both (2,) x, y)."""
        regressors, logits = sorted(outputs, key=lambda a: a.shape[-1], reverse=True)
        regressors, logits = regressors[0], logits[0, :, 0]
        keep = logits > np.log(self.settings.score_threshold / (1 - self.settings.score_threshold))
        if not np.any(keep):
            return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros((0,), np.float32)
        raw = regressors[keep]  # input pixels, relative to the anchor's centre
        centers = anchor_centers(height, width, self.spec.layers)[keep]
        cxcy = raw[:, 0:2] + centers
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([cxcy - half, cxcy + half], axis=1) * np.tile(per_pixel, 2) + np.tile(origin, 2)
        keypoints = (raw[:, 4:16].reshape(-1, 6, 2) + centers[:, None, :]) * per_pixel + origin
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -100, 100)))
        return boxes.astype(np.float32), keypoints.astype(np.float32), scores.astype(np.float32)

    @staticmethod
    def _tensor(small: np.ndarray, height: int, width: int, x: int = 0, y: int = 0) -> np.ndarray:
        """small (BGR uint8) placed at (x, y) in a (height, width) input scaled to [-1, 1]; the
        rest stays 0 (mid grey)."""
        tensor = np.zeros((1, 3, height, width), np.float32)
        h, w = small.shape[:2]
        planar(small, 2.0 / 255.0, -1.0, out=tensor[:, :, y : y + h, x : x + w])
        return tensor

    def _run_square(self, image: np.ndarray, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw detections for one image (any shape) letterboxed into the model's square, in that
        image's pixels times factor (a pyramid level's pixels -> full-size pixels), before NMS."""
        size = self.spec.input_size
        h, w = image.shape[:2]
        scale = size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
        small = cv2.resize(halve_down_to(image, nw, nh), (nw, nh), interpolation=cv2.INTER_LINEAR)
        outputs = self.session.run(None, {self.input_name: self._tensor(small, size, size, pad_x, pad_y)})
        per_pixel = np.full(2, factor / scale, np.float32)
        return self._decode(outputs, size, size, -np.array([pad_x, pad_y], np.float32) * per_pixel, per_pixel)

    def _fine_scale(self, h: int, w: int) -> float:
        """Full-size pixels per fine-pass input pixel: a square of half the short side (at
        least twice the model's input) seen at the model's input size; 0 when the frame is
        small enough for the full-frame pass alone. (Coarser misses real faces: the group
        photo's faces, ~10 input pixels at this scale, are not found at 3/4 of it.)"""
        side = self._cell_side(h, w)
        return 0.0 if max(h, w) <= side * 1.5 else side / self.spec.input_size

    def _cell_side(self, h: int, w: int) -> int:
        return max(self.spec.input_size * 2, min(h, w) // 2)

    def _cells(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """Overlapping squares (x, y, side) of the fine pass's scale covering the frame: the
        units in which it decides where small faces may be."""
        fine = self._fine_scale(h, w)
        if not fine:
            return []
        side = self._cell_side(h, w)
        step = side * 2 // 3
        xs = list(range(0, max(1, w - side), step)) + [max(0, w - side)]
        ys = list(range(0, max(1, h - side), step)) + [max(0, h - side)]
        return [(x, y, side) for y in sorted(set(ys)) for x in sorted(set(xs))]

    def _cells_to_scan(self, pyramid: Pyramid, found: np.ndarray) -> list[tuple[int, int, int]]:
        """The cells worth the fine pass: those with skin-coloured pixels the full-frame pass's
        faces (found: (N, 4) boxes) do not explain. Sky, wall or one big face is skipped."""
        h, w = pyramid.levels[0].shape[:2]
        cells = self._cells(h, w)
        if not cells:
            return []
        small = pyramid.level(pyramid.depth_for(w, h, max(64, w // 16), max(64, h // 16)))
        skin = skin_map(small)
        if skin is None:
            return cells
        f = small.shape[1] / w
        for box in found:  # a found face, its neck and hairline: nothing small hides there
            x0, y0, x1, y1 = box
            bw, bh = x1 - x0, y1 - y0
            r = np.round(np.array([x0 - 0.3 * bw, y0 - 0.3 * bh, x1 + 0.3 * bw, y1 + 1.0 * bh]) * f).astype(int)
            skin[max(0, r[1]) : max(0, r[3]), max(0, r[0]) : max(0, r[2])] = 0
        integral = cv2.integral(skin)
        keep = []
        for x, y, side in cells:
            a0, b0 = int(x * f), int(y * f)
            a1, b1 = min(skin.shape[1], int((x + side) * f)), min(skin.shape[0], int((y + side) * f))
            count = integral[b1, a1] - integral[b0, a1] - integral[b1, a0] + integral[b0, a0]
            if count >= self.settings.fine_min_skin * max(1, (a1 - a0) * (b1 - b0)):
                keep.append((x, y, side))
        return keep

    def fine_region(self, pyramid: Pyramid, found: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) in full-size pixels the fine pass covers: the bounding box of the
        cells worth it; None when there are none."""
        cells = self._cells_to_scan(pyramid, found)
        if not cells:
            return None
        return (
            min(x for x, _, _ in cells),
            min(y for _, y, _ in cells),
            max(x + side for x, _, side in cells),
            max(y + side for _, y, side in cells),
        )

    def _run_fine(
        self, pyramid: Pyramid, region: tuple[int, int, int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw detections of one any-size model run over region at the fine scale, in full-size
        pixels: the pixels of many overlapping tiles, each read once."""
        x0, y0, x1, y1 = region
        h, w = pyramid.levels[0].shape[:2]
        fine = self._fine_scale(h, w)
        pixels, ox, oy, f = pyramid.region(x0, y0, x1 - x0, y1 - y0, round(max(x1 - x0, y1 - y0) / fine))
        nw = max(1, round(pixels.shape[1] * f / fine))
        nh = max(1, round(pixels.shape[0] * f / fine))
        small = cv2.resize(halve_down_to(pixels, nw, nh), (nw, nh), interpolation=cv2.INTER_LINEAR)
        m = self.spec.multiple
        height, width = -(-nh // m) * m, -(-nw // m) * m
        path = builtin_model_path(f"{self.spec.model}_any_size")
        session = self._sessions.load(path, threads=self.settings.fine_threads, varying_shapes=True)
        outputs = session.run(None, {self.input_name: self._tensor(small, height, width)})
        per_pixel = np.array([pixels.shape[1] * f / nw, pixels.shape[0] * f / nh], np.float32)
        return self._decode(outputs, height, width, np.array([ox, oy], np.float32), per_pixel)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces, largest first. With fine_pass: one full-frame pass, then one finer pass over
        the part of the frame where a face too small for the first may be (see _cells_to_scan),
        so the cost follows the content."""
        pyramid = Pyramid(image)
        h, w = image.shape[:2]
        size = self.spec.input_size
        scale = size / max(h, w)
        k = pyramid.depth_for(w, h, max(1, round(w * scale)), max(1, round(h * scale)))
        boxes, keypoints, scores = self._run_square(pyramid.level(k), float(2**k))
        parts = [(boxes, keypoints, scores)]
        region = self.fine_region(pyramid, boxes) if self.settings.fine_pass else None
        if region is not None:
            b, kp, s = self._run_fine(pyramid, region)
            # faces a cell sees whole, as the tiles this pass replaced did; a bigger one is the
            # full-frame pass's, whose box the finer pass's would only blur
            small = (b[:, 2] - b[:, 0]) <= 0.6 * self._cell_side(h, w)
            keep = small & _not_inside(b, boxes, self.settings.nms_iou)
            parts.append((b[keep], kp[keep], s[keep]))
        boxes = np.concatenate([p[0] for p in parts])
        keypoints = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        if len(scores) == 0:
            return []
        merged = weighted_nms(boxes, keypoints, scores, self.settings.nms_iou)
        faces = [Face(box=b, score=s, keypoints=k) for b, k, s in merged]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces[: self.settings.max_faces]


def _not_inside(boxes: np.ndarray, found: np.ndarray, nms_iou: float) -> np.ndarray:
    """Mask of fine-pass boxes that are not a part of a face the full-frame pass found: at the
    finer scale an eye and a nose of a big face can read as a small face, which would not merge
    with it (IoU below nms_iou) and would be landmarked and swapped as a second face. A box of
    the same face (IoU above nms_iou) stays: NMS averages the two passes' boxes."""
    keep = np.ones(len(boxes), bool)
    if len(found) == 0:
        return keep
    for i, box in enumerate(boxes):
        keep[i] = not np.any(overlap_of_smaller(box, found) > 0.5) or np.any(box_iou(box, found) > nms_iou)
    return keep
