"""Frame sources for the live pipeline: a camera, a video file standing in for one, a still image.

Each read() blocks until the source's next frame is due and returns it with its capture time
(time.monotonic()). A video file is decoded ahead and released on its own timeline, so it
behaves like a camera: frames keep coming whether or not anyone keeps up.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from swapline.errors import SwaplineError


class Pacer:
    """Releases frame k at start + k / fps; returns the scheduled time as the capture time."""

    def __init__(self, fps: float):
        if fps <= 0:
            raise SwaplineError(f"frame rate must be positive, not {fps}")
        self.period = 1.0 / fps
        self._start: float | None = None
        self._index = 0

    def wait(self) -> float:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._index * self.period
        self._index += 1
        if due > now:
            time.sleep(due - now)
        return due


class VideoFileSource:
    """A video file played at its native pace (or `fps`), optionally looped."""

    def __init__(self, path: Path | str, fps: float | None = None, loop: bool = False):
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise SwaplineError(f"{self.path}: no such file")
        self.loop = loop
        self._av = av
        self._open()
        stream = self._container.streams.video[0]
        native = float(stream.average_rate or stream.guessed_rate or 30)
        self.fps = fps or native
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self._pacer = Pacer(self.fps)
        self.position_s = 0.0

    def _open(self) -> None:
        try:
            self._container = self._av.open(str(self.path))
        except self._av.error.FFmpegError as exc:
            raise SwaplineError(f"{self.path}: not a readable video ({exc.strerror or exc})") from exc
        if not self._container.streams.video:
            raise SwaplineError(f"{self.path}: has no video stream")
        self._container.streams.video[0].thread_type = "AUTO"
        self._frames = self._container.decode(video=0)

    def _next_image(self) -> np.ndarray | None:
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except self._av.error.FFmpegError as exc:
            raise SwaplineError(f"{self.path}: decoding failed after {self.position_s:.2f} s ({exc})") from exc
        if frame.time is not None:
            self.position_s = float(frame.time)
        return frame.to_ndarray(format="bgr24")

    def read(self) -> tuple[np.ndarray, float] | None:
        image = self._next_image()
        if image is None and self.loop:
            self._container.close()
            self._open()
            image = self._next_image()
        if image is None:
            return None
        return image, self._pacer.wait()

    def close(self) -> None:
        self._container.close()


class ImageSource:
    """A still image repeated at `fps`, like a camera pointed at a photo."""

    def __init__(self, image: np.ndarray, fps: float = 30.0, frames: int | None = None):
        self.image = image
        self.frames = frames
        self._pacer = Pacer(fps)
        self._count = 0

    def read(self) -> tuple[np.ndarray, float] | None:
        if self.frames is not None and self._count >= self.frames:
            return None
        self._count += 1
        return self.image.copy(), self._pacer.wait()

    def close(self) -> None:
        pass


class CameraSource:
    """A camera through OpenCV: a device index or a device/stream path."""

    def __init__(self, device: int | str, width: int = 640, height: int = 480, fps: float = 30.0, mjpg: bool = True):
        import cv2

        self.device = device
        self._cv2 = cv2
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise SwaplineError(f"camera {device}: cannot be opened (not connected, or in use by another program)")
        if mjpg:
            self._capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._capture.set(cv2.CAP_PROP_FPS, fps)
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # never let the driver queue old frames

    def read(self) -> tuple[np.ndarray, float] | None:
        ok, image = self._capture.read()
        captured_at = time.monotonic()
        if not ok or image is None:
            raise SwaplineError(f"camera {self.device}: stopped delivering frames (unplugged?)")
        return image, captured_at

    def close(self) -> None:
        self._capture.release()
