"""The built-in swapper: the source face's texture moved onto the target's 468-point mesh.

Per source (once): a texture crop with a validity channel (0 outside the image and where the
source's skin is covered by something else: hair, a hand, a microphone), and a usability
weight per triangle (0 where the source head turns a triangle away from the camera).

Per target face (every frame), each step switchable in MeshSwapSettings:
  warp          one remap of the face crop through the mesh (always);
  mirror_fill   source texels that are invalid are taken from the mirror-image side of the
                source face (FaceMesh is left/right symmetric), else the target stays;
  match_sharpness  a sharper source is blurred to the target's detail level;
  match_lighting   the target's low-frequency shading and colour, measured on skin only
                (eyes, brows, lips and beard zone excluded, so nothing ghosts back);
  multiband     Laplacian-pyramid blend inside the feathered face oval;
  keep_target_mouth  the open mouth stays the target's (its teeth, its tongue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.topology import face_mesh, inter_ocular_distance
from swapline.swap.blend import multiband_blend
from swapline.swap.color import match_lighting
from swapline.swap.masks import feathered_face_mask, mouth_mask
from swapline.swap.mesh_warp import maps_from_ids, rasterize_triangles, triangle_affines
from swapline.swap.shape import IdentityShape, ShapeSettings
from swapline.swap.skin import expected_skin, skin_validity, target_occluders

# Steps of the swapper that can be switched off one at a time (bench quality --ablation).
ABLATION_STEPS = (
    "identity_shape",
    "skin_mask",
    "mirror_fill",
    "match_sharpness",
    "match_lighting",
    "target_occluders",
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
    multiband: bool = True
    keep_target_mouth: bool = True
    target_occluders: bool = False  # off by default: the skin model still flags hair and collars on clear faces
    shape_strength: float = 1.0  # how far the inner face moves toward the source's proportions
    shape_outline: float = 0.0  # how far the face outline follows them
    feather: float = 0.08  # blend edge width, as a fraction of the face size
    lighting_sigma: float = 0.4  # low-pass radius for lighting transfer, x inter-ocular distance
    # A source triangle seen at less than this cosine (turned away) is not used.
    min_source_facing: float = 0.05
    crop_margin: float = 0.12  # room around the face for the blend pyramid
    max_texture_side: int = 400
    # Faces wider than this (px) are composed on a crop scaled down to it: cost stays bounded.
    work_face_px: int = 256


@dataclass(frozen=True, eq=False)
class RegisteredSource:
    """What the swapper keeps of a source face; built once, reused for every frame."""

    texture: np.ndarray  # (H, W, 4) uint8, BGR + validity
    points: np.ndarray  # (468, 2) float32, landmark positions in texture pixels
    triangle_weight: np.ndarray  # (T + 1,) float32; the last entry (for "no triangle") is 0
    face: Face
    needs_mirror: bool = False  # some of the face is unusable: worth filling from the other side
    shape: IdentityShape | None = None  # the source's 3D landmarks, for identity shape transfer


def _face_box(points: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = (hi - lo).max() * margin
    return lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad


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


def match_sharpness(swapped: np.ndarray, target: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Bring the source's detail level to the target's: blur a sharper source, sharpen (unsharp
    mask, at most 1.5x) a softer one, so neither looks pasted on.

    Detail is measured as mean |Laplacian| on the skin of the central half of the crop.
    """
    h, w = where.shape
    window = np.s_[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    where = where[window]
    if where.sum() < 100:
        return swapped
    gray_s = cv2.cvtColor(swapped[window], cv2.COLOR_BGR2GRAY)
    reference = max(_detail(cv2.cvtColor(target[window], cv2.COLOR_BGR2GRAY), where), 1e-6)
    ratio = _detail(gray_s, where) / reference
    if 0.9 <= ratio <= 1.1:
        return swapped
    if ratio > 1.1:
        probe = _detail(cv2.GaussianBlur(gray_s, (0, 0), 1.0), where) / reference
        if probe >= ratio:
            return swapped
        # detail falls about exponentially with sigma over this range: interpolate to ratio 1
        sigma = float(np.clip(math.log(ratio) / (math.log(ratio) - math.log(max(probe, 1e-6))), 0.0, 3.0))
        return cv2.GaussianBlur(swapped, (0, 0), sigma) if sigma > 0.2 else swapped
    blurred = cv2.GaussianBlur(gray_s, (0, 0), 1.0)
    probe = _detail(gray_s + (gray_s - blurred), where) / reference  # unsharp mask, amount 1
    if probe <= ratio:
        return swapped
    amount = float(np.clip((1.0 - ratio) / (probe - ratio), 0.0, 1.5))  # detail grows ~linearly
    return swapped + amount * (swapped - cv2.GaussianBlur(swapped, (0, 0), 1.0))


class MeshSwapper:
    """Landmark-mesh face swap; CPU only, no model weights beyond the landmark model."""

    name = "mesh"

    def __init__(self, settings: MeshSwapSettings | None = None):
        self.settings = settings or MeshSwapSettings()
        self.mesh = face_mesh()

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
        if s.skin_mask:
            skin = skin_validity(texture[..., :3], local, self.mesh, iod)
            texture[..., 3] = (texture[..., 3].astype(np.float32) * skin).astype(np.uint8)
        weights = source_triangle_weights(face.landmarks, self.mesh.triangles, s.min_source_facing)
        # Worth a second (mirrored) warp per frame only if a real part of the face is unusable.
        ids = rasterize_triangles(local, face.landmarks[:, 2], self.mesh.triangles, (h, w))
        usable = texture[..., 3].astype(np.float32) / 255.0 * np.append(weights, 0.0)[ids]
        inside = ids >= 0
        needs_mirror = bool(inside.any() and float((usable[inside] < 0.5).mean()) > 0.03)
        scale = min(1.0, s.max_texture_side / max(w, h))
        if scale < 1.0:
            texture = cv2.resize(texture, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            local = local * scale
        return RegisteredSource(
            texture=texture,
            points=local,
            triangle_weight=np.append(weights, 0.0).astype(np.float32),
            face=face,
            needs_mirror=needs_mirror,
            shape=IdentityShape(face.landmarks, self.mesh) if s.identity_shape else None,
        )

    def _maps(self, ids, scale, local, source_points, shape, outside_identity=False):
        """remap() maps for the crop. Computed on the (half-size) id grid and scaled up: they
        are piecewise linear, so bilinear upsampling is exact inside triangles."""
        matrices, usable = triangle_affines(local, source_points, self.mesh.triangles)
        sx, sy = ids.shape[1] / shape[1], ids.shape[0] / shape[0]  # grid / crop, per axis
        if scale != 1.0:  # maps from grid pixels: fold the grid scale into the affines
            matrices = matrices.copy()
            column, row = matrices[:, 0, :].copy(), matrices[:, 1, :].copy()
            matrices[:, 0, :] = column / sx
            matrices[:, 1, :] = row / sy
            matrices[:, 2, :] += (0.5 / sx - 0.5) * column + (0.5 / sy - 0.5) * row
        outside = (1 / sx, 0, 0, 1 / sy, 0.5 / sx - 0.5, 0.5 / sy - 0.5) if outside_identity else (0, 0, 0, 0, -1, -1)
        map_x, map_y = maps_from_ids(ids, matrices, usable, outside)
        if scale != 1.0:
            size = (shape[1], shape[0])
            map_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)
            map_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)
        return map_x, map_y

    def _reshape_target(self, ids, scale, shaped, local, target):
        """The target crop with its face moved to the shaped mesh (its mouth, teeth, eyes and
        skin go where the source's proportions put them); unchanged outside the mesh."""
        map_x, map_y = self._maps(ids, scale, shaped, local, target.shape[:2], outside_identity=True)
        return cv2.remap(target, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def _warp(self, ids, scale, local, source_points, usable_weights, texture, shape):
        """Warp the texture onto the crop, with the usable weight of every pixel."""
        map_x, map_y = self._maps(ids, scale, local, source_points, shape)
        if scale != 1.0:
            size = (shape[1], shape[0])
            usable_weights = cv2.resize(usable_weights, size, interpolation=cv2.INTER_LINEAR)
            # next to the mesh border the scaled-up maps mix in the "outside" value: drop those
            inside = cv2.resize((ids >= 0).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
            usable_weights[inside < 0.999] = 0.0
        warped = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        valid = warped[..., 3].astype(np.float32) * (1.0 / 255.0) * usable_weights
        return warped[..., :3].astype(np.float32), valid

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
        shape = (y1 - y0, x1 - x0)
        local = (points - [x0, y0]).astype(np.float32)
        offsets = None
        if s.identity_shape and source.shape is not None and s.shape_strength > 0:
            offsets = source.shape.offsets(face.landmarks, ShapeSettings(s.shape_strength, s.shape_outline))
        region = frame[y0:y1, x0:x1]
        face_size = float((points.max(axis=0) - points.min(axis=0)).max())
        scale = s.work_face_px / face_size if s.work_face_px else 1.0
        if scale >= 0.9:  # small enough: compose at full size
            blended, _ = self._compose(
                region[..., :3].astype(np.float32), local, face.landmarks[:, 2], source, offsets
            )
            region[..., :3] = np.clip(blended, 0, 255).astype(np.uint8)
            return True
        work = (max(8, round(shape[0] * scale)), max(8, round(shape[1] * scale)))
        grid = np.array([work[1] / shape[1], work[0] / shape[0]], np.float32)
        small = downscale(region[..., :3], work)
        target_small = small.astype(np.float32)
        on_work = (local + 0.5) * grid - 0.5  # pixel centres, as cv2.resize maps them
        blended, mask = self._compose(
            target_small, on_work, face.landmarks[:, 2], source, None if offsets is None else offsets * grid
        )
        apply_at_full_size(region, blended, target_small, mask)
        return True

    def _compose(
        self,
        target: np.ndarray,
        local: np.ndarray,
        depth: np.ndarray,
        source: RegisteredSource,
        offsets: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The swapped crop (float32 BGR) and its finest-level blend weight (where the result is
        the source), for target (float32 BGR crop) with landmarks at local (crop pixels), its
        inner face moved by offsets (identity shape) when given."""
        s, mesh = self.settings, self.mesh
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
        reference = target  # the target as shot: its detail level, its occluders
        if reshape:
            target = self._reshape_target(ids, scale, local, original, target)
        swapped, valid = self._warp(
            ids, scale, local, source.points, source.triangle_weight[ids], source.texture, shape
        )
        if s.mirror_fill and source.needs_mirror:
            # the same target triangle, textured from the mirror image triangle of the source
            mirror_ids = np.where(ids >= 0, mesh.mirror_triangles[np.maximum(ids, 0)], -1)
            mirrored, valid_m = self._warp(
                ids,
                scale,
                local,
                source.points[mesh.mirror],
                source.triangle_weight[mirror_ids],
                source.texture,
                shape,
            )
            fill = (1.0 - valid) * valid_m
            total = valid + fill
            swapped = (swapped * valid[..., None] + mirrored * fill[..., None]) / np.maximum(total, 1e-3)[..., None]
            valid = total
        face_size = float((local.max(axis=0) - local.min(axis=0)).max())
        iod = max(inter_ocular_distance(local), 4.0)
        soften = max(3, int(face_size * 0.02) | 1)
        valid = cv2.blur(valid, (soften, soften))  # soften texel-sharp validity edges (box: cheap)

        skin = expected_skin(local, mesh, shape, iod) & (valid > 0.5)
        if s.match_sharpness:
            swapped = match_sharpness(swapped, reference, skin)
        if s.match_lighting:
            swapped = match_lighting(swapped, target, skin.astype(np.float32) * valid, s.lighting_sigma * iod)
        mask = feathered_face_mask(local[mesh.face_oval], shape, face_size, s.feather) * valid
        mouth = mouth_mask(local[mesh.lips_inner], shape, face_size) if s.keep_target_mouth else None
        if mouth is not None:
            mask *= 1.0 - mouth
        occluders = None
        if s.target_occluders:
            occluders = target_occluders(reference, original, mesh, iod)
            if reshape:  # the target moved under the shaped mesh; what stands in front did not
                target += occluders[..., None] * (reference - target)
            mask *= 1.0 - occluders
        if s.multiband:
            # outside the usable face the foreground is the target itself, so no level of the
            # pyramid carries the black surroundings (or the crop's edge) into the result
            swapped = target + np.minimum(valid * 4.0, 1.0)[..., None] * (swapped - target)
            blended = multiband_blend(swapped, target, mask)
            if mouth is not None:  # the pyramid's low bands reach into the mouth: put it back exactly
                blended += mouth[..., None] * (target - blended)
            if occluders is not None:  # and into what stands in front
                blended += occluders[..., None] * (target - blended)
        else:
            blended = target + mask[..., None] * (swapped - target)
        return blended, mask


def downscale(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """image resized down to shape (h, w): pyrDown halvings (cheap anti-aliasing), then a
    bilinear step of less than 2x (INTER_AREA at odd ratios costs more than the rest)."""
    while image.shape[0] >= 2 * shape[0] and image.shape[1] >= 2 * shape[1]:
        image = cv2.pyrDown(image)
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def apply_at_full_size(region: np.ndarray, blended: np.ndarray, target_small: np.ndarray, mask: np.ndarray) -> None:
    """Write a result composed at working scale into the full-size crop, in place.

    out = m * up(blended) + (1 - m) * (target + up(blended - target_small)), m = up(mask):
    the swapped face comes from the working scale; where the target shows, its detail finer
    than the working scale stays, with the blend's low-frequency change added. uint8/int16
    OpenCV calls only (no whole-crop float copies), on the rows and columns that change.
    """
    delta = blended - target_small
    moved = cv2.absdiff(blended, target_small)
    changed = (np.maximum(np.maximum(moved[..., 0], moved[..., 1]), moved[..., 2]) > 0.5) | (mask > 1e-3)
    if not changed.any():
        return
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    h, w = region.shape[:2]
    fy, fx = h / mask.shape[0], w / mask.shape[1]
    # the full-size pixels whose bilinear samples reach a changed working pixel
    r0, r1 = max(0, int((rows[0] - 1) * fy)), min(h, int(math.ceil((rows[-1] + 2) * fy)))
    c0, c1 = max(0, int((cols[0] - 1) * fx)), min(w, int(math.ceil((cols[-1] + 2) * fx)))
    window = np.s_[r0:r1, c0:c1]
    size = (w, h)
    up_blended = cv2.resize(np.clip(blended, 0, 255).astype(np.uint8), size, interpolation=cv2.INTER_LINEAR)
    up_delta = cv2.resize(delta, size, interpolation=cv2.INTER_LINEAR)  # float32: int16 resize has no SIMD path
    up_mask = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)[window]
    shown = cv2.add(region[window][..., :3], up_delta[window], dtype=cv2.CV_8U)
    region[r0:r1, c0:c1, :3] = cv2.blendLinear(up_blended[window], shown, up_mask, 1.0 - up_mask)
