"""The built-in swapper: the source face's texture moved onto the target's 468-point mesh.

Per source (once): a texture crop with a validity channel (0 outside the image and where the
source's skin is covered by something else: hair, a hand, a microphone), and a usability
weight per triangle (0 where the source head turns a triangle away from the camera).

Per target face (every frame), each step switchable in MeshSwapSettings:
  warp          one remap of the face crop through the mesh (always);
  mirror_fill   source texels that are invalid are taken from the mirror-image side of the
                source face (FaceMesh is left/right symmetric), else the target stays;
  match_sharpness  a sharper source is blurred to the target's detail level;
  match_lighting   the target's low-frequency tone and shading added on skin only (eyes,
                brows, lips, and whatever of the target is not skin-coloured, left out), the
                source's specular highlights compressed, its colour detail scaled to a
                paler target (swap/color.py); where the target wears glasses, the skin
                round its eyes does not vote (skip_target_lenses, swap/glasses.py), nor
                what is much less colourful than its cheeks: a white beard, teeth
                (skip_target_grey);
  target_occluders what stands in front of the target's face stays in front (swap/skin.py);
  keep_target_hair  what covers the target's face from above (a fringe, a hat brim, a
                headscarf's edge) stays in front (swap/skin.py);
  hands         a hand in front of the target's face stays in front, and one over the
                source's face is left out of its texture (MediaPipe's palm detector and hand
                landmarks around the face, faces/hands.py: a hand is skin-coloured, the colour
                models cannot see it);
  keep_target_beard the target's beard or stubble stays (off by default: a beard is identity);
  multiband     Laplacian-pyramid blend inside the feathered face oval;
  keep_target_mouth  the open mouth stays the target's (its teeth, its tongue) unless the
                source's opens about as wide.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.hands import HandFinder, hands_mask
from swapline.faces.topology import face_mesh, inter_ocular_distance
from swapline.runtime import SessionFactory
from swapline.swap.blend import multiband_delta
from swapline.swap.color import match_tone
from swapline.swap.glasses import glasses_likelihood, lens_zone
from swapline.swap.masks import feathered_face_mask, mouth_mask
from swapline.swap.mesh_warp import affines_from_frames, maps_from_ids, rasterize_triangles, triangle_frames
from swapline.swap.shape import IdentityShape, ShapeSettings, half_width_ratio, mouth_opening
from swapline.swap.skin import expected_skin, skin_validity, target_beard, target_grid, target_hair, target_occluders

# Steps of the swapper that can be switched off one at a time (bench quality --ablation).
ABLATION_STEPS = (
    "identity_shape",
    "skin_mask",
    "mirror_fill",
    "match_sharpness",
    "match_lighting",
    "target_highlights",
    "skip_target_lenses",
    "scale_colour_detail",
    "skip_target_grey",
    "target_occluders",
    "keep_target_hair",
    "hands",
    "multiband",
    "keep_target_mouth",
)


@dataclass(frozen=True)
class MeshSwapSettings:
    identity_shape: bool = True
    skin_mask: bool = True
    mirror_fill: bool = True
    match_sharpness: bool = True
    match_lighting: bool = True
    target_highlights: bool = True  # with match_lighting: the target's highlights laid on the swapped skin
    skip_target_lenses: bool = True  # with match_lighting: skin seen through the target's glasses does not vote
    # with match_lighting: the source's colour detail scaled to a paler target (no green eyelids)
    scale_colour_detail: bool = True
    # with match_lighting: what is much less colourful than the target's cheeks (a white or grey
    # beard, teeth, lens tint) does not vote for the tone (a white beard laid a grey veil on the chin)
    skip_target_grey: bool = True
    multiband: bool = True
    keep_target_mouth: bool = True
    target_occluders: bool = True  # what stands in front of the target's face (a microphone, a card) stays in front
    keep_target_hair: bool = True  # what covers the target's face from above (a fringe, a hat brim) stays in front
    # a hand in front of the target's face stays in front; one over the source's face is left out
    # of its texture (MediaPipe's palm detector and hand landmarks: ~6 ms a face on one core).
    # SwapSession reads it for every swapper: the neural ones and the enhancer keep hands too.
    hands: bool = True
    keep_target_beard: bool = False  # the target's beard or stubble stays (identity: off, the source's chin shows)
    shape_strength: float = 1.0  # how far the inner face moves toward the source's proportions
    # How far the face outline follows them. On the quality set (280 pairs, every pair shaped,
    # with the stepwise fold damping that came before the continuous one):
    # 0.25 / 0.4 / 0.55 / 0.75 / 1.0 give retrieval 98.9 / 99.3 / 99.3 / 99.6 / 99.3%, distance to
    # the source person's other photos 0.468 / 0.465 / 0.463 / 0.461 / 0.460, seam 0.98 -> 0.95,
    # but the tone the swap adds at the seam (max) 5.6 / 5.8 / 5.8 / 6.9 / 11.2: 0.55.
    shape_outline: float = 0.55
    feather: float = 0.07  # blend edge width, as a fraction of the face size
    lighting_sigma: float = 0.4  # low-pass radius for lighting transfer, x inter-ocular distance
    # A source triangle seen at less than this cosine (turned away) is not used.
    min_source_facing: float = 0.05
    crop_margin: float = 0.12  # room around the face for the blend pyramid
    max_texture_side: int = 400
    # Faces wider than this (px) are composed on a crop scaled down to it: cost stays bounded.
    # 192 against 256: the same identity and seam figures on the quality set (141 pairs, 11 of
    # its 48 faces are wider), 800 px faces about a quarter cheaper.
    work_face_px: int = 192

    def shape_settings(self) -> ShapeSettings:
        """The identity-shape transfer these settings ask for."""
        return ShapeSettings(self.shape_strength, self.shape_outline)


@dataclass(frozen=True, eq=False)
class RegisteredSource:
    """What the swapper keeps of a source face; built once, reused for every frame."""

    texture: np.ndarray  # (H, W, 4) uint8, BGR + validity; a 1-texel zero border
    points: np.ndarray  # (468, 2) float32, landmark positions in texture pixels
    triangle_weight: np.ndarray  # (T + 1,) float32; the last entry (for "no triangle") is 0
    face: Face
    needs_mirror: bool = False  # some of the face is unusable: worth filling from the other side
    shape: IdentityShape | None = None  # the source's 3D landmarks, for identity shape transfer
    notes: tuple[str, ...] = ()  # advice on this source photo, for the person who chose it


def _face_box(points: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = (hi - lo).max() * margin
    return lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad


# The far half of a face this many times narrower than the near half: turned ~35 degrees or more.
TURNED_HALF_WIDTH_RATIO = 3.0


def advice_on_source(crop: np.ndarray, landmarks: np.ndarray, local: np.ndarray, iod: float) -> tuple[str, ...]:
    """Advice on a source photo for the person who chose it: what the built-in swapper will
    carry onto every face. crop: the face's BGR pixels, local: the landmarks in them."""
    notes = []
    if glasses_likelihood(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), local, iod) >= 0.5:
        # their frames are texture like the skin: drawn flat on the face, they smear across a
        # turned target's cheek (filling them in from the photo alone looked worse)
        notes.append(
            "the face wears glasses: the built-in swapper draws them onto every face it swaps;"
            " a photo without glasses swaps better"
        )
    if half_width_ratio(landmarks) >= TURNED_HALF_WIDTH_RATIO:
        # the far side's few texels are stretched over a whole half face (a smeared eye and
        # cheek); the swaps of the one such test photo are the two the identity judge misreads
        notes.append(
            "the face is turned well away from the camera: its far side is stretched across every"
            " face it swaps; a photo facing the camera swaps better"
        )
    return tuple(notes)


