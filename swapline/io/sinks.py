"""Frame sinks for the live pipeline: nothing, a window, a virtual camera, a video file."""

from __future__ import annotations

import contextlib
import json
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from swapline.errors import SwaplineError
from swapline.io.atomic import clean_stale_temporaries, temporary_sibling
from swapline.io.paths import check_output_path
from swapline.io.video import OUTPUT_FORMATS, PROVENANCE_TAG, x264_options


class NullSink:
    """Discards frames (benchmarks)."""

    def write(self, frame, stats) -> bool:
        return True

    def close(self) -> None:
        pass


def draw_overlay(image: np.ndarray, stats) -> None:
    """Latency and fps in the top-left corner (window only; recordings stay clean)."""
    latency = stats.latency
    text = f"{stats.frames_out / stats.duration_s:5.1f} fps  p50 {latency.percentile(50):4.0f} ms  drop {stats.dropped}"
    cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


class WindowSink:
    """A Tk window (no GUI build of OpenCV needed); `q` or closing the window stops the run."""

    def __init__(self, title: str = "swapline (AI-generated)", overlay: bool = True):
        try:
            import tkinter

            from PIL import ImageTk  # noqa: F401  (checked here so a missing piece fails early)

            self._root = tkinter.Tk()
        except Exception as exc:
            raise SwaplineError(f"window sink: no display available ({exc}); use --sink null or a file") from exc
        self._root.title(title)
        self._label = tkinter.Label(self._root)
        self._label.pack()
        self._quit = False
        self._root.bind("<KeyPress-q>", lambda _e: self._request_quit())
        self._root.protocol("WM_DELETE_WINDOW", self._request_quit)
        self.overlay = overlay
        self._photo = None

    def _request_quit(self) -> None:
        self._quit = True

    def write(self, frame, stats) -> bool:
        from PIL import Image, ImageTk

        image = frame.image
        if self.overlay:
            image = image.copy()
            draw_overlay(image, stats)
        self._photo = ImageTk.PhotoImage(Image.fromarray(image[:, :, ::-1]))
        self._label.configure(image=self._photo)
        self._root.update()
        return not self._quit

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._root.destroy()


class VirtualCameraSink:
    """A virtual webcam (pyvirtualcam: v4l2loopback on Linux, OBS on Windows/macOS)."""

    def __init__(self, width: int, height: int, fps: float):
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise SwaplineError("virtual camera needs the 'vcam' extra: pip install 'swapline[vcam]'") from exc
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR)
        except Exception as exc:
            raise SwaplineError(
                f"virtual camera: no loopback device ({exc}); on Linux: sudo modprobe v4l2loopback"
            ) from exc

    def write(self, frame, stats) -> bool:
        self._camera.send(frame.image)
        return True

    def close(self) -> None:
        self._camera.close()


class VideoFileSink:
    """Records H.264 (PyAV) with each frame's capture time as its timestamp (variable frame rate).

    Written under a temporary name and renamed by close(), so an interrupted recording never
    leaves a truncated file under the requested name.
    """

    def __init__(
        self,
        path: Path | str,
        fps: float = 30.0,
        crf: int = 20,
        preset: str = "veryfast",
        provenance: dict | None = None,
    ):
        import av

        self.path = check_output_path(path, [], OUTPUT_FORMATS, "recording")
        clean_stale_temporaries(self.path, self.path.suffix)  # left by a recording that was killed
        self._tmp = temporary_sibling(self.path, self.path.suffix)  # the usual file mode, not 0600
        self._av = av
        self._container = av.open(str(self._tmp), mode="w", format=OUTPUT_FORMATS[self.path.suffix.lower()])
        if provenance is not None:
            self._container.metadata[PROVENANCE_TAG] = json.dumps(provenance)
        self._stream = None
        self._fps, self._crf, self._preset = fps, crf, preset
        self._first: float | None = None
        self._last_pts = -1
        self.frames = 0

    def _open_stream(self, width: int, height: int) -> None:
        stream = self._container.add_stream("libx264", rate=Fraction(self._fps).limit_denominator(1000))
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        # capture times in ms: the encoder's clock must be as fine, or frames closer than 1/fps collide
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": str(self._crf), "preset": self._preset, **x264_options()}
        self._stream = stream

    def write(self, frame, stats) -> bool:
        image = frame.image
        if self._stream is None:
            self._open_stream(image.shape[1], image.shape[0])
            self._first = frame.captured_at
        if image.shape[1] % 2 or image.shape[0] % 2:  # yuv420p needs even sizes: repeat the edge
            image = cv2.copyMakeBorder(image, 0, image.shape[0] % 2, 0, image.shape[1] % 2, cv2.BORDER_REPLICATE)
        video_frame = self._av.VideoFrame.from_ndarray(image, format="bgr24")
        pts = max(self._last_pts + 1, round((frame.captured_at - self._first) * 1000.0))
        video_frame.pts, video_frame.time_base = pts, Fraction(1, 1000)
        self._last_pts = pts
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1
        return True

    def close(self) -> None:
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            self._container.close()
            if self.frames:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
