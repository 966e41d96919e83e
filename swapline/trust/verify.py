"""`swapline verify`: does this file say it is AI-generated? Three independent proofs.

- the visible label (found at any scale, also on resized and cropped copies);
- the invisible mark (payload with error correction, survives re-encoding);
- C2PA Content Credentials (signed manifest; valid, invalid or absent).

Any one of them is enough to show the file was made by an AI tool.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from swapline.errors import SwaplineError

FRAMES_CHECKED = 16  # a video: frames spread over its length (the mark is read from them pooled)


@dataclass
class LabelFinding:
    found: bool
    score: float
    corner: str | None
    frames_with_label: int = 0
    frames_checked: int = 0


@dataclass
class VerifyReport:
    path: str
    kind: str  # image | video
    label: LabelFinding
    mark: dict | None = None  # payload, bits corrected, confidence; None when absent
    credentials: dict = field(default_factory=lambda: {"state": "absent"})

    @property
    def ai_generated(self) -> bool:
        return self.label.found or self.mark is not None or self.credentials.get("state") == "valid"

    def to_dict(self) -> dict:
        return {**asdict(self), "ai_generated": self.ai_generated}


def _keyframes(path: Path, limit: int) -> list[np.ndarray]:
    """A re-encoded video keeps the mark best in its keyframes (P-frames drag it along with motion)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) >= limit:
                break
    return frames


def _frames(path: Path) -> tuple[str, list[np.ndarray], list[np.ndarray]]:
    """(kind, frames spread over the file, keyframes)."""
    from swapline.io import read_image
    from swapline.io.video import decode_frames, is_video_path, probe

    if not is_video_path(path):
        image = read_image(path).pixels
        return "image", [image], [image]
    info = probe(path)
    total = info.frames or max(1, round(info.duration_s * info.fps))
    step = max(1, total // FRAMES_CHECKED)
    frames = [f.image for f in decode_frames(info) if f.index % step == 0]
    return "video", frames[:FRAMES_CHECKED], _keyframes(path, FRAMES_CHECKED)


def _label(frames: list[np.ndarray]) -> LabelFinding:
    from swapline.trust.label import find_label

    matches = [find_label(frame) for frame in frames]
    best = max((m for m in matches if m is not None), key=lambda m: m.score, default=None)
    found = [m for m in matches if m is not None and m.score >= 0.55]
    return LabelFinding(
        found=len(found) * 2 > len(frames) if len(frames) > 1 else bool(found),
        score=round(best.score, 3) if best else 0.0,
        corner=best.corner if best else None,
        frames_with_label=len(found),
        frames_checked=len(frames),
    )


def _mark(frames: list[np.ndarray], keyframes: list[np.ndarray], key: str | None) -> dict | None:
    """The mark of an image, or of a video: its frames pooled, its keyframes pooled, then one by one.

    The first reading with a payload wins; else the strongest detection without one.
    """
    from swapline.trust.watermark import Watermarker, WatermarkSettings

    marker = Watermarker(WatermarkSettings(key=key))
    if len(frames) == 1:
        attempts = [lambda: marker.decode(frames[0])]
    else:
        attempts = [lambda: marker.decode_frames(frames), lambda: marker.decode_frames(keyframes)]
        attempts += [lambda f=f: marker.decode(f) for f in keyframes]
    best = None
    for attempt in attempts:
        report = attempt()
        if report is not None and report.payload is not None:
            best = report
            break
        if report is not None and (best is None or report.confidence > best.confidence):
            best = report
    if best is None:
        return None
    return {**best.to_dict(), "frames_checked": len(frames) + len(keyframes) * (len(frames) > 1)}


def _credentials(path: Path) -> dict:
    try:
        from swapline.trust.credentials import read_credentials
    except ImportError:
        return {"state": "absent", "note": "C2PA reading needs the 'c2pa' extra"}
    return read_credentials(path).to_dict()


def verify_file(path: Path | str, mark_key: str | None = None) -> VerifyReport:
    """All three proofs for one image or video; a bad file is a SwaplineError."""
    path = Path(path)
    kind, frames, keyframes = _frames(path)
    if not frames:
        raise SwaplineError(f"{path}: no frames to check")
    return VerifyReport(str(path), kind, _label(frames), _mark(frames, keyframes, mark_key), _credentials(path))
