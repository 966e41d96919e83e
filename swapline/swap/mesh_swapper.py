"""The built-in swapper: the source face's texture moved onto the target's 468-point mesh.

Per source (once): a texture crop with a validity channel (0 where the crop leaves the image)
and a usability weight per triangle (0 where the source head turns a triangle away from the
camera). Per target face (every frame): one remap of the face crop through the mesh, lighting
matched to the target, and a feathered oval blend that keeps the target's open mouth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.topology import face_mesh, inter_ocular_distance
from swapline.swap.color import match_lighting
from swapline.swap.masks import feathered_face_mask, mouth_mask
from swapline.swap.mesh_warp import build_maps


@dataclass(frozen=True)
class MeshSwapSettings:
    feather: float = 0.08  # blend edge width, as a fraction of the face size
    match_lighting: bool = True
    lighting_sigma: float = 0.8  # low-pass radius for lighting transfer, x inter-ocular distance
    keep_target_mouth: bool = True
    # A source triangle seen at less than this cosine (turned away) is not used.
    min_source_facing: float = 0.05
    crop_margin: float = 0.08
    max_texture_side: int = 400


@dataclass(frozen=True, eq=False)
class RegisteredSource:
    """What the swapper keeps of a source face; built once, reused for every frame."""

    texture: np.ndarray  # (H, W, 4) uint8, BGR + validity
    points: np.ndarray  # (468, 2) float32, landmark positions in texture pixels
    triangle_weight: np.ndarray  # (T + 1,) float32; the last entry (for "no triangle") is 0
    face: Face


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


class MeshSwapper:
    """Landmark-mesh face swap; CPU only, no model weights beyond the landmark model."""

    name = "mesh"

    def __init__(self, settings: MeshSwapSettings | None = None):
        self.settings = settings or MeshSwapSettings()
        self.mesh = face_mesh()

    def register(self, image: np.ndarray, face: Face) -> RegisteredSource:
        if face.landmarks is None:
            raise ValueError("the source face needs landmarks")
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
        scale = min(1.0, self.settings.max_texture_side / max(w, h))
        if scale < 1.0:
            texture = cv2.resize(texture, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            local = local * scale
        weights = source_triangle_weights(face.landmarks, self.mesh.triangles, self.settings.min_source_facing)
        return RegisteredSource(
            texture=texture,
            points=local,
            triangle_weight=np.append(weights, 0.0).astype(np.float32),
            face=face,
        )

    def swap(self, frame: np.ndarray, face: Face, source: RegisteredSource) -> bool:
        """Replace one face in frame, in place. False when the face lies outside the frame."""
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
        map_x, map_y, ids = build_maps(local, face.landmarks[:, 2], source.points, self.mesh.triangles, shape)
        warped = cv2.remap(source.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        face_size = float((points.max(axis=0) - points.min(axis=0)).max())

        valid = warped[..., 3].astype(np.float32) * (1.0 / 255.0) * source.triangle_weight[ids]
        valid = cv2.GaussianBlur(valid, (0, 0), max(1.0, face_size * 0.01))
        mask = feathered_face_mask(local[self.mesh.face_oval], shape, face_size, s.feather) * valid
        if s.keep_target_mouth:
            mask *= 1.0 - mouth_mask(local[self.mesh.lips_inner], shape, face_size)

        region = frame[y0:y1, x0:x1]
        target = region[..., :3].astype(np.float32)
        swapped = warped[..., :3].astype(np.float32)
        if s.match_lighting:
            sigma = s.lighting_sigma * max(inter_ocular_distance(face.landmarks), 4.0)
            swapped = match_lighting(swapped, target, valid * (ids >= 0), sigma)
        blended = target + mask[..., None] * (swapped - target)
        region[..., :3] = np.clip(blended, 0, 255).astype(np.uint8)
        return True
