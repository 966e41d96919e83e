"""Test targets made from real photos: an object in front of the face, a dim and cool light.

The quality tests and the contact sheet use the same ones: a dark microphone-like cylinder over
the chin, a flat card over a cheek (coloured or light grey), and the whole photo darkened and
shifted toward blue. Each object returns the image and the mask of the object's pixels.
"""

from __future__ import annotations

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


def card(image: np.ndarray, face: Face, colour: tuple[int, int, int] = (170, 140, 40)) -> tuple[np.ndarray, np.ndarray]:
    """A flat card (blue-green by default, BGR) over the right cheek, reaching past the outline."""
    lm = face.landmarks[:, :2]
    cheek, ear = lm[205], lm[234]
    x0, x1 = int(ear[0] - 0.1 * np.ptp(lm[:, 0])), int(cheek[0])
    y0, y1 = int(cheek[1] - 0.15 * np.ptp(lm[:, 1])), int(cheek[1] + 0.15 * np.ptp(lm[:, 1]))
    out, mask = image.copy(), np.zeros(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    out[mask] = colour
    return out, mask


def grey_card(image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
    """The same card, light grey: no hue at all, as light as pale skin."""
    return card(image, face, (185, 185, 185))


def dim_and_cool(image: np.ndarray, level: float = 0.45) -> np.ndarray:
    """The photo in dim, bluish light: x level, blue x1.1, red x0.85."""
    return np.clip(image.astype(np.float32) * level * np.array([1.1, 1.0, 0.85]), 0, 255).astype(np.uint8)
