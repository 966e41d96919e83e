"""Hand-offs between pipeline threads.

LatestSlot is the camera side: one pending frame, and a new frame replaces it (the newest
frame wins; the camera never waits). StageQueue joins processing stages: bounded, so a slow
stage pushes back on the one before it instead of letting a backlog (= delay) build up.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

_POLL_S = 0.05


class Stopped(Exception):
    """The pipeline is stopping; the waiting thread should return."""


class LatestSlot:
    def __init__(self) -> None:
        self._item: Any = None
        self._has_item = False
        self._cond = threading.Condition()
        self.overwritten = 0

    def put(self, item: Any) -> Any:
        """Store item; returns the item it replaced (dropped), or None."""
        with self._cond:
            replaced = self._item if self._has_item else None
            if self._has_item:
                self.overwritten += 1
            self._item, self._has_item = item, True
            self._cond.notify()
            return replaced

    def put_after_pending(self, item: Any, stop: threading.Event) -> None:
        """Store item once the pending one is taken (the end-of-stream marker must not drop a frame)."""
        with self._cond:
            while self._has_item and not stop.is_set():
                self._cond.wait(_POLL_S)
            self._item, self._has_item = item, True
            self._cond.notify_all()

    def get(self, stop: threading.Event) -> Any:
        with self._cond:
            while not self._has_item:
                if stop.is_set():
                    raise Stopped
                self._cond.wait(_POLL_S)
            item, self._item, self._has_item = self._item, None, False
            self._cond.notify_all()
            return item


class StageQueue:
    def __init__(self, size: int = 1) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=size)

    def put(self, item: Any, stop: threading.Event) -> None:
        while True:
            if stop.is_set():
                raise Stopped
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def get(self, stop: threading.Event, timeout: float | None = None) -> Any:
        """The next item; raises Stopped when stopping, queue.Empty after `timeout` seconds."""
        waited = 0.0
        while True:
            if stop.is_set():
                raise Stopped
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                waited += _POLL_S
                if timeout is not None and waited >= timeout:
                    raise