def source_triangle_weights(landmarks: np.ndarray, triangles: np.ndarray, min_facing: float) -> np.ndarray:
    """How squarely each triangle faces the camera, mapped to a weight in [0, 1]."""
    p = landmarks[triangles].astype(np.float64)  # (T, 3, 3)
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    length = np.linalg.norm(normal, axis=1)
    # The mesh is consistently wound, so the sign of most triangles' 2D area is "front".
    front = np.sign(np.sum(normal[:, 2])) or 1.0
    facing = front * normal[:, 2] / np.maximum(length, 1e-9)
    return np.clip((facing - min_facing) / 0.1, 0.0, 1.0).astype(np.float32)


def _detail(gray: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[where].mean())


def match_sharpness(
    swapped: np.ndarray,
    target: np.ndarray,
    where: np.ndarray,
    valid: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Bring the source's detail level to the target's: blur a sharper source, sharpen (unsharp
    mask, at most 1.5x) a softer one, so neither looks pasted on.

    Detail is measured as mean |Laplacian| on the skin of the central half of the crop.
    swapped is float32 BGR, target BGR (uint8 or float32); a changed result is written to out
    when given (else a new array); an unchanged one is swapped itself. valid (float32 [0, 1]):
    where swapped holds usable texels; the blur then averages those only, so the black outside
    the mesh and what the source's validity left out (a hat's brim, hair) neither ring as a light
    seam along the face's edge nor bleed in as a dark one.
    """
    h, w = where.shape
    window = np.s_[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    where = where[window]
    if where.sum() < 100:
        return swapped
    gray_s = cv2.cvtColor(swapped[window], cv2.COLOR_BGR2GRAY)
    gray_t = cv2.cvtColor(target[window].astype(np.float32), cv2.COLOR_BGR2GRAY)
    reference = max(_detail(gray_t, where), 1e-6)
    ratio = _detail(gray_s, where) / reference
    if 0.9 <= ratio <= 1.1:
        return swapped
    if ratio > 1.1:
        probe = _detail(cv2.GaussianBlur(gray_s, (0, 0), 1.0), where) / reference
        if probe >= ratio:
            return swapped
        # detail falls about exponentially with sigma over this range: interpolate to ratio 1
        sigma = float(np.clip(math.log(ratio) / (math.log(ratio) - math.log(max(probe, 1e-6))), 0.0, 3.0))
        return _blur_valid(swapped, valid, sigma, out) if sigma > 0.2 else swapped
    blurred = cv2.GaussianBlur(gray_s, (0, 0), 1.0)
    probe = _detail(gray_s + (gray_s - blurred), where) / reference  # unsharp mask, amount 1
    if probe <= ratio:
        return swapped
    amount = float(np.clip((1.0 - ratio) / (probe - ratio), 0.0, 1.5))  # detail grows ~linearly
    blurred = _blur_valid(swapped, valid, 1.0, out)
    return cv2.addWeighted(swapped, 1.0 + amount, blurred, -amount, 0.0, dst=blurred)


def _blur_valid(image: np.ndarray, valid: np.ndarray | None, sigma: float, out: np.ndarray | None) -> np.ndarray:
    """Gaussian blur of image over its valid pixels only (normalised convolution): a plain blur
    where every pixel is valid, or valid is None."""
    if valid is None:
        return cv2.GaussianBlur(image, (0, 0), sigma, dst=out)
    weight = cv2.GaussianBlur(valid, (0, 0), sigma)
    np.maximum(weight, 1e-3, out=weight)
    np.divide(1.0, weight, out=weight)
    blurred = cv2.multiply(image, cv2.merge([valid, valid, valid]), dst=out)
    cv2.GaussianBlur(blurred, (0, 0), sigma, dst=blurred)
    blurred *= cv2.merge([weight, weight, weight])
    return blurred


class MeshSwapper:
    """Landmark-mesh face swap; CPU only, no model weights beyond MediaPipe's small built-in
    face and hand models."""

    name = "mesh"

    def __init__(self, settings: MeshSwapSettings | None = None, sessions: SessionFactory | None = None):
        self.settings = settings or MeshSwapSettings()
        self.mesh = face_mesh()
        self._scratch = _Scratch()
        self.hand_finder = HandFinder(sessions) if self.settings.hands else None

    def register(self, image: np.ndarray, face: Face) -> RegisteredSource:
        if face.landmarks is None:
            raise ValueError("the source face needs landmarks")
        s = self.settings
        points = face.landmarks[:, :2]
        x0, y0, x1, y1 = (int(math.floor(v)) for v in _face_box(points, 0.15))
        w, h = x1 - x0, y1 - y0
        texture = np.zeros((h, w, 4), np.uint8)
        ih, iw = image.shape[:2]
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(iw, x1), min(ih, y1)
        if sx1 > sx0 and sy1 > sy0:
            texture[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0, :3] = image[sy0:sy1, sx0:sx1, :3]
            texture[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0, 3] = 255
        # keep bilinear samples from mixing in the padding
        texture[..., 3] = cv2.erode(texture[..., 3], np.ones((5, 5), np.uint8))
        local = (points - [x0, y0]).astype(np.float32)
        iod = inter_ocular_distance(face.landmarks)
        notes = advice_on_source(texture[..., :3], face.landmarks, local, iod)
        if s.skin_mask:
            skin = skin_validity(texture[..., :3], local, self.mesh, iod)
            texture[..., 3] = (texture[..., 3].astype(np.float32) * skin).astype(np.uint8)
        if self.hand_finder is not None:  # the source's own hand is not its face: left out, as hair is
            held = [hand.points - [x0, y0] for hand in self.hand_finder.around_face(image, face)]
            if held:
                texture[..., 3] = (texture[..., 3] * (1.0 - hands_mask(held, (h, w)))).astype(np.uint8)
        weights = source_triangle_weights(face.landmarks, self.mesh.triangles, s.min_source_facing)
        # Worth a second (mirrored) warp per frame only if a real part of the face is unusable:
        # within the face, not in the band along its outline that the feathered blend fades out
        # (the background or hair the outline reaches is dropped there, and the target shows).
        ids = rasterize_triangles(local, face.landmarks[:, 2], self.mesh.triangles, (h, w))
        usable = texture[..., 3].astype(np.float32) / 255.0 * np.append(weights, 0.0)[ids]
        band = int(max(h, w) * s.feather) // 2 * 2 + 1
        inside = cv2.erode((ids >= 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (band, band))) > 0
        needs_mirror = bool(inside.any() and float((usable[inside] < 0.5).mean()) > 0.03)
        scale = min(1.0, s.max_texture_side / max(w, h))
        if scale < 1.0:
            texture = cv2.resize(texture, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            local = local * scale
        # a zero (invalid) texel border: the warp points whatever lies outside the mesh at texel 0
        texture = cv2.copyMakeBorder(texture, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
        local = local + 1.0
        return RegisteredSource(
            texture=texture,
            points=local,
            triangle_weight=np.append(weights, 0.0).astype(np.float32),
            face=face,
            needs_mirror=needs_mirror,
            shape=IdentityShape(face.landmarks, self.mesh) if s.identity_shape else None,
            notes=notes,
        )

    def _maps(self, ids, frames, source_points, shape, outside, tag="map"):
        """remap() maps for the crop. Computed on the (half-size) id grid, whose triangle
        frames map grid pixels to source points, and scaled up: they are piecewise linear,
        so bilinear upsampling is exact inside triangles."""
        matrices = affines_from_frames(frames, source_points, self.mesh.triangles)
        map_x, map_y = maps_from_ids(ids, matrices, frames.usable, outside)
        if ids.shape != shape:
            size = (shape[1], shape[0])
            map_x = cv2.resize(map_x, size, dst=self._scratch(tag + "_x", shape), interpolation=cv2.INTER_LINEAR)
            map_y = cv2.resize(map_y, size, dst=self._scratch(tag + "_y", shape), interpolation=cv2.INTER_LINEAR)
        return map_x, map_y

    def _reshape_target(self, ids, frames, local, target):
        """The target crop (uint8) with its face moved to the shaped mesh (its mouth, teeth, eyes
        and skin go where the source's proportions put them); unchanged outside the mesh.
        Remapped as 4 channels: OpenCV's 3-channel uint8 remap has no vector path."""
        h, w = target.shape[:2]
        sx, sy = ids.shape[1] / w, ids.shape[0] / h  # grid / crop, per axis
        identity = (1 / sx, 0, 0, 1 / sy, 0.5 / sx - 0.5, 0.5 / sy - 0.5)  # grid pixel -> crop pixel
        map_x, map_y = self._maps(ids, frames, local, (h, w), identity)
        four = cv2.cvtColor(target, cv2.COLOR_BGR2BGRA, dst=self._scratch("target4", (h, w, 4), np.uint8))
        moved = self._scratch("reshaped4", (h, w, 4), np.uint8)
        cv2.remap(four, map_x, map_y, cv2.INTER_LINEAR, dst=moved, borderMode=cv2.BORDER_REFLECT)
        return cv2.cvtColor(moved, cv2.COLOR_BGRA2BGR, dst=self._scratch("reshaped", (h, w, 3), np.uint8))

    def _warp(self, ids, frames, source_points, weights, inside, texture, shape, tag):
        """Warp the texture onto the crop: (float32 BGR crop, float32 usable weight per pixel).

        weights: per-triangle usable weight on the id grid; inside: 1 where every bilinear
        sample of the scaled-up maps comes from inside the mesh (None at scale 1). Outside
        the mesh the maps point at texel (0, 0), the texture's zero pad: every sample stays
        inside the texture, on OpenCV's vector path (border samples cost twice as much)."""
        map_x, map_y = self._maps(ids, frames, source_points, shape, (0, 0, 0, 0, 0, 0))
        warped = cv2.remap(
            texture,
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            dst=self._scratch(tag + "_bgra", (*shape, 4), np.uint8),
            borderMode=cv2.BORDER_CONSTANT,
        )
        valid = self._scratch(tag + "_valid", shape)
        alpha = cv2.extractChannel(warped, 3)
        if inside is not None:
            cv2.resize(weights, (shape[1], shape[0]), dst=valid, interpolation=cv2.INTER_LINEAR)
            valid *= inside  # next to the mesh border the maps mix in the "outside" value
            valid *= alpha
        else:
            np.multiply(alpha, weights, out=valid)
        valid *= 1.0 / 255.0
        colour = self._scratch(tag, (*shape, 3))
        np.copyto(colour, cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR))  # a strided 3-of-4 copy is 10x slower
        return colour, valid

    def swap(self, frame: np.ndarray, face: Face, source: RegisteredSource) -> bool:
        """Replace one face in frame, in place. False when the face lies outside the frame.

        A face wider than work_face_px is composed on a downscaled crop (the source texture
        holds no finer detail anyway) and only the result is brought to full size, with the
        target's own fine detail kept where the target shows: cost stays bounded at any size.
        """
        if face.landmarks is None:
            raise ValueError("the target face needs landmarks")
        s = self.settings
        fh, fw = frame.shape[:2]
        points = face.landmarks[:, :2]
        bx0, by0, bx1, by1 = _face_box(points, s.crop_margin)
        x0, y0 = max(0, int(bx0)), max(0, int(by0))
        x1, y1 = min(fw, int(math.ceil(bx1))), min(fh, int(math.ceil(by1)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return False
        face_size = float((points.max(axis=0) - points.min(axis=0)).max())
        scale = s.work_face_px / face_size if s.work_face_px else 1.0
        if scale < 0.5:  # downscale halves the crop: whole blocks of 2^k keep every halving exact
            block = 2 ** int(math.log2(1.0 / scale))
            x1, y1 = x0 + max(block, (x1 - x0) // block * block), y0 + max(block, (y1 - y0) // block * block)
        shape = (y1 - y0, x1 - x0)
        local = (points - [x0, y0]).astype(np.float32)
        offsets = None
        if s.identity_shape and source.shape is not None and s.shape_strength > 0:
            offsets = source.shape.offsets(face.landmarks, s.shape_settings())
        hands = []
        if self.hand_finder is not None:
            found = face.hands  # SwapSession found them (a still) or a feed's HandTracker followed them
            if found is None:  # the swapper used on its own: on the frame as given
                found = [hand.points for hand in self.hand_finder.around_face(frame, face)]
            hands = [hand - [x0, y0] for hand in found]
        region = frame[y0:y1, x0:x1]
        if scale >= 0.9:  # small enough: compose at full size
            blended, _ = self._compose(region[..., :3], local, face.landmarks[:, 2], source, offsets, hands, face.skin)
            np.clip(blended, 0, 255, out=blended)
            np.copyto(region[..., :3], blended, casting="unsafe")
            return True
        work = (max(8, round(shape[0] * scale)), max(8, round(shape[1] * scale)))
        grid = np.array([work[1] / shape[1], work[0] / shape[0]], np.float32)
        small = downscale(region[..., :3], work)
        on_work = (local + 0.5) * grid - 0.5  # pixel centres, as cv2.resize maps them
        blended, mask = self._compose(
            small,
            on_work,
            face.landmarks[:, 2],
            source,
            None if offsets is None else offsets * grid,
            [(points + 0.5) * grid - 0.5 for points in hands],
            face.skin,
        )
        apply_at_full_size(region, blended, small.astype(np.float32), mask, self._scratch)
        return True

    def _compose(
        self,
        target: np.ndarray,
        local: np.ndarray,
        depth: np.ndarray,
        source: RegisteredSource,
        offsets: np.ndarray | None = None,
        hands: list[np.ndarray] | None = None,
        learned_skin: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The swapped crop (float32 BGR) and its finest-level blend weight (where the result is
        the source), for target (uint8 BGR crop) with landmarks at local (crop pixels), its
        inner face moved by offsets (identity shape) when given, hands (21 landmarks each,
        crop pixels) in front of it, and the skin's colour learned over a feed (Face.skin).

        Whole-crop arrays live in per-thread scratch buffers (see _Scratch) and are updated in
        place; per-pixel weights are widened to three channels before they multiply images."""
        s, mesh, scratch = self.settings, self.mesh, self._scratch
        shape = target.shape[:2]
        scale = 0.5 if min(shape) >= 96 else 1.0
        grid = (max(2, round(shape[0] * scale)), max(2, round(shape[1] * scale)))
        grid_scale = np.array([grid[1] / shape[1], grid[0] / shape[0]], np.float32)
        reshape = offsets is not None and float(np.abs(offsets).max()) > 0.25
        original = local
        if reshape:
            local = (local + offsets).astype(np.float32)
        on_grid = (local + 0.5) * grid_scale - 0.5  # pixel centres, as cv2.resize maps them
        ids = rasterize_triangles(on_grid, depth, mesh.triangles, grid)
        frames = triangle_frames(on_grid, mesh.triangles)  # grid pixel -> any point set on the mesh
        reference = target  # the target as shot: its detail level, its occluders
        if reshape:
            target = self._reshape_target(ids, frames, original, target)
        target_f = scratch("target", (*shape, 3))
        np.copyto(target_f, target)
        inside = None
        if ids.shape != shape:
            inside = cv2.resize((ids >= 0).astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
            inside = (inside >= 0.999).astype(np.float32)
        swapped, valid = self._warp(
            ids, frames, source.points, source.triangle_weight[ids], inside, source.texture, shape, "warped"
        )
        if s.mirror_fill and source.needs_mirror:
            # the same target triangle, textured from the mirror image triangle of the source
            mirror_ids = np.where(ids >= 0, mesh.mirror_triangles[np.maximum(ids, 0)], -1)
            mirrored, valid_m = self._warp(
                ids,
                frames,
                source.points[mesh.mirror],
                source.triangle_weight[mirror_ids],
                inside,
                source.texture,
                shape,
                "mirrored",
            )
            fill = (1.0 - valid) * valid_m
            total = valid + fill
            norm = 1.0 / np.maximum(total, 1e-3)
            swapped *= _three(valid * norm, scratch)
            mirrored *= _three(fill * norm, scratch)
            swapped += mirrored
            valid = total
        face_size = float((local.max(axis=0) - local.min(axis=0)).max())
        iod = max(inter_ocular_distance(local), 4.0)
        soften = max(3, int(face_size * 0.02) | 1)
        # soften texel-sharp validity edges (a box: cheap), inward only: spreading validity
        # outward gave the mesh border's unusable samples (black padding) weight: a dark seam
        valid = np.minimum(valid, cv2.blur(valid, (soften, soften)))

        # where skin is expected: a region, drawn on the half-size id grid (its dilation is costly)
        expected = expected_skin(on_grid, mesh, grid, iod * float(grid_scale.mean())).astype(np.uint8)
        if grid != shape:
            expected = cv2.resize(expected, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        skin = (expected > 0) & (valid > 0.5)
        if s.match_sharpness:
            swapped = match_sharpness(swapped, reference, skin, valid, out=scratch("sharpened", (*shape, 3)))
        if s.match_lighting:
            weight = skin.astype(np.float32)
            weight *= valid
            glasses = 0.0
            if s.skip_target_lenses:  # the gate only when the step is on: 0.3 ms a face
                glasses = glasses_likelihood(cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY), original, iod)
            if glasses > 0.0:
                weight *= 1.0 - glasses * lens_zone(local, mesh, shape, iod)  # on the target as shaped
            lit = scratch("lit", (*shape, 3))
            relight = 1.0 if s.target_highlights else 0.0
            swapped = match_tone(
                swapped,
                target_f,
                weight,
                local,
                s.lighting_sigma * iod,
                highlight_relight=relight,
                damp_chroma=s.scale_colour_detail,
                skip_grey=s.skip_target_grey,
                out=lit,
            )
        mask = feathered_face_mask(local[mesh.face_oval], shape, face_size, s.feather)
        mask *= valid
        keep = None  # where the target is put back exactly after the blend
        mouth = _mouth_kept(source.face.landmarks, original) if s.keep_target_mouth else 0.0
        if mouth > 0.0:
            keep = mouth_mask(local[mesh.lips_inner], shape, face_size)
            keep *= -mouth
            keep += 1.0
            mask *= keep
        # what stands in front, judged on the target as shot, on one coarse grid for both models
        coarse = target_grid(reference, original, iod) if s.target_occluders or s.keep_target_hair else None
        occluders = None
        if s.target_occluders:
            occluders = target_occluders(reference, original, mesh, iod, grid=coarse, learned=learned_skin)
        if s.keep_target_hair:
            hair = target_hair(reference, original, mesh, iod, grid=coarse)
            occluders = hair if occluders is None else np.maximum(occluders, hair, out=occluders)
        if hands:
            held = hands_mask(hands, shape)
            occluders = held if occluders is None else np.maximum(occluders, held, out=occluders)
        if occluders is not None and occluders.any():
            if reshape:  # the target moved under the shaped mesh; what stands in front did not
                target_f += occluders[..., None] * (reference.astype(np.float32) - target_f)
            keep = _kept(mask, keep, occluders)
        if s.keep_target_beard:  # on the target as shaped: the beard moves with the face
            keep = _kept(mask, keep, target_beard(target, local, mesh, iod))
        # the result is target + change; the change becomes swapped - target, blended
        change = scratch("change", (*shape, 3))
        np.subtract(swapped, target_f, out=change)
        if s.multiband:
            # outside the usable face the foreground is the target itself, so no level of the
            # pyramid carries the black surroundings (or the crop's edge) into the result
            change *= _three(np.minimum(valid * 4.0, 1.0), scratch)
            change = multiband_delta(change, mask)
            if keep is not None:  # the pyramid's low bands reach into the mouth (and occluders): put them back
                change *= _three(keep, scratch)
        else:
            change *= _three(mask, scratch)
        change += target_f
        return change, mask


class _Scratch(threading.local):
    """Per-thread arrays reused from frame to frame.

    A fresh multi-megabyte array costs a page fault per 4 KB page when the allocator has handed
    the memory back to the system since the last frame (glibc trims its heap top), which for a
    face crop costs more than the arithmetic on it. Threads (the video pool) get their own.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        size = math.prod(shape)
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = np.empty(size + size // 4, dtype)  # room for the face to grow a little
            self.buffers[name] = buffer
        return buffer[:size].reshape(shape)


def _mouth_kept(source_landmarks: np.ndarray, points: np.ndarray) -> float:
    """How much of the target's open mouth (teeth, tongue) stays, 0..1: nothing of a closed
    target mouth (an inner-lip gap under 0.01 IOD, all from 0.03). Where the source's mouth is
    about as open (within 15%), its own teeth fill the gap (on the quality set the distance to
    the source person's other photos fell 0.468 -> 0.463 with them); open much less, its lips
    would be smeared over the gap, and much more (a talking mouth's dark inside in a smile),
    the expression would be the source's: kept."""
    opening = mouth_opening(points)
    if opening < 0.01:
        return 0.0
    ratio = abs(math.log(max(mouth_opening(source_landmarks), 1e-3) / opening))
    kept = np.clip((ratio - math.log(1.15)) / (math.log(1.4) - math.log(1.15)), 0.0, 1.0)
    return float(kept * min(1.0, (opening - 0.01) / 0.02))  # a mouth opening in a video: no jump


def _kept(mask: np.ndarray, keep: np.ndarray | None, region: np.ndarray) -> np.ndarray:
    """region (0..1) stays the target's: taken out of the blend mask (in place) and added to
    what is put back exactly after the blend; returns the new put-back weight."""
    mask *= 1.0 - region
    return 1.0 - region if keep is None else keep * (1.0 - region)


def _three(weight: np.ndarray, scratch: _Scratch) -> np.ndarray:
    """A one-channel weight as three channels: numpy's broadcast over the channel axis costs
    several times a same-shape product."""
    return cv2.merge([weight, weight, weight], dst=scratch("three", (*weight.shape, 3)))


def downscale(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """image resized down to shape (h, w): halvings while at least 2x too big, then a bilinear
    step of less than 2x (INTER_AREA at odd ratios costs more than the rest). An even-sized
    image is halved by 2x2 block means (OpenCV's area resize at exactly half: 0.36 against
    0.9 ms for a pyrDown of an 800 px face's crop), an odd one by pyrDown."""
    while image.shape[0] >= 2 * shape[0] and image.shape[1] >= 2 * shape[1]:
        h, w = image.shape[:2]
        if h % 2 or w % 2:
            image = cv2.pyrDown(image)
        else:
            image = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _fresh(name: str, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    return np.empty(shape, dtype)


def apply_at_full_size(
    region: np.ndarray, blended: np.ndarray, target_small: np.ndarray, mask: np.ndarray, scratch=_fresh
) -> None:
    """Write a result composed at working scale into the full-size crop, in place.

    out = up(blended - (1 - m) * target_small) + (1 - up(m)) * target, m = mask: the swapped
    face comes from the working scale; where the target shows, its detail finer than the
    working scale stays, with the blend's low-frequency change added. (The same as
    m * up(blended) + (1 - m) * (target + up(blended - target_small)) but for bilinear
    interpolation of a product against the product of interpolations: a fraction of a level.)
    At full size that is two 3-channel and one 1-channel uint8 resizes (the signed term split
    into its positive and negative parts, so saturating adds are exact), one multiply and two
    adds, on the rows and columns that change, written into the frame itself where it can be,
    with reused buffers (scratch(name, shape, dtype), see _Scratch).
    """
    h_s, w_s = mask.shape
    moved = np.abs(blended - target_small)
    changed_rows = (moved.reshape(h_s, -1).max(axis=1) > 0.5) | (mask.max(axis=1) > 1e-3)
    if not changed_rows.any():
        return
    changed_cols = (moved.max(axis=0).max(axis=1) > 0.5) | (mask.max(axis=0) > 1e-3)
    rows, cols = np.flatnonzero(changed_rows), np.flatnonzero(changed_cols)
    h, w = region.shape[:2]
    fy, fx = h / h_s, w / w_s
    # the full-size pixels whose bilinear samples reach a changed working pixel
    r0, r1 = max(0, int((rows[0] - 1) * fy)), min(h, int(math.ceil((rows[-1] + 2) * fy)))
    c0, c1 = max(0, int((cols[0] - 1) * fx)), min(w, int(math.ceil((cols[-1] + 2) * fx)))
    window = np.s_[r0:r1, c0:c1]
    size, full = (w, h), (h, w, 3)

    def up(small: np.ndarray, name: str) -> np.ndarray:
        return cv2.resize(small, size, dst=scratch(name, full, np.uint8), interpolation=cv2.INTER_LINEAR)[window]

    shown = 1.0 - mask  # where the target shows
    # rounded below; - mask / 2: where the face shows it is truncated, as on the small path
    signed = blended - cv2.merge([shown, shown, shown]) * target_small
    signed -= cv2.merge([mask, mask, mask]) * 0.5
    rise = up(cv2.convertScaleAbs(np.maximum(signed, 0.0, out=moved)), "up_rise")
    fall = up(cv2.convertScaleAbs(np.minimum(signed, 0.0, out=moved)), "up_fall")
    # the weight is one channel: brought up as one and widened at full size (a third of the
    # resize), and only over the face's band: elsewhere it is 255 (the target times 1) exactly
    weight_small = cv2.convertScaleAbs(shown, alpha=255.0)
    weight = cv2.resize(weight_small, size, dst=scratch("up_weight", (h, w), np.uint8), interpolation=cv2.INTER_LINEAR)
    window_shape = (r1 - r0, c1 - c0, 3)
    target = region[r0:r1, c0:c1, :3]
    # straight into the frame where OpenCV can write there (a 3-channel frame), else via a buffer
    written = target
    if target.shape[2] != region.shape[2]:
        written = scratch("out", window_shape, np.uint8)
        np.copyto(written, target)
    below = weight_small < 255
    band_rows, band_cols = np.flatnonzero(below.any(axis=1)), np.flatnonzero(below.any(axis=0))
    if len(band_rows):
        # the full-size pixels whose bilinear samples reach a weight below 255, within the window
        b0, b1 = max(r0, int((band_rows[0] - 1) * fy)), min(r1, int(math.ceil((band_rows[-1] + 2) * fy)))
        d0, d1 = max(c0, int((band_cols[0] - 1) * fx)), min(c1, int(math.ceil((band_cols[-1] + 2) * fx)))
        band = weight[b0:b1, d0:d1]
        band = cv2.merge([band, band, band], dst=scratch("weight3", (b1 - b0, d1 - d0, 3), np.uint8))
        inside = written[b0 - r0 : b1 - r0, d0 - c0 : d1 - c0]
        cv2.multiply(inside, band, dst=inside, scale=1.0 / 255.0)
    cv2.add(written, rise, dst=written)
    cv2.subtract(written, fall, dst=written)
    if written is not target:
        target[...] = written
