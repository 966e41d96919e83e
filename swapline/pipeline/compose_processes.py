"""Compose video frames in worker processes, for machines with more cores than one process can use.

A third of the built-in swap is Python and small NumPy calls that hold the GIL, so compose
threads in one process do not add up: on a 16-core host, 4 faces a frame ran at a third of one
face's rate, and the tracking thread waited on the same lock (benchmarks/results/
gpu_h100_host_scale). Each worker process has its own session (models loaded once, at start)
and the main session's registered source and mark payload, so a frame comes out as the
in-process compose makes it.

Frames travel through shared memory, not pipes (pickled through pipes, 4K frames ran at 6.9 fps
against 13.6 on the same 16 cores): a ring of slots, one per frame in flight, each holding the
BGR frame (composed in place by the worker) and the encoder's yuv420p planes it makes from it.
The job hands slots out in order and takes results in order, so slot n is free again once frame
n - len(slots) is written.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from swapline.errors import SwaplineError
from swapline.faces import Face
from swapline.io.video import encoder_picture, even_size, picture_from_planes
from swapline.settings import FaceSelection, SwapSettings


@dataclass(frozen=True)
class _SlotSpec:
    """What a worker needs to find a slot's arrays: the block's name and the two shapes."""

    name: str
    frame: tuple[int, ...]
    planes: tuple[int, int]

    def views(self, buffer) -> tuple[np.ndarray, np.ndarray]:
        frame = np.ndarray(self.frame, np.uint8, buffer)
        planes = np.ndarray(self.planes, np.uint8, buffer, offset=frame.nbytes)
        return frame, planes


SHM_DIR = "/dev/shm"

# The worker process's own session and its attached slots, set once by _start: a worker serves one job.
_worker: dict = {}


def _start(settings: SwapSettings, registered, payload) -> None:
    from swapline.session import SwapSession

    # Ctrl-C reaches the whole process group: the job stops the workers itself (and says so once)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    session = SwapSession(settings)
    session.mark_payload = payload  # the job's id in every frame's mark, whichever process made it
    _worker.update(session=session, registered=registered, slots={})


def _compose(spec: _SlotSpec, faces: list[Face]) -> tuple[int, float, float]:
    slots = _worker["slots"]
    if spec.name not in slots:
        block = SharedMemory(name=spec.name)
        slots[spec.name] = (block, *spec.views(block.buf))
    _, frame, planes = slots[spec.name]
    start = time.perf_counter()
    swapped = _worker["session"].compose(frame, faces, _worker["registered"])
    composed = time.perf_counter()
    planes[...] = encoder_picture(frame).to_ndarray()
    return swapped, (composed - start) * 1000.0, (time.perf_counter() - composed) * 1000.0


def _check_room(needed: int) -> None:
    """Shared memory is a tmpfs that is written lazily: a full one kills the writer with SIGBUS
    (Docker gives containers 64 MB), so the ring is checked against it before use."""
    if not os.path.isdir(SHM_DIR):
        return  # not Linux: the system sizes shared memory itself
    stat = os.statvfs(SHM_DIR)
    free = stat.f_bavail * stat.f_frsize
    if needed > free:
        raise SwaplineError(
            f"{SHM_DIR}: compose processes need {needed >> 20} MB of shared memory for the frames in "
            f"flight, {free >> 20} MB free (fewer --processes, or a larger /dev/shm: docker --shm-size)"
        )


class ComposeProcesses:
    """submit(image, faces) -> Future of (encoder picture, faces swapped, compose ms, convert ms),
    as the job's compose threads return it."""

    def __init__(self, session, registered, processes: int, slots: int, video: str = "video"):
        # the faces were chosen in this process: a worker needs no reference photo of its own
        settings = replace(session.settings, faces=FaceSelection())
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),  # no copy of this process's threads and locks
            initializer=_start,
            initargs=(settings, registered, session.mark_payload),
        )
        self._count = max(1, slots)
        self._slots: list[tuple[SharedMemory, _SlotSpec, np.ndarray, np.ndarray]] = []
        self._shape: tuple[int, ...] | None = None  # the frames' (the ring is sized for it)
        self._next = 0
        self._video = video  # named in errors

    def _slot(self, image: np.ndarray):
        if self._shape is not None and image.shape != self._shape:
            h, w = image.shape[:2]
            raise SwaplineError(
                f"{self._video}: the frame size changes within the video ({w}x{h} after "
                f"{self._shape[1]}x{self._shape[0]}): compose it without --processes"
            )
        if self._shape is None:
            self._shape = image.shape
            width, height = even_size(image.shape[1], image.shape[0])
            planes = (height * 3 // 2, width)
            _check_room(self._count * (image.nbytes + planes[0] * planes[1]))
            for _ in range(self._count):
                block = SharedMemory(create=True, size=image.nbytes + planes[0] * planes[1])
                spec = _SlotSpec(block.name, image.shape, planes)
                self._slots.append((block, spec, *spec.views(block.buf)))
        slot = self._slots[self._next]
        self._next = (self._next + 1) % self._count
        return slot

    def submit(self, image: np.ndarray, faces: list[Face]) -> Future:
        _, spec, frame, planes = self._slot(image)
        np.copyto(frame, image)
        done: Future = Future()

        def finished(work: Future) -> None:
            if work.cancelled():
                done.cancel()
            elif work.exception() is not None:
                done.set_exception(work.exception())
            else:  # the picture is a copy: the slot may take another frame from here on
                done.set_result((picture_from_planes(planes), *work.result()))

        self._pool.submit(_compose, spec, faces).add_done_callback(finished)
        return done

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        blocks = [slot[0] for slot in self._slots]
        self._slots.clear()  # the views go with it: a block cannot close while one is alive
        for block in blocks:
            with contextlib.suppress(BufferError):  # a callback not yet collected may hold a view
                block.close()
            block.unlink()
