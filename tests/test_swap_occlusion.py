"""What stands in front of the target's face stays in front: objects composited over real dev-set
faces (a dark microphone-like cylinder over the chin, a coloured card over a cheek)."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from swapline.swap import MeshSwapper, MeshSwapSettings
from tests.conftest import load


@pytest.fixture(scope="module")
def dev_faces(analyser):
    result = {}
    for name in ("dev/mark_takano_2.jpg", "dev/grace_hopper_1.jpg", "dev/jim_clyburn_2.jpg", "dev/doris_matsui_1.jpg"):
        image = load(name)
        result[name] = (image, analyser.faces(image)[0])
    return result


def microphone(image, face):
    """A dark, shaded cylinder from below the frame up over the chin (mask of its pixels)."""
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


def card(image, face):
    """A flat blue-green card over the right cheek, reaching past the face outline."""
    lm = face.landmarks[:, :2]
    cheek, ear = lm[205], lm[234]
    x0, x1 = int(ear[0] - 0.1 * np.ptp(lm[:, 0])), int(cheek[0])
    y0, y1 = int(cheek[1] - 0.15 * np.ptp(lm[:, 1])), int(cheek[1] + 0.15 * np.ptp(lm[:, 1]))
    out, mask = image.copy(), np.zeros(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    out[mask] = (170, 140, 40)
    return out, mask


def swapped(source, target_image, target_face, **settings):
    swapper = MeshSwapper(replace(MeshSwapSettings(), **settings))
    out = target_image.copy()
    assert swapper.swap(out, target_face, swapper.register(*source))
    return out


@pytest.mark.parametrize("make", [microphone, card])
@pytest.mark.parametrize(
    ("source", "target"),
    [("dev/grace_hopper_1.jpg", "dev/mark_takano_2.jpg"), ("dev/jim_clyburn_2.jpg", "dev/doris_matsui_1.jpg")],
)
def test_an_object_in_front_of_the_face_stays_in_front(dev_faces, make, source, target):
    image, face = dev_faces[target]
    occluded, mask = make(image, face)
    # the object sits on the face: landmarks of the clean photo are where the face is
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # its pixels, edge left out
    out = swapped(dev_faces[source], occluded, face, target_occluders=True)
    kept = np.abs(out.astype(int) - occluded.astype(int)).max(axis=2)[inner]
    assert np.percentile(kept, 99) <= 2, make.__name__
    # without the step the swap paints over it
    over = swapped(dev_faces[source], occluded, face, target_occluders=False)
    assert np.abs(over.astype(int) - occluded.astype(int)).max(axis=2)[inner].mean() > 5
    # and the rest of the face was still swapped
    oval_change = np.abs(out.astype(int) - occluded.astype(int)).max(axis=2)[~mask].mean()
    assert oval_change > 1


@pytest.mark.xfail(strict=True, reason="the per-target skin model flags hair edges and collars: 14-36% of the face")
def test_a_clear_face_has_no_occluders(dev_faces):
    # no object: the swap with the step on equals the swap without it on these clean portraits
    for name in ("dev/mark_takano_2.jpg", "dev/doris_matsui_1.jpg"):
        image, face = dev_faces[name]
        a = swapped(dev_faces["dev/grace_hopper_1.jpg"], image, face, target_occluders=True)
        b = swapped(dev_faces["dev/grace_hopper_1.jpg"], image, face, target_occluders=False)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, name
