"""Test targets made from real photos: an object in front of the face, a dim and cool light.

The quality tests and the contact sheet use the same ones: a dark microphone-like cylinder over
the chin, a flat card over a cheek (coloured or light grey), a real open hand over the mouth and
a cheek (cut from a photo: swapline/samples/hand.png, tools/make_hand_sample.py), and the whole
photo darkened and shifted toward blue. Each object returns the image and the mask of the
object's pixels.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from swapline.faces.face import Face


def microphone(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """A dark, shaded cylinder from below the frame up over the chin."""
    lm = face.landmarks[:, :2]
    chin, lip = lm[152], lm[17]
    width = int(0.35 * np.ptp(lm[:, 0]))
    x0, x1 = int(chin[0] - width / 2), int(chin[0] + width / 2)
    y0 = int(lip[1] + 0.4 * (chin[1] - lip[1]))
    out, mask = image.copy(), np.zeros(image.shape[:2], bool)
    mask[y0:, x0:x1] = True
    shade = 25 + 30 * np.sin(np.linspace(0, np.pi, x1 - x0))  # rounded: lit in the middle
    out[y0:, x0:x1] = np.clip(shade[None, :, None] * [1.0, 1.0, 1.1], 0, 255).astype(np.uint8)
    return out, mask


def card(
    image: np.ndarray, face: Face, colour: tuple[int, int, int] = (170, 140, 40), reach: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A flat card (blue-green by default, BGR) over the right cheek, reaching past the outline;
    reach: how far its inner edge goes on from that cheek toward the other (0.5: over the nose)."""
    lm = face.landmarks[:, :2]
    cheek, ear, other = lm[205], lm[234], lm[425]
    x0, x1 = int(ear[0] - 0.1 * np.ptp(lm[:, 0])), int(cheek[0] + reach * (other[0] - cheek[0]))
    y0, y1 = int(cheek[1] - 0.15 * np.ptp(lm[:, 1])), int(cheek[1] + 0.15 * np.ptp(lm[:, 1]))
    out, mask = image.copy(), np.zeros(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    out[mask] = colour
    return out, mask


def grey_card(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """The same card, light grey: no hue at all, as light as pale skin."""
    return card(image, face, (185, 185, 185))


def wide_card(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """The card reaching on over the nose: it covers much of the cheeks and nose, where the
    skin's colour is sampled."""
    return card(image, face, reach=0.5)


def wide_grey_card(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    return card(image, face, (185, 185, 185), reach=0.5)


@cache
def _hand_cutout() -> np.ndarray:
    path = Path(__file__).resolve().parents[1] / "samples" / "hand.png"
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def hand(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """A real open hand, fingers up, as tall as 0.85 of the face, over the mouth and the
    subject's right cheek (the image's left), as someone covering a yawn."""
    lm = face.landmarks[:, :2]
    cutout = _hand_cutout()
    scale = 0.85 * float(np.ptp(lm[:, 1])) / cutout.shape[0]
    cutout = cv2.resize(cutout, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = cutout.shape[:2]
    centre = (lm[61] + lm[205]) / 2  # between the mouth's corner and the cheek
    x0, y0 = int(centre[0] - w / 2), int(centre[1] - h * 0.35)
    ih, iw = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(iw, x0 + w), min(ih, y0 + h)
    piece = cutout[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    alpha = piece[..., 3:].astype(np.float32) / 255.0
    out, mask = image.copy(), np.zeros(image.shape[:2], bool)
    under = out[cy0:cy1, cx0:cx1].astype(np.float32)
    out[cy0:cy1, cx0:cx1] = np.round(under + alpha * (piece[..., :3] - under)).astype(np.uint8)
    mask[cy0:cy1, cx0:cx1] = alpha[..., 0] > 0.5
    return out, mask


def dim_and_cool(image: np.ndarray, level: float = 0.45) -> np.ndarray:
    """The photo in dim, bluish light: x level, blue x1.1, red x0.85."""
    return np.clip(image.astype(np.float32) * level * np.array([1.1, 1.0, 0.85]), 0, 255).astype(np.uint8)
