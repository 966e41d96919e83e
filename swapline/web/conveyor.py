"""One browser camera through the live conveyor: newest frame in, swapped frame out, same pts.

The event loop only moves frames: a pump hands each decoded frame to a FrameInbox (newest
wins, older ones are dropped, never queued), a LivePipeline (the same capture slot, stages,
stale-frame drops and stats as `swapline live`) runs the session's track and compose stages on
its own threads, and a FrameOutbox hands the newest result back to the event loop, where the
outgoing track's recv() takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from fractions import Fraction

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from swapline.pipeline.frames import Frame
from swapline.pipeline.live import LivePipeline, LiveStats
from swapline.pipeline.realtime import build_stages
from swapline.settings import LiveOptions

log = logging.getLogger("swapline.web")
_POLL_S = 0.05


class FrameInbox:
    """The newest received frame (a camera slot): put() never waits; a new frame replaces an
    unread one, which is counted as overwritten."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: av.VideoFrame | None = None
        self._arrived = 0.0
        self._closed = False
        self._generation = 0
        self.received = 0
        self.overwritten = 0
        self.last_arrival = 0.0
        self.size: tuple[int, int] | None = None
        self._timing: OrderedDict[float, tuple[int | None, Fraction | None]] = OrderedDict()

    def put(self, frame: av.VideoFrame, arrived: float) -> None:
        with self._cond:
            if self._frame is not None:
                self.overwritten += 1
            self._frame, self._arrived = frame, arrived
            self.received += 1
            self.last_arrival = arrived
            self.size = (frame.width, frame.height)
            self._cond.notify_all()

    def read(self, generation: int) -> tuple[np.ndarray, float] | None:
        """The next frame as BGR pixels and its arrival time; None once closed or restarted."""
        with self._cond:
            while self._frame is None:
                if self._closed or generation != self._generation:
                    return None
                self._cond.wait(_POLL_S)
            if self._closed or generation != self._generation:
                return None
            frame, arrived, self._frame = self._frame, self._arrived, None
            self._timing[arrived] = (frame.pts, frame.time_base)
            while len(self._timing) > 64:
                self._timing.popitem(last=False)
        return frame.to_ndarray(format="bgr24"), arrived

    def timing(self, arrived: float) -> tuple[int | None, Fraction | None]:
        """The pts and time base the frame that arrived then came with (the result keeps them)."""
        with self._cond:
            return self._timing.pop(arrived, (None, None))

    @property
    def generation(self) -> int:
        return self._generation

    def restart(self) -> None:
        """End the current reader's run (read returns None) so a new one can start."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class FrameOutbox:
    """Results for the event loop: the newest wins; recv() waits for one newer than the last."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._frame: av.VideoFrame | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.overwritten = 0

    def put_threadsafe(self, frame: av.VideoFrame) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the server is stopping
            self._loop.call_soon_threadsafe(self._put, frame)

    def _put(self, frame: av.VideoFrame) -> None:
        if self._frame is not None:
            self.overwritten += 1
        self._frame = frame
        self._ready.set()

    async def get(self) -> av.VideoFrame:
        while self._frame is None:
            if self._closed:
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        self._closed = True
        self._ready.set()


class SwappedTrack(MediaStreamTrack):
    """The video track sent back to the browser: each recv() is the newest swapped frame."""

    kind = "video"

    def __init__(self, outbox: FrameOutbox) -> None:
        super().__init__()
        self._outbox = outbox

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._outbox.get()

    def stop(self) -> None:
        super().stop()
        self._outbox.close()


class _RunSource:
    """The inbox as one pipeline run's camera (a restart ends the run, not the inbox)."""

    def __init__(self, inbox: FrameInbox) -> None:
        self._inbox = inbox
        self._generation = inbox.generation

    def read(self) -> tuple[np.ndarray, float] | None:
        return self._inbox.read(self._generation)

    def close(self) -> None:
        pass


class _OutboxSink:
    """The pipeline's output: back to the browser with the frame's own pts, and to the virtual
    camera when the page turned it on."""

    def __init__(self, conveyor: PeerConveyor) -> None:
        self._conveyor = conveyor

    def write(self, frame, stats) -> bool:
        conveyor = self._conveyor
        pts, time_base = conveyor.inbox.timing(frame.captured_at)
        video = av.VideoFrame.from_ndarray(frame.image, format="bgr24")
        if pts is not None:
            video.pts, video.time_base = pts, time_base
        conveyor.outbox.put_threadsafe(video)
        vcam = conveyor.vcam
        if vcam is not None:
            try:
                vcam.send(frame.image)
            except Exception as exc:  # the device went away: the browser keeps its stream
                log.warning("virtual camera stopped: %s", exc)
                conveyor.vcam = None
        return True

    def close(self) -> None:
        pass


class VirtualCameraOutput:
    """A VirtualCameraSink fed frames of any size (scaled to the size it was opened with)."""

    def __init__(self, width: int, height: int, fps: float = 30.0) -> None:
        from swapline.io.sinks import VirtualCameraSink

        self.size = (width, height)
        self._sink = VirtualCameraSink(width, height, fps)
        self._lock = threading.Lock()
        self._closed = False

    def send(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        with self._lock:
            if not self._closed:  # switched off while this frame was on its way
                self._sink.write(Frame(seq=0, captured_at=0.0, image=image), None)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._sink.close()


class PeerConveyor:
    """Runs LivePipelines for one peer on a thread, one run per (session, registered source);
    reconfigure() ends the current run and starts the next with the new pair."""

    def __init__(
        self, session, registered, loop: asyncio.AbstractEventLoop, options: LiveOptions, stages=build_stages
    ) -> None:
        self._stages = stages
        self.inbox = FrameInbox()
        self.outbox = FrameOutbox(loop)
        self.options = options
        self.vcam: VirtualCameraOutput | None = None
        self.error: str | None = None
        self._config = (session, registered)
        self._pipeline: LivePipeline | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="web-peer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def reconfigure(self, session, registered) -> None:
        with self._lock:
            self._config = (session, registered)
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop("reconfigured")
        self.inbox.restart()

    @property
    def stats(self) -> LiveStats | None:
        pipeline = self._pipeline
        return pipeline.stats if pipeline is not None else None

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                session, registered = self._config
                stages = self._stages(session, registered, self.options)
                pipeline = self._pipeline = LivePipeline(
                    _RunSource(self.inbox), stages, _OutboxSink(self), self.options
                )
            try:
                stats = pipeline.run()
            except Exception as exc:  # a failing sink: stop this peer (the reaper closes it), not silently
                self.error = str(exc) or type(exc).__name__
                log.exception("peer pipeline failed")
                break
            if stats.error:
                self.error = stats.error
                log.warning("peer pipeline stopped: %s", stats.error)
                break

    def close(self) -> None:
        self._closed.set()
        self.inbox.close()
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop("peer closed")
        self.outbox.close()
        vcam, self.vcam = self.vcam, None
        if vcam is not None:
            vcam.close()

    def join(self, timeout: float = 5.0) -> None:
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)


async def pump(track: MediaStreamTrack, inbox: FrameInbox) -> None:
    """Take every decoded frame off the received track as it arrives (aiortc queues them
    otherwise) and leave only the newest in the inbox."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        inbox.put(frame, time.monotonic())
