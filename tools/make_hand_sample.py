"""Cut the open palm out of tests/data/obama_and_biden.jpg into swapline/samples/hand.png (BGRA).

The hand test targets (`swapline.bench.composites.hand`) put this real hand over a face. Its
matte is GrabCut's, seeded by where the hand landmarks put the hand, trimmed to that region
(the beige wall between the fingers is as skin-coloured as the hand) and cut across the wrist.
Run once by a developer:

    python tools/make_hand_sample.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from swapline.faces.hands import HandFinder, hands_mask

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "tests" / "data" / "obama_and_biden.jpg"
OUT = REPO / "swapline" / "samples" / "hand.png"
PALM_CENTRE, SEARCH = (135.0, 150.0), 120.0  # Joe Biden's raised right hand, at the photo's top left


def main() -> None:
    image = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    hand = HandFinder().around(image, np.array(PALM_CENTRE, np.float32), SEARCH)[0]
    region = hands_mask([hand.points], image.shape[:2])
    seeds = np.full(image.shape[:2], cv2.GC_BGD, np.uint8)
    x0, y0 = (hand.points.min(axis=0) - 30).astype(int)
    x1, y1 = (hand.points.max(axis=0) + 30).astype(int)
    seeds[y0:y1, x0:x1] = cv2.GC_PR_BGD
    seeds[region > 0.5] = cv2.GC_PR_FGD
    seeds[cv2.erode((region > 0.99).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0] = cv2.GC_FGD
    cv2.grabCut(image, seeds, None, np.zeros((1, 65)), np.zeros((1, 65)), 8, cv2.GC_INIT_WITH_MASK)
    alpha = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    alpha &= region > 0.5
    # across the wrist: keep what lies above a line just below landmark 0
    up = hand.points[9] - hand.points[0]
    up /= np.linalg.norm(up)
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    alpha &= (xx - hand.points[0][0]) * up[0] + (yy - hand.points[0][1]) * up[1] >= -0.15 * hand.palm_length
    count, labels, stats, _ = cv2.connectedComponentsWithStats(alpha.astype(np.uint8))
    alpha = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(alpha)
    window = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    cv2.imwrite(str(OUT), np.dstack([image[window], alpha[window].astype(np.uint8) * 255]))
    print(f"wrote {OUT.relative_to(REPO)} ({alpha.sum()} hand pixels)")


if __name__ == "__main__":
    main()
