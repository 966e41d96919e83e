"""Synthetic test clips made from a still photo: a face that sways, zooms and turns a little.

The suite and the benchmarks make their own videos this way, so no video is shipped.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from swapline.io.atomic import atomic_output


def face_frame_matrix(
    face_box: np.ndarray, size: tuple[int, int], face_px: float, t: float, motion: float
) -> np.ndarray:
    """Affine from photo to frame at time t: the face centred, face_px wide, moving with `motion`."""
    w, h = size
    scale = face_px / max(1.0, float(face_box[2] - face_box[0])) * (1.0 + 0.06 * motion * math.sin(t * 0.9))
    angle = 4.0 * motion * math.sin(t * 1.3)
    cx, cy = (face_box[0] + face_box[2]) / 2, (face_box[1] + face_box[3]) / 2
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, scale)
    shift = np.array([w / 2 + 40 * motion * math.sin(t * 1.1), h / 2 + 15 * motion * math.sin(t * 0.7)])
    matrix[:, 2] += shift - np.array([cx, cy])
    return matrix


def render_frames(photo: np.ndarray, face_box: np.ndarray, size, fps: float, seconds: float, face_px=200, motion=1.0):
    """Yield the clip's frames (BGR)."""
    for index in range(int(round(fps * seconds))):
        matrix = face_frame_matrix(face_box, size, face_px, index / fps, motion)
        yield cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def write_clip(
    frames,
    path: Path,
    fps: float,
    size: tuple[int, int],
    audio_hz: float | None = None,
    seconds: float = 0.0,
    rotation: int = 0,
    codec: str = "libx264",
) -> Path:
    """Encode frames (and optionally a sine tone) with PyAV; written atomically."""
    import av

    path = Path(path)
    with atomic_output(path) as tmp, av.open(str(tmp), mode="w", format=_format_for(path)) as container:
        video = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "18"}
        if rotation:
            video.metadata["rotate"] = str(rotation)
        audio = None
        if audio_hz:
            audio = container.add_stream("aac", rate=48000)
            audio.layout = "mono"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            samples = int(48000 * seconds)
            tone = (0.3 * np.sin(2 * np.pi * audio_hz * np.arange(samples) / 48000)).astype(np.float32)
            chunk = 1024
            for start in range(0, samples, chunk):
                block = tone[start : start + chunk][None, :]
                audio_frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
                audio_frame.sample_rate = 48000
                audio_frame.pts = start
                for packet in audio.encode(audio_frame):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
    return path


def _format_for(path: Path) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}.get(
        path.suffix.lower(), "mp4"
    )


def make_clip(
    photo_path: Path,
    out: Path,
    size=(640, 480),
    fps: float = 30.0,
    seconds: float = 5.0,
    face_px: int = 200,
    motion: float = 1.0,
    audio_hz: float | None = None,
) -> Path:
    """A clip of the photo's largest face, face_px wide in a size[0] x size[1] frame."""
    from swapline.errors import SwaplineError
    from swapline.faces import FaceAnalyser
    from swapline.io import read_image

    photo = read_image(photo_path).pixels
    faces = FaceAnalyser().faces(photo)
    if not faces:
        raise SwaplineError(f"{photo_path}: no face found to build a clip around")
    frames = render_frames(photo, faces[0].box, tuple(size), fps, seconds, face_px, motion)
    return write_clip(frames, out, fps, tuple(size), audio_hz=audio_hz, seconds=seconds)
