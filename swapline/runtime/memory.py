"""glibc's allocator, set once per process so that big frame buffers go back to the system.

glibc serves a block above its mmap threshold from a mapping of its own, unmapped at free. The
threshold starts at 128 KiB but rises to the size of any such block that is freed (up to
32 MiB), so once the first 4K frame (25 MB) has been freed, every later frame comes from the
heap arenas, where frames freed out of order by the decoder, compose and encoder threads leave
holes the arenas keep: ~115 MB of a 4K video job's peak RSS. Setting the threshold fixes it
(turning off the rise): frames are mapped and unmapped, at the cost of a page fault per 4 KiB
of each new frame. Elsewhere (musl, macOS, Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

log = logging.getLogger("swapline.runtime")

M_MMAP_THRESHOLD = -3  # <malloc.h>
FRAME_MMAP_THRESHOLD = 1 << 20  # below a 720p BGR frame (2.8 MB); glibc accepts up to 32 MiB
# Frames from this size up (BGR bytes; 2560x1440 is 11 MB): below it the heap's holes cost little
# memory, and mapping every frame afresh costs page faults (a few ms a 720p frame on 2 cores).
BIG_FRAME_BYTES = 10 << 20

_lock = threading.Lock()
_tuned: bool | None = None


def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (the only one whose mallopt takes these settings), else None."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):  # not POSIX, or not glibc
        return None
    if not version or not version.startswith("glibc"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def tune_allocator(mmap_threshold: int = FRAME_MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold, once per process (later calls return the first call's answer).

    True when it took effect; False off glibc or when glibc refused the value. Call it before
    the big buffers are made (the start of a video job, or of the program).
    """
    global _tuned
    with _lock:
        if _tuned is None:
            libc = glibc()
            _tuned = bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1)
            log.debug("allocator: mmap threshold %d bytes %s", mmap_threshold, "set" if _tuned else "not set")
        return _tuned


def tune_for_frames(width: int, height: int) -> bool:
    """tune_allocator for a job on frames of this size when they are big (see BIG_FRAME_BYTES);
    whether the setting is in effect."""
    if width * height * 3 < BIG_FRAME_BYTES:
        return bool(_tuned)
    return tune_allocator()
