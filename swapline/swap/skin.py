"""Skin model of the source face: where the source shows something other than skin (a hair
fringe, a microphone, a glasses frame) on a part of the face that should be skin, the target
is kept there instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from swapline.faces.face import Face
from swapline.faces.topology import MeshTopology, inter_ocular_distance
from swapline.swap.mesh_warp import rasterize_triangles

# The underside of the nose (nostrils, columella): dark in every face, never an occluder.
_NOSTRILS = np.array([64, 98, 97, 2, 326, 327, 294, 48, 278, 4, 1])


def feature_mask(points: np.ndarray, mesh: MeshTopology, shape: tuple[int, int], grow: float) -> np.ndarray:
    """uint8 mask of eyes, brows and lips (which are not skin but belong to the face), grown by `grow` px."""
    mask = np.zeros(shape, np.uint8)
    for ring in (mesh.left_eye, mesh.right_eye, mesh.lips_outer):
        cv2.fillPoly(mask, [np.round(points[ring]).astype(np.int32)], 255)
    for group in (mesh.left_eyebrow, mesh.right_eyebrow, _NOSTRILS):
        hull = cv2.convexHull(np.round(points[group]).astype(np.int32))
        cv2.fillPoly(mask, [hull], 255)
    size = max(3, int(grow) | 1)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def expected_skin(points: np.ndarray, mesh: MeshTopology, shape: tuple[int, int], iod: float) -> np.ndarray:
    """Bool mask of the face oval minus its features: everything here should look like skin."""
    oval = np.zeros(shape, np.uint8)
    cv2.fillPoly(oval, [np.round(points[mesh.face_oval]).astype(np.int32)], 255)
    features = feature_mask(points, mesh, shape, grow=0.12 * iod)
    return (oval > 0) & (features == 0)


def skin_validity(
    texture_bgr: np.ndarray, points: np.ndarray, mesh: MeshTopology, iod: float, threshold: float = 3.5
) -> np.ndarray:
    """float32 [0, 1]: 0 where the source's face is covered by something that is not skin.

    What covers a forehead (a hair fringe, a hat brim) comes in from the top of the face: so on
    the forehead (above the brows), pixels far from the skin's colour (Mahalanobis distance in
    Lab, fitted on the central face) that connect to the top border of the face count as an
    occluder. At the temples and cheeks (above the mouth) what comes in from the side (a
    headscarf, a lock of hair) must also differ from the skin in chromaticity: a shadow keeps
    the skin's r:g:b. The jaw is left alone: beards and shadows there defeat a colour model.
    On a turned face the mesh reaches past the face's outline ring (the near cheek bulges over
    it) and its edge there can lie on the background: what is not skin-coloured there counts too,
    as does a strand of dark hair along the outline above the mouth.
    A part flagged wrongly costs little: it is taken from the mirror side, or the target stays.
    """
    occluder, k = _covering(texture_bgr, points, mesh, iod, threshold, side_rules=True)
    if occluder is None:
        return np.ones(texture_bgr.shape[:2], np.float32)
    occluder = cv2.dilate(occluder, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return 1.0 - cv2.GaussianBlur(occluder, (0, 0), k / 2).astype(np.float32) / 255.0


def target_hair(
    target_bgr: np.ndarray,
    points: np.ndarray,
    mesh: MeshTopology,
    iod: float,
    grid_iod: float = 40.0,
    grid: Grid | None = None,
) -> np.ndarray:
    """float32 [0, 1]: what covers the target's face from above (a fringe, a hat brim, the edge
    of a headscarf, hair over a temple), to be kept in front of the swapped face: FaceMesh's
    outline runs under a fringe to where the forehead would be, and without this a bald
    source's forehead was pasted over the target's fringe with a straight edge.

    The source's forehead rule (skin_validity) applied to the target: above the brows, what
    is far from the skin's colour and reaches the top of the outline. Not its side rules: a
    blown highlight down a target's cheek entered from the temple and was kept as if hair,
    and lower down objects are target_occluders' work. Made on a grid with about grid_iod px
    between the eyes, brought back up with a soft edge."""
    shape = target_bgr.shape[:2]
    g = _grid_for(grid, target_bgr, points, iod, grid_iod)
    occluder, k = _covering(cv2.convertScaleAbs(g.image), g.local, mesh, g.iod, 3.5, side_rules=False, grid=g)
    if occluder is None or not occluder.any():
        return np.zeros(shape, np.float32)
    occluder = cv2.dilate(occluder, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    cover = cv2.GaussianBlur(occluder.astype(np.float32) / 255.0, (0, 0), k / 2)
    return cv2.resize(cover, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _covering(
    texture_bgr: np.ndarray,
    points: np.ndarray,
    mesh: MeshTopology,
    iod: float,
    threshold: float,
    side_rules: bool,
    grid: Grid | None = None,
) -> tuple[np.ndarray | None, int]:
    """(uint8 255 where the face is covered, the rules' kernel size): the rules of skin_validity,
    the forehead's alone without side_rules; None when too little of the central face shows to
    fit the skin's colour. grid: texture_bgr is that grid's image, whose shared maps are used."""
    shape = texture_bgr.shape[:2]
    k = max(3, int(0.08 * iod) | 1)
    skin_area = expected_skin(points, mesh, shape, iod) if grid is None else grid.skin_area(mesh)
    lab = cv2.cvtColor(texture_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    centre = np.zeros(shape, np.uint8)
    core = points[[50, 280, 4, 168]]  # cheeks, nose tip, between the eyes: rarely occluded
    cv2.fillConvexPoly(centre, np.round(cv2.convexHull(core.astype(np.float32))).astype(np.int32)[:, 0], 255)
    sample = lab[(centre > 0) & skin_area]
    if len(sample) < 50:
        return None, k
    # floor 4: very even skin must not flag its own shading
    distance = colour_distance(lab, colour_model(sample, 4.0))
    # forehead: above the brows, measured along the face's own vertical axis
    height = _face_height(points, shape) if grid is None else grid.height
    brows = _face_height(points, shape, at=points[np.concatenate([mesh.left_eyebrow, mesh.right_eyebrow])])
    forehead = skin_area & (height < brows.max())
    candidate = ((distance > threshold) & forehead).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, kernel)  # drop speckles (pores, shine)
    top = np.zeros(shape, np.uint8)  # the face's top border
    cv2.polylines(top, [np.round(points[mesh.face_oval]).astype(np.int32)], True, 1, thickness=k)
    count, labels = cv2.connectedComponents(candidate)
    touching = np.zeros(count, np.uint8)  # blob id -> 255 when it reaches the border
    touching[labels[(top > 0) & (candidate > 0)]] = 255
    touching[0] = 0
    # grown once more than the other rules' finds: the fade then lies on the skin beyond what
    # covers the forehead, not on its blurred rim (a white hat brim's edge, half weighted, left
    # a light line across the swapped forehead)
    occluder = cv2.dilate(touching[labels], kernel)
    if not side_rules:
        return occluder, k
    unlike = (distance > 4.0) & (_chroma_distance(texture_bgr, skin_area & (centre > 0)) > 4.0)
    above = height < 0.6
    occluder |= _from_the_sides(unlike & skin_area, top, above, k, skin_area.sum())
    oval = np.zeros(shape, np.uint8)
    cv2.fillPoly(oval, [np.round(points[mesh.face_oval]).astype(np.int32)], 1)
    mesh_area = rasterize_triangles(points, np.zeros(len(points)), mesh.triangles, shape) >= 0
    occluder[mesh_area & (oval == 0) & unlike] = 255
    # a strand of dark hair along the outline at the temple or cheek: too thin for the blob
    # rules, and dark hair keeps the skin's r:g:b. Much darker than the skin, in the outline's
    # band, above the mouth (a beard's edge stays)
    dark = lab[..., 0] < float(sample[:, 0].mean() - 2.5 * np.sqrt(sample[:, 0].var() + 4.0))
    occluder[(distance > 4.0) & dark & (top > 0) & (oval > 0) & above] = 255
    return occluder, k


def _chroma_distance(image: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Each pixel's distance from the skin (sampled on core) in (r, g) chromaticity, which a
    shadow does not change: the skin's own shading stays near, a background or a headscarf not."""
    pixels = image.astype(np.float32, copy=False)
    chroma = cv2.transform(pixels, np.array([[0, 0, 1, 1], [0, 1, 0, 1]], np.float32))
    chroma /= cv2.transform(pixels, np.array([[1, 1, 1, 3]], np.float32))[..., None]
    return colour_distance(chroma, colour_model(chroma[core], 2e-5))


def _from_the_sides(
    unlike: np.ndarray, border: np.ndarray, above_mouth: np.ndarray, k: int, skin_px: int, min_area: float = 0.005
) -> np.ndarray:
    """uint8 255 where a blob unlike the skin in colour and in chromaticity enters the face
    across its outline above the mouth (a headscarf, a lock of hair at the temple)."""
    candidate = cv2.morphologyEx(
        unlike.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    )
    _, labels, stats, _ = cv2.connectedComponentsWithStats(candidate)
    kept = np.zeros(len(stats), np.uint8)  # blob id -> 255 when it enters and is big
    kept[labels[(border > 0) & (candidate > 0) & above_mouth]] = 255
    kept[(stats[:, cv2.CC_STAT_AREA] < min_area * skin_px)] = 0
    kept[0] = 0
    return kept[labels]


# Skin less colourful than this (Lab chroma: a monochrome or graded frame) says nothing by its
# colourfulness: the rules that read a share of the skin's chroma stay off.
MIN_SKIN_CHROMA = 8.0


def lab_chroma(lab: np.ndarray) -> np.ndarray:
    """Per-pixel chroma (distance from grey) of a float32 Lab image with a and b around 0."""
    return cv2.magnitude(np.ascontiguousarray(lab[..., 1]), np.ascontiguousarray(lab[..., 2]))


@dataclass(frozen=True)
class OccluderSettings:
    """Thresholds of target_occluders, measured on the tests/data portraits (clear faces and
    composited objects); see tests/test_swap_occlusion.py."""

    grid_iod: float = 40.0  # the work grid puts this many pixels between the outer eye corners
    colour: float = 4.0  # Mahalanobis distance from the skin in Lab: not skin
    chroma: float = 2.0  # ... and in (r, g) chromaticity: not a shadow or a lit patch of skin
    texture: float = 0.05  # band-pass energy / brightness: above this, hair or beard
    min_area: float = 0.015  # of the face oval
    entry: float = 0.3  # blobs must cross the outline below this far from the eyes to the chin
    edge: float = 0.45  # skin-distance just around a blob / inside it: below this, a sharp edge
    hair: float = 3.0  # Mahalanobis distance (Lab) from the hair sampled above the brows
    # Lab chroma under this share of the skin's: not skin either, however near in colour (a light
    # grey card on pale skin lies within the skin's own spread; only its colourfulness differs)
    grey: float = 0.35


def colour_model(samples: np.ndarray, floor: float) -> np.ndarray:
    """Whitening transform (d x d+1, for cv2.transform) of samples (n x d), with a floor on the
    covariance so that very even skin does not flag its own shading."""
    covariance, mean = cv2.calcCovarMatrix(samples, None, cv2.COVAR_NORMAL | cv2.COVAR_ROWS | cv2.COVAR_SCALE)
    return _whitening(mean[0], covariance, floor)


def _whitening(mean: np.ndarray, covariance: np.ndarray, floor: float) -> np.ndarray:
    white = np.linalg.cholesky(np.linalg.inv(covariance + np.eye(len(mean)) * floor)).T
    return np.hstack([white, -(white @ mean)[:, None]]).astype(np.float32)


def _lab(image: np.ndarray) -> np.ndarray:
    """float32 Lab of a BGR grid image (float32 or uint8): L 0..100, a and b around 0."""
    lab = cv2.cvtColor(cv2.convertScaleAbs(image), cv2.COLOR_BGR2LAB).astype(np.float32)
    return cv2.transform(lab, np.array([[100 / 255, 0, 0, 0], [0, 1, 0, -128], [0, 0, 1, -128]], np.float32))


_CORE = [205, 425, 197, 4]  # the cheeks and nose, where the skin's colour is sampled


def _skin_sample(lab: np.ndarray, local: np.ndarray, area: np.ndarray, oval: np.ndarray) -> np.ndarray:
    """bool on the grid: where the skin's colour is sampled, the cheeks and nose (below any
    glasses bridge, rarely covered) within the skin area, an object's colour there left out."""
    core = np.zeros(lab.shape[:2], np.uint8)
    cv2.fillConvexPoly(core, np.round(cv2.convexHull(local[_CORE])).astype(np.int32)[:, 0], 1)
    where = (core > 0) & area
    if where.sum() < 20:
        return where
    return uncovered_skin(lab, where, area & (oval > 0) & (core == 0))


def _recentred(model: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The same whitening, centred on another colour."""
    return np.hstack([model[:, :-1], -(model[:, :-1] @ mean)[:, None]]).astype(np.float32)


def uncovered_skin(
    lab: np.ndarray, sample: np.ndarray, rest: np.ndarray, share: float = 0.1, gap: float = 12.0
) -> np.ndarray:
    """The part of sample (bool, where the skin is sampled: cheeks and nose) that is the face's
    skin when an object covers some of it. Two colours in sample, each at least share of it and
    gap apart in (a, b) (Lab chroma: an object's colour, not the skin's own shading): the one
    that more of the rest of the face (bool) is near is the skin. Otherwise sample itself."""
    samples = lab[sample]
    chroma = samples[:, 1:]
    offset = chroma - np.median(chroma, axis=0)
    spread = np.einsum("ij,ij->i", offset, offset)
    if np.count_nonzero(spread > (0.75 * gap) ** 2) < share * len(samples):
        return sample  # one colour (a clear face): nothing to split
    centre, other = chroma[np.argmin(spread)], chroma[np.argmax(spread)]
    near = np.zeros(len(samples), bool)
    for _ in range(8):  # two-means on chroma, from the median and the sample farthest from it
        to_centre, to_other = chroma - centre, chroma - other
        split = np.einsum("ij,ij->i", to_centre, to_centre) <= np.einsum("ij,ij->i", to_other, to_other)
        if split.all() or np.array_equal(split, near):
            break
        near = split
        centre, other = chroma[near].mean(axis=0), chroma[~near].mean(axis=0)
    if near.all() or min(near.mean(), 1.0 - near.mean()) < share or np.linalg.norm(centre - other) < gap:
        return sample
    explained = [
        int((colour_distance(lab[rest], colour_model(samples[group], 9.0)) < 3.0).sum()) if group.sum() >= 12 else -1
        for group in (near, ~near)
    ]
    out = np.zeros_like(sample)
    out[sample] = near if explained[0] >= explained[1] else ~near
    return out


def colour_distance(values: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of every value (..., d) under model."""
    flat = values.reshape(-1, 1, values.shape[-1]).astype(np.float32, copy=False)
    white = cv2.transform(flat, model)
    squares = cv2.transform(cv2.multiply(white, white), np.ones((1, white.shape[-1]), np.float32))
    return cv2.sqrt(squares).reshape(values.shape[:-1])


def target_occluders(
    target_bgr: np.ndarray,
    points: np.ndarray,
    mesh: MeshTopology,
    iod: float,
    settings: OccluderSettings = OccluderSettings(),
    grid: Grid | None = None,
    learned: np.ndarray | None = None,
) -> np.ndarray:
    """float32 [0, 1]: 1 where something stands in front of the target's face (a microphone, a
    card), to be kept in front of the swapped face. learned: the skin's colour over a feed's
    frames (Face.skin, see SkinTracker), else it is sampled on this frame's cheeks and nose.

    Skin, shadows, beards and hair are all "not skin-coloured" somewhere on a clear portrait;
    what sets an object apart is several things at once, so a blob of the face oval counts
    only if it is
      - far from the skin's colour (Lab) or much less colourful (a light grey card on pale
        skin), and from its chromaticity (a shadow keeps the skin's r:g:b, so does a warm lit
        patch; a microphone, a card do not),
      - smooth (hair and beard are textured at the work scale; grey hair and a grey card only
        differ there),
      - sharp-edged (an object's outline is a step; a shadow or stubble fades out),
      - entering across the face outline below the eyes (what comes from above is a fringe or a
        hat: left alone), not small, and not the colour of the hair above the brows unless it is
        much smoother than that hair.
    Made on a grid with about 40 px between the eyes (a region, not detail); the kept blobs
    grow a little into matching pixels (an object also covers the lips or eyes next to it) and
    come back up with a soft edge.
    """
    s = settings
    shape = target_bgr.shape[:2]
    g = _grid_for(grid, target_bgr, points, iod, s.grid_iod)
    image, gray, texture, local, scale = g
    lab = _lab(image)
    grid = image.shape[:2]
    iod_g = g.iod
    area = g.skin_area(mesh)
    ring = np.round(local[mesh.face_oval]).astype(np.int32)
    oval = np.zeros(grid, np.uint8)
    cv2.fillPoly(oval, [ring], 1)
    if learned is not None:  # a feed's: the skin as seen over the frames before, whatever covers it now
        skin = _whitening(learned[0], learned[1:], 9.0)
        where = area & (colour_distance(lab, skin) < 3.0)
        if where.sum() < 20:
            return np.zeros(shape, np.float32)
    else:
        where = _skin_sample(lab, local, area, oval)
        if where.sum() < 20:
            return np.zeros(shape, np.float32)
        skin = colour_model(lab[where], 9.0)
    far = colour_distance(lab, skin) > s.colour
    centre = learned[0] if learned is not None else lab[where].mean(axis=0)
    skin_chroma = float(np.hypot(centre[1], centre[2]))
    grey = np.zeros(grid, bool)
    if skin_chroma >= MIN_SKIN_CHROMA:
        grey = lab_chroma(lab) < s.grey * skin_chroma
        far |= grey
    k = max(3, int(0.1 * iod_g) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    height = g.height
    border = np.zeros(grid, np.uint8)
    cv2.polylines(border, [ring], True, 1, thickness=k)
    min_px = s.min_area * float(oval.sum())
    # Every blob kept below lies inside a blob of the opened far-from-skin area that enters below
    # the eyes and is as large (opening is monotone): when there is none, nothing is in front.
    entering = (border > 0) & (height > s.entry)
    opened = cv2.morphologyEx((far & area).astype(np.uint8), cv2.MORPH_OPEN, kernel)
    if not _large_blob_touching(opened, entering, min_px):
        return np.zeros(shape, np.float32)
    texture = texture / (gray + 20.0)
    candidate = far & ((_chroma_distance(image, where) > s.chroma) | grey)
    candidate = (candidate & (texture < s.texture) & area).astype(np.uint8)
    candidate = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, kernel)
    if not candidate.any():
        return np.zeros(shape, np.float32)
    contact = (border > 0) & (candidate > 0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidate)
    hair: tuple[np.ndarray | None, float] | None = None
    occluder = np.zeros(grid, np.uint8)
    for i in np.unique(labels[contact & (height > s.entry)]):
        if i == 0 or stats[i, cv2.CC_STAT_AREA] < min_px:
            continue
        blob = labels == i
        grown = cv2.dilate(blob.astype(np.uint8), kernel)
        near = cv2.dilate(blob.astype(np.uint8), np.ones((3, 3), np.uint8))
        around = (cv2.dilate(blob.astype(np.uint8), np.ones((9, 9), np.uint8)) > near) & area
        if around.sum() > 5 and _fades(lab[blob], lab[around], skin, float(centre[0]), s.edge):
            continue  # fades into the skin: a shadow, stubble
        mean = lab[blob].mean(axis=0)
        if float(np.median(height[contact & blob])) < 0.7:
            if hair is None:
                hair = _hair_model(lab, texture, oval, height, far, k)
            model, hair_texture = hair
            textured = float(np.median(texture[blob])) > 0.5 * hair_texture
            if model is not None and textured and colour_distance(mean[None], model)[0] < s.hair:
                continue  # the hair, hanging over the side of the face
        # the object also covers the eyes, lips or edge pixels next to it: grow into its colour
        # (all the way over the lips, eyes and nostrils, which the blob rules leave out)
        reach = (grown > 0) | ((oval > 0) & ~area)
        same = (colour_distance(lab, _recentred(skin, mean)) < 3.0) & far & (oval > 0) & reach
        _, joined = cv2.connectedComponents((same | blob).astype(np.uint8))
        ids = np.unique(joined[blob])
        occluder |= np.isin(joined, ids[ids > 0]).astype(np.uint8)
    if not occluder.any():
        return np.zeros(shape, np.float32)
    occluder = cv2.dilate(occluder, np.ones((5, 5), np.uint8)).astype(np.float32)
    occluder = cv2.resize(occluder, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(occluder * 2.0, 0.0, 1.0)


# Below this share of the nose and upper cheeks' Lab chroma, lower-face pixels are beard (white or
# grey: the colour-distance rule misses it on pale skin) or stubble; shaved lower faces on the test
# photos read 0.6-0.97 at their median.
_GREY_BEARD = 0.4


def target_beard(
    target_bgr: np.ndarray,
    points: np.ndarray,
    mesh: MeshTopology,
    iod: float,
    grid_iod: float = 40.0,
    grid: Grid | None = None,
) -> np.ndarray:
    """float32 [0, 1]: the target's beard or stubble (kept when the settings keep it): textured
    pixels of the lower face, below the nose and outside the lips, far from the colour of the
    skin of the nose and upper cheeks (where a beard does not grow), or far less colourful than
    it (a white beard), in patches bigger than a smile line's shade. Made on a grid with about
    grid_iod px between the eyes, brought back up with a soft edge."""
    shape = target_bgr.shape[:2]
    image, gray, texture, local, scale = _grid_for(grid, target_bgr, points, iod, grid_iod)
    texture = texture / (gray + 20.0)
    lab = cv2.cvtColor(cv2.convertScaleAbs(image), cv2.COLOR_BGR2LAB).astype(np.float32)
    grid = image.shape[:2]
    area = expected_skin(local, mesh, grid, iod * scale)
    core = np.zeros(grid, np.uint8)  # nose bridge, nose tip, upper cheeks
    cv2.fillConvexPoly(core, np.round(cv2.convexHull(local[[197, 4, 50, 280]])).astype(np.int32)[:, 0], 1)
    where = (core > 0) & area
    if where.sum() < 20:
        return np.zeros(shape, np.float32)
    down = _face_down(local)
    ys, xs = np.indices(grid, dtype=np.float32)
    below_nose = xs * down[0] + ys * down[1] > float(local[2] @ down)  # 2: under the nose
    beard = (colour_distance(lab, colour_model(lab[where], 9.0)) > 4.0) & (texture > 0.05)
    chroma = cv2.magnitude(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    core_chroma = float(np.median(chroma[where]))
    if core_chroma >= MIN_SKIN_CHROMA:  # a grey or white beard: near the pale skin's colour, far less colourful
        beard |= chroma < _GREY_BEARD * core_chroma
    beard &= area & below_nose
    k = max(3, int(0.08 * iod * scale) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    beard = cv2.morphologyEx(beard.astype(np.uint8), cv2.MORPH_CLOSE, kernel)  # stubble: one region
    beard = cv2.morphologyEx(beard, cv2.MORPH_OPEN, kernel)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(beard)
    small = stats[:, cv2.CC_STAT_AREA] < 0.05 * (iod * scale) ** 2  # a smile line's shade, not a beard
    small[0] = False
    beard[small[labels]] = 0
    beard = beard.astype(np.float32)
    if not beard.any():
        return np.zeros(shape, np.float32)
    beard = cv2.GaussianBlur(beard, (0, 0), k / 3)
    return cv2.resize(beard, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _fades(blob: np.ndarray, around: np.ndarray, skin: np.ndarray, skin_lightness: float, edge: float) -> bool:
    """Whether the pixels just around a blob (Lab) are still far from the skin (a shadow or
    stubble thinning out into it) rather than meeting it at a step (an object's outline):
    their median distance from the skin against edge x the blob's, in the skin model's
    whitened space. For a blob lighter than the skin (no shadow is) only the part of that
    distance along the skin -> blob direction counts: round a light card over dark skin lie a
    dark moustache or the jaw's shadow, far from the skin too but the other way."""
    inside = cv2.transform(blob.reshape(-1, 1, 3), skin).reshape(-1, 3)
    ring = cv2.transform(around.reshape(-1, 1, 3), skin).reshape(-1, 3)
    reach = float(np.median(np.linalg.norm(inside, axis=1)))
    if float(np.median(blob[:, 0])) <= skin_lightness:
        return float(np.median(np.linalg.norm(ring, axis=1))) > edge * reach
    direction = np.median(inside, axis=0)
    direction /= max(float(np.linalg.norm(direction)), 1e-6)
    return float(np.median(ring @ direction)) > edge * reach


def _large_blob_touching(mask: np.ndarray, touching: np.ndarray, min_px: float) -> bool:
    """Whether a connected blob of mask with at least min_px pixels has a pixel in touching."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    ids = np.unique(labels[touching & (mask > 0)])
    return bool(np.any(stats[ids[ids > 0], cv2.CC_STAT_AREA] >= min_px))


def _face_down(points: np.ndarray) -> np.ndarray:
    """Unit vector of the face's own downward axis (perpendicular to the eye line)."""
    eyes = points[263] - points[33]
    return np.array([-eyes[1], eyes[0]]) / max(float(np.linalg.norm(eyes)), 1e-6)


def _face_height(points: np.ndarray, shape: tuple[int, int], at: np.ndarray | None = None) -> np.ndarray:
    """Position of every pixel (or of the points at) along the face's downward axis: 0 on the
    eye line, 1 at the chin."""
    down = _face_down(points)
    top = float(np.mean(points[[33, 263]] @ down))
    span = max(float(points[152] @ down) - top, 1e-6)
    if at is not None:
        return (at @ down - top) / span
    ys, xs = np.indices(shape, dtype=np.float32)
    return (xs * down[0] + ys * down[1] - top) / span


@dataclass
class Grid:
    """A target crop on a grid with about grid_iod px between the eyes, where the per-frame
    target models work (a region, not detail): made once per face and frame, shared by them,
    with the maps more than one of them reads made on first use."""

    image: np.ndarray  # float32 BGR
    gray: np.ndarray
    texture: np.ndarray  # band-pass energy (see _work_grid)
    local: np.ndarray  # the landmarks in grid pixels
    scale: float  # grid pixels per crop pixel
    grid_iod: float
    iod: float  # between the eyes, in grid pixels

    _area: tuple[MeshTopology, np.ndarray] | None = field(default=None, repr=False)

    def __iter__(self):
        return iter((self.image, self.gray, self.texture, self.local, self.scale))

    def skin_area(self, mesh: MeshTopology) -> np.ndarray:
        """expected_skin on the grid, made once."""
        if self._area is None or self._area[0] is not mesh:
            self._area = (mesh, expected_skin(self.local, mesh, self.image.shape[:2], self.iod))
        return self._area[1]

    @functools.cached_property
    def height(self) -> np.ndarray:
        """_face_height on the grid."""
        return _face_height(self.local, self.image.shape[:2])


def target_grid(target_bgr: np.ndarray, points: np.ndarray, iod: float, grid_iod: float = 40.0) -> Grid:
    """The crop on a grid with about grid_iod px between the eyes: (image, gray, texture) as
    _work_grid gives them, the landmarks in grid pixels, and the grid's scale."""
    shape = target_bgr.shape[:2]
    scale = min(1.0, grid_iod / max(iod, 1e-6))
    small = (max(8, round(shape[1] * scale)), max(8, round(shape[0] * scale)))
    image, gray, texture = _work_grid(target_bgr, small)
    local = ((points + 0.5) * [small[0] / shape[1], small[1] / shape[0]] - 0.5).astype(np.float32)
    return Grid(image, gray, texture, local, scale, grid_iod, iod * scale)


def _grid_for(grid: Grid | None, target_bgr: np.ndarray, points: np.ndarray, iod: float, grid_iod: float) -> Grid:
    """grid when it was made at grid_iod, else a new one."""
    return grid if grid is not None and grid.grid_iod == grid_iod else target_grid(target_bgr, points, iod, grid_iod)


def _work_grid(target_bgr: np.ndarray, small: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The target on the work grid (float32 BGR), and its texture there: band-pass energy over
    brightness, measured at twice the grid's resolution (shading gradients cancel out)."""
    image = target_bgr if target_bgr.dtype == np.float32 else target_bgr.astype(np.float32)
    fine = (2 * small[0], 2 * small[1])
    if fine[0] <= image.shape[1] and fine[1] <= image.shape[0]:
        image = cv2.resize(image, fine, interpolation=cv2.INTER_LINEAR)  # under 2x: no aliasing
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        band = cv2.absdiff(gray, cv2.GaussianBlur(gray, (0, 0), 1.2))
        return cv2.pyrDown(image, dstsize=small), cv2.pyrDown(gray, dstsize=small), cv2.pyrDown(band, dstsize=small)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    band = cv2.absdiff(gray, cv2.GaussianBlur(gray, (0, 0), 1.2))
    if (image.shape[1], image.shape[0]) != small:
        image, gray, band = (cv2.resize(x, small, interpolation=cv2.INTER_AREA) for x in (image, gray, band))
    return image, gray, band


def _hair_model(lab, texture, oval, height, far, k):
    """Colour model and median texture of what lies just outside the oval above the brows and
    is not skin (the hair; nothing on a bald head)."""
    band = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3 * k, 3 * k))) > oval
    hair = band & (height < -0.4) & far
    if hair.sum() <= 20:
        return None, 0.0
    return colour_model(lab[hair], 16.0), float(np.median(texture[hair]))


class SkinTracker:
    """The target's skin colour per tracked face over a feed's frames (call update per frame, in
    order), carried on Face.skin for the built-in swapper's occluder rules.

    On one frame the colour is sampled on the cheeks and nose; a card held over most of them
    would become the "skin" there. Over a feed the colour learned on the frames before stays:
    each frame's sample moves it (rate) only when most of the sample is near it, so an object
    that comes in front leaves it as it was. Deterministic: a function of the frames in order."""

    def __init__(self, mesh: MeshTopology, rate: float = 0.2, grid_iod: float = 40.0):
        self.mesh, self.rate, self.grid_iod = mesh, rate, grid_iod
        self._by_track: dict[int | None, np.ndarray] = {}

    def reset(self) -> None:
        self._by_track.clear()

    def update(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """faces with skin set ((4, 3): Lab mean, then covariance; None while not learned)."""
        out = []
        for face in faces:
            points = face.landmarks[:, :2]
            known = self._by_track.get(face.track_id)
            learned = known
            if known is None:  # a new track: sampled as a still's swap samples it
                sample = self._first_sample(image, points)
                if len(sample) >= 20:
                    learned = _stats(sample)
            else:  # then only what is near the colour learned so far moves it
                sample = self._core_sample(image, points)
                model = _whitening(known[0], known[1:], 9.0)
                near = sample[colour_distance(sample, model) < 4.0] if len(sample) else sample
                if len(near) >= max(20, len(sample) // 2):
                    learned = known + self.rate * (_stats(near) - known)
            if learned is not None:
                self._by_track[face.track_id] = learned
            out.append(face.replace(skin=learned))
        seen = {face.track_id for face in faces}
        self._by_track = {k: v for k, v in self._by_track.items() if k in seen}
        return out

    def _first_sample(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        box = _box(points, 0.1, image.shape)
        if box is None:
            return np.zeros((0, 3), np.float32)
        x0, y0, x1, y1 = box
        local = (points - [x0, y0]).astype(np.float32)
        g = target_grid(image[y0:y1, x0:x1, :3], local, max(inter_ocular_distance(local), 4.0), self.grid_iod)
        lab = _lab(g.image)
        oval = np.zeros(lab.shape[:2], np.uint8)
        cv2.fillPoly(oval, [np.round(g.local[self.mesh.face_oval]).astype(np.int32)], 1)
        return lab[_skin_sample(lab, g.local, g.skin_area(self.mesh), oval)]

    def _core_sample(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The cheeks and nose alone, on the same grid scale: ~0.2 ms instead of ~1."""
        box = _box(points[_CORE], 0.0, image.shape)
        if box is None:
            return np.zeros((0, 3), np.float32)
        x0, y0, x1, y1 = box
        scale = min(1.0, self.grid_iod / max(inter_ocular_distance(points), 4.0))
        size = (max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale)))
        small = cv2.resize(image[y0:y1, x0:x1, :3], size, interpolation=cv2.INTER_AREA)
        local = (points[_CORE] - [x0, y0] + 0.5) * [size[0] / (x1 - x0), size[1] / (y1 - y0)] - 0.5
        core = np.zeros(small.shape[:2], np.uint8)
        cv2.fillConvexPoly(core, np.round(cv2.convexHull(local.astype(np.float32))).astype(np.int32)[:, 0], 1)
        return _lab(small)[core > 0]


def _box(points: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * float((hi - lo).max())
    x0, y0 = max(0, int(lo[0] - pad)), max(0, int(lo[1] - pad))
    x1, y1 = min(shape[1], int(hi[0] + pad) + 1), min(shape[0], int(hi[1] + pad) + 1)
    return None if x1 - x0 < 8 or y1 - y0 < 8 else (x0, y0, x1, y1)


def _stats(samples: np.ndarray) -> np.ndarray:
    """(4, 3): the samples' mean, then their covariance."""
    covariance, mean = cv2.calcCovarMatrix(samples, None, cv2.COVAR_NORMAL | cv2.COVAR_ROWS | cv2.COVAR_SCALE)
    return np.vstack([mean, covariance]).astype(np.float64)
