"""Skin tone and light from the target onto the warped source face, on skin only.

A global mean shift leaves side-lit targets looking pasted on, so the transfer is local: the two
faces' low-frequency images (local colour and shading), measured only where both show skin
(normalised convolution). It is *added*, not multiplied: a ratio of low-pass images scales the
source's texture contrast with its tone, and a dark source on a pale target came out shiny and
grey, its pores and highlights tripled. The source's detail follows the light by the square
root of its change at most. The source's specular highlights (lightness far above its local
level on skin) are compressed, so its studio shine is not pasted onto a target lit otherwise,
and the target's own highlights are laid back on in their place: the shine follows the scene's
light (a lamp's glint on the target's forehead stays on the swapped forehead).
Where the target is not skin (a beard, a fringe, glasses) it does not vote: its light there
comes from the skin around it.
"""

from __future__ import annotations

import cv2
import numpy as np

from swapline.swap.skin import MIN_SKIN_CHROMA, colour_distance, colour_model, lab_chroma, uncovered_skin

_CHEEKS_AND_NOSE = [50, 280, 4, 168]  # FaceMesh points rarely covered by anything


def _shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """Box average over factor x factor blocks (the crop's last rows and columns that do not
    fill a block are left out): OpenCV's area resize is several times faster at whole ratios."""
    h, w = image.shape[:2]
    sh, sw = max(1, h // factor), max(1, w // factor)
    return cv2.resize(image[: sh * factor, : sw * factor], (sw, sh), interpolation=cv2.INTER_AREA)


def _grow(small: np.ndarray, factor: int, shape: tuple[int, int], out: np.ndarray | None) -> np.ndarray:
    """The inverse of _shrink: bilinear back to the block grid, the left-out edge repeated."""
    h, w = shape
    sh, sw = small.shape[:2]
    out = np.empty((h, w, *small.shape[2:]), small.dtype) if out is None else out
    covered_h, covered_w = min(h, sh * factor), min(w, sw * factor)
    inner = out[:covered_h, :covered_w]
    cv2.resize(small, (covered_w, covered_h), dst=inner, interpolation=cv2.INTER_LINEAR)
    out[covered_h:, :covered_w] = out[covered_h - 1 : covered_h, :covered_w]
    out[:, covered_w:] = out[:, covered_w - 1 : covered_w]
    return out


# A pixel as colourful as this share of the cheeks (chroma in Lab) or more may be skin; at the
# lower share or less it is not (white or grey hair, teeth, the grey a lens lays on the skin):
# on the test photos a white beard's lower face reads 0.13-0.46 (median), shaved ones 0.69-0.97.
COLOURLESS = (0.45, 0.75)


def skin_likeness(lab: np.ndarray, points: np.ndarray, threshold: float = 3.0, skip_grey: bool = True) -> np.ndarray:
    """float32 [0, 1] per pixel of a Lab image: how close to the face's own cheek-and-nose colour
    (Mahalanobis distance: 1 below threshold, 0 two units above). points: FaceMesh landmarks in
    this image's pixels. skip_grey: and how nearly as colourful (COLOURLESS): a white beard on
    pale skin is within the distance of the skin's own spread, and voting for the tone it laid
    a grey veil over the swapped chin."""
    core = np.zeros(lab.shape[:2], np.uint8)
    hull = cv2.convexHull(points[_CHEEKS_AND_NOSE].astype(np.float32))
    cv2.fillConvexPoly(core, np.round(hull).astype(np.int32), 1)
    if np.count_nonzero(core) < 12:
        return np.ones(lab.shape[:2], np.float32)
    face = np.zeros(lab.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, np.round(cv2.convexHull(points[:, :2].astype(np.float32))).astype(np.int32), 1)
    sample = lab[uncovered_skin(lab, core > 0, (face > 0) & (core == 0))]  # not a card over a cheek
    distance = colour_distance(lab, colour_model(sample, 9.0))  # floor: even skin keeps its shading
    likeness = np.clip((threshold + 2.0 - distance) * 0.5, 0.0, 1.0).astype(np.float32)
    core_chroma = float(np.median(np.hypot(sample[:, 1], sample[:, 2]))) if skip_grey else 0.0
    if core_chroma >= MIN_SKIN_CHROMA:
        low, high = COLOURLESS
        likeness *= np.clip((lab_chroma(lab) * (1.0 / core_chroma) - low) * (1.0 / (high - low)), 0.0, 1.0)
    return likeness


def _excess(
    image: np.ndarray, low_luma: np.ndarray, factor: int, knee: float, weight: np.ndarray, scale: float
) -> np.ndarray:
    """scale x lightness above (the grown low-pass lightness + knee), where weight says (0..1)."""
    excess = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    excess -= _grow(low_luma, factor, excess.shape, None)
    excess -= knee
    np.maximum(excess, 0.0, out=excess)
    excess *= weight
    excess *= scale
    return excess


def match_tone(
    source: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    points: np.ndarray,
    sigma: float,
    work_scale: float = 0.25,
    contrast_limits: tuple[float, float] = (0.5, 1.5),
    highlight_knee: float = 22.0,
    highlight_keep: float = 0.35,
    highlight_relight: float = 1.0,
    relight_knee: float = 35.0,
    damp_chroma: bool = True,
    skip_grey: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """low(target) + (source - low(source)) * contrast, float32 BGR crops of one size.

    weight: where both faces show skin that belongs to the face (0..1); the target's own skin
    likeness (Lab, from its cheeks) is folded in. points: the target's landmarks in crop
    pixels. contrast = sqrt of the local light ratio, limited. On skin, lightness more than
    highlight_knee levels above the source's local level keeps highlight_keep of its excess,
    and highlight_relight x (1 - highlight_keep) of the target's own excess over its local
    level is added (its highlights, where the scene's light put them). damp_chroma: the
    source's colour detail (not its lightness detail) scaled down to a less colourful target.
    skip_grey: what is much less colourful than the target's cheeks does not vote (skin_likeness).
    The low-pass images are made on a grid of blocks of 1 / work_scale pixels, blurred on a
    coarser one where sigma is about 2.5 blocks (they are smooth by construction), both images
    and the weight in one 7-channel blur. The result goes to out when given (a reused buffer).
    """
    h, w = source.shape[:2]
    factor = max(1, round(1.0 / work_scale))
    small_t = _shrink(target, factor)
    small_w = _shrink(weight, factor)
    lab_t = cv2.cvtColor(np.clip(small_t, 0.0, 255.0) * (1.0 / 255.0), cv2.COLOR_BGR2LAB)
    small_w = small_w * skin_likeness(lab_t, (points + 0.5) / factor - 0.5, skip_grey=skip_grey)
    w3 = cv2.merge([small_w, small_w, small_w])
    stack = cv2.merge([cv2.multiply(_shrink(source, factor), w3), cv2.multiply(small_t, w3), small_w])
    # the blur itself on a grid where sigma is ~2.5 blocks: a wide kernel costs more than the rest
    coarse = max(1, min(int(sigma / (2.5 * factor)), min(stack.shape[:2]) // 4))
    if coarse > 1:
        stack = _shrink(stack, coarse)
        factor *= coarse
    small_sigma = max(0.8, sigma / factor)
    size = int(small_sigma * 3) * 2 + 1  # +-3 sigma
    low = cv2.split(cv2.GaussianBlur(stack, (size, size), small_sigma, borderType=cv2.BORDER_REPLICATE))
    # per channel plane from here: numpy broadcasts over a 3-long channel axis are slow
    norm = 1.0 / np.maximum(low[6], 1e-4)
    low_s, low_t = [low[c] * norm for c in range(3)], [low[c + 3] * norm for c in range(3)]
    luma_s, luma_t = sum(low_s) * (1.0 / 3.0), sum(low_t) * (1.0 / 3.0)
    contrast = np.clip(np.sqrt((luma_t + 4.0) / (luma_s + 4.0)), *contrast_limits)
    # out = low_t + (source - low_s) * contrast = source * contrast + (low_t - low_s * contrast)
    if damp_chroma:
        # The source's colour detail (its eyelids less red than its cheeks, say) goes over
        # scaled by the square root of the ratio of the two faces' colourfulness: added in full
        # to a paler target it took the target's skin past grey into green around the eyes
        # (in full proportion: the same look, a little more identity lost). Lightness detail
        # stays whole.
        spread_s, spread_t = (np.max(low, axis=0) - np.min(low, axis=0) for low in (low_s, low_t))
        follow = np.sqrt(np.clip((spread_t + 2.0) / (spread_s + 2.0), 0.0, 1.0))
        chroma_gain = contrast * follow
        luma_gain = contrast - chroma_gain
        shift = cv2.merge([low_t[c] - low_s[c] * chroma_gain - luma_s * luma_gain for c in range(3)])
    else:
        chroma_gain, luma_gain = contrast, None
        shift = cv2.merge([low_t[c] - low_s[c] * contrast for c in range(3)])
    result = _grow(shift, factor, (h, w), out)
    gain = _grow(chroma_gain, factor, (h, w), None)
    if highlight_keep < 1.0:
        on_skin = np.minimum(weight * 2.0, 1.0)
        shine = cv2.merge([_excess(source, luma_s, factor, highlight_knee, on_skin, highlight_keep - 1.0)] * 3)
        shine += source
        if highlight_relight > 0.0:
            relit = _excess(target, luma_t, factor, relight_knee, on_skin, (1.0 - highlight_keep) * highlight_relight)
            result += cv2.merge([relit, relit, relit])
    else:
        shine = source
    result += cv2.multiply(shine, cv2.merge([gain, gain, gain]))
    if luma_gain is not None:
        lightness = cv2.transform(shine, np.full((1, 3), 1.0 / 3.0, np.float32))
        lightness *= _grow(luma_gain, factor, (h, w), None)
        result += cv2.merge([lightness, lightness, lightness])
    return result
