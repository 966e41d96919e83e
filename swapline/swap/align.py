"""Face alignment to the 5-point templates the neural models were trained with, and paste-back.

A similarity transform (rotation, uniform scale, translation) maps the face's 5 points (eye
centres, nose tip, mouth corners) onto a template; the model works on that crop; the result
goes back through the inverse transform, warped only onto the face's own sub-rectangle of the
frame (never the whole frame), with a feathered mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.topology import face_mesh

# Points in pixels of a 112 (or 128, 512) px crop: left eye, right eye (as seen), nose tip,
# left mouth corner, right mouth corner. InsightFace keeps its ArcFace template in float32 and builds
# the 128 px one in float32 too; the same values here give the reference's alignment to the last bit.
TEMPLATES = {
    "arcface_112_v1": np.array(
        [[39.7300, 51.1380], [72.2700, 51.1380], [56.0000, 68.4930], [42.4630, 87.0100], [69.5370, 87.0100]]
    ),
    "arcface_112_v2": np.array(
        [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
        np.float32,
    ),
    "ffhq_512": np.array(
        [
            [192.98138, 239.94708],
            [318.90277, 240.19360],
            [256.63416, 314.01935],
            [201.26117, 371.41043],
            [313.08905, 371.15118],
        ]
    ),
}
TEMPLATES["arcface_128_v2"] = TEMPLATES["arcface_112_v2"] + np.array([8.0, 0.0], np.float32)  # 128 crop
TEMPLATE_SIZES = {"arcface_112_v1": 112, "arcface_112_v2": 112, "arcface_128_v2": 128, "ffhq_512": 512}

_MOUTH_RIGHT, _MOUTH_LEFT, _NOSE_TIP = 61, 291, 1  # FaceMesh: corners as seen left / right


def template_points(name: str, size: int) -> np.ndarray:
    return TEMPLATES[name] * (size / TEMPLATE_SIZES[name])


def five_points(face: Face) -> np.ndarray:
    """Eye centres, nose tip, mouth corners (image-left first), from landmarks or 5-point detectors."""
    if face.landmarks is not None:
        mesh = face_mesh()
        xy = face.landmarks[:, :2]
        return np.stack(
            [
                xy[mesh.right_eye].mean(axis=0),
                xy[mesh.left_eye].mean(axis=0),
                xy[_NOSE_TIP],
                xy[_MOUTH_RIGHT],
                xy[_MOUTH_LEFT],
            ]
        ).astype(np.float64)
    if face.keypoints.shape[0] == 5:  # float32 from the detectors stays float32, as InsightFace aligns it
        return face.keypoints if face.keypoints.dtype == np.float32 else face.keypoints.astype(np.float64)
    raise ValueError("alignment needs landmarks or a 5-point detector")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) taking src points onto dst points, as a 2x3 matrix.

    The template's mean is taken in the template's own precision (float32 for ArcFace) and the
    operations run in the reference's order, so the matrix equals InsightFace's (scikit-image's)."""
    src, dst = np.asarray(src), np.asarray(dst)
    if src.dtype != np.float32:
        src = src.astype(np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    covariance = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(covariance) < 0:
        sign[1] = -1
    rotation = u @ np.diag(sign) @ vt
    scale = 1.0 / s.var(axis=0).sum() * (sigma @ sign)
    matrix = np.zeros((2, 3))
    matrix[:, 2] = mu_d - scale * (rotation @ mu_s)
    matrix[:, :2] = rotation * scale
    return matrix


def warp_face(image: np.ndarray, points: np.ndarray, template: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned size x size crop and the 2x3 matrix that made it (image -> crop)."""
    matrix = similarity_transform(points, template_points(template, size))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, matrix


def box_mask(size: int, feather: float = 0.1, padding: float = 0.02) -> np.ndarray:
    """Crop-space blend mask: 1 inside, fading to 0 at the crop border."""
    mask = np.zeros((size, size), np.float32)
    pad = max(1, int(size * (padding + feather)))
    mask[pad:-pad, pad:-pad] = 1.0
    sigma = max(1.0, size * feather / 2)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def paste_back(
    frame: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    mask: np.ndarray,
    keep: np.ndarray | None = None,
) -> bool:
    """Blend crop into frame (in place) through the inverse of matrix, on the crop's footprint only.

    keep: optional (points) polygon in frame pixels that stays the frame's (the open mouth).
    """
    size = crop.shape[0]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    h, w = frame.shape[:2]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int)
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return False
    local = inverse.copy()
    local[:, 2] -= (x0, y0)  # warp straight into the sub-rectangle
    region_size = (x1 - x0, y1 - y0)
    pasted = cv2.warpAffine(crop, local, region_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, local, region_size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    if keep is not None:
        hole = np.zeros(alpha.shape, np.uint8)
        cv2.fillPoly(hole, [np.round(keep - (x0, y0)).astype(np.int32)], 255)
        hole = cv2.GaussianBlur(hole, (0, 0), max(1.0, size / 128)).astype(np.float32) / 255.0
        alpha *= 1.0 - hole
    region = frame[y0:y1, x0:x1, :3]
    blended = region.astype(np.float32) + alpha[..., None] * (pasted.astype(np.float32) - region)
    region[...] = np.clip(blended, 0, 255).astype(np.uint8)
    return True


def inner_mouth(face: Face) -> np.ndarray | None:
    if face.landmarks is None:
        return None
    return face.landmarks[face_mesh().lips_inner, :2]
