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
from swapline.io.video import x264_options


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
    codec: str | None = None,
    times: list[float] | None = None,
    faststart: bool = False,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode frames (and optionally a sine tone) with PyAV; written atomically.

    rotation: store the frames turned by -rotation degrees with a display rotation of
    `rotation`, as phones do. times: explicit frame times in seconds (variable frame rate).
    faststart: put the index first (so a truncated file still opens).
    """
    import av

    path = Path(path)
    container_format = _format_for(path)
    codec = codec or {"webm": "libvpx-vp9", "avi": "mpeg4"}.get(container_format, "libx264")
    turns = (rotation // 90) % 4
    width, height = (size[1], size[0]) if turns % 2 else size
    options = {"movflags": "faststart"} if faststart else {}
    with atomic_output(path) as tmp, av.open(str(tmp), mode="w", format=container_format, options=options) as out:
        video = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = width, height
        video.pix_fmt = pix_fmt  # yuv444p lets x264 store odd sizes
        if codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "18", **x264_options()}  # the same clip every time
        elif codec == "libvpx-vp9":
            video.options = {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"}
        if times is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if audio_hz:
            audio = out.add_stream("libopus" if container_format == "webm" else "aac", rate=48000)
            audio.layout = "mono"
        for index, frame in enumerate(frames):
            stored = np.ascontiguousarray(np.rot90(frame, -turns)) if turns else frame
            video_frame = av.VideoFrame.from_ndarray(stored, format="bgr24")
            if times is not None:
                video_frame.pts, video_frame.time_base = round(times[index] * 1000), Fraction(1, 1000)
            for packet in video.encode(video_frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            _write_tone(out, audio, audio_hz, seconds)
    return path


def _write_tone(out, audio, hz: float, seconds: float) -> None:
    import av

    samples = int(48000 * seconds)
    tone = (0.3 * np.sin(2 * np.pi * hz * np.arange(samples) / 48000)).astype(np.float32)
    for start in range(0, samples, 960):
        block = tone[start : start + 960][None, :]
        frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
        frame.sample_rate, frame.pts = 48000, start
        for packet in audio.encode(frame):
            out.mux(packet)
    for packet in audio.encode(None):
        out.mux(packet)


def two_face_frames(left: np.ndarray, left_box, right: np.ndarray, right_box, size, fps: float, seconds: float):
    """Two people side by side, each face ~size[1]/2.5 px wide, swaying a little."""
    w, h = size
    half = (w // 2, h)
    face_px = h / 2.5
    for index in range(int(round(fps * seconds))):
        t = index / fps
        parts = [
            cv2.warpAffine(image, face_frame_matrix(box, half, face_px, t, 0.3), half, borderMode=cv2.BORDER_REPLICATE)
            for image, box in ((left, left_box), (right, right_box))
        ]
        yield np.ascontiguousarray(np.concatenate(parts, axis=1))


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


def many_face_frames(photo: np.ndarray, face_box, size, fps: float, seconds: float, count: int, motion: float = 0.3):
    """count copies of the photo's face in a grid (as many columns as fit a 16:9 layout), each
    swaying on its own phase: a crowd for the many-faces benchmark."""
    w, h = size
    cols = max(1, math.ceil(math.sqrt(count * w / h)))
    rows = math.ceil(count / cols)
    cell = (w // cols, h // rows)
    face_px = min(cell) / 2.2
    for index in range(int(round(fps * seconds))):
        frame = np.zeros((h, w, 3), np.uint8)
        for k in range(count):
            r, c = divmod(k, cols)
            t = index / fps + 0.7 * k
            matrix = face_frame_matrix(face_box, cell, face_px, t, motion)
            part = cv2.warpAffine(photo, matrix, cell, borderMode=cv2.BORDER_REPLICATE)
            frame[r * cell[1] : (r + 1) * cell[1], c * cell[0] : (c + 1) * cell[0]] = part
        yield frame
