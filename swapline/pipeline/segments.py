"""Finished video segments kept beside the output, so an interrupted job resumes where it stopped.

The work folder is keyed by a fingerprint of everything that shapes the output (the input file,
the source photo, the settings, the version): a rerun with anything changed starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

from filelock import FileLock, Timeout

from swapline import __version__
from swapline.errors import SwaplineError
from swapline.io.atomic import atomic_output
from swapline.io.video import segment_is_whole


def fingerprint(inputs: list[Path], settings: object) -> str:
    """A key for the work: versions, settings, and the inputs' size, time and leading bytes."""
    digest = hashlib.sha256(f"{__version__}|{settings!r}".encode())
    for path in inputs:
        stat = path.stat()
        digest.update(f"|{path.name}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Data on the disk, not in a cache: a segment is recorded as done only after this."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentStore:
    """The work folder: finished segment files and a manifest of them, for one job at a time.

    An exclusive lock beside the output keeps a second job (same output, any settings) from
    touching the folder; call close() to release it. On opening, every recorded segment is
    checked (frame count, decodable tail) and a damaged one is redone.
    """

    def __init__(self, output: Path, key: str):
        self.output = output
        self.path = output.parent / f".{output.name}.swapline-parts"
        self.manifest_path = self.path / "manifest.json"
        self._lock = FileLock(output.parent / f".{output.name}.swapline-lock")
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise SwaplineError(f"{output}: another swapline job is writing this output") from None
        self.repaired = 0  # damaged segments found on opening, to be made again
        try:
            self.manifest = self._load(key)
        except BaseException:
            self.close()
            raise

    def _load(self, key: str) -> dict:
        manifest = {}
        if self.manifest_path.exists():
            with contextlib.suppress(ValueError, OSError):
                manifest = json.loads(self.manifest_path.read_text())
        if manifest.get("key") != key:
            shutil.rmtree(self.path, ignore_errors=True)
            manifest = {"key": key, "segments": {}}
        self.path.mkdir(parents=True, exist_ok=True)
        segments = manifest["segments"]
        for index, entry in list(segments.items()):
            if not segment_is_whole(self.segment_path(int(index)), int(entry.get("frames", -1))):
                del segments[index]  # cut short (power loss?): made again
                self.repaired += 1
                self.segment_path(int(index)).unlink(missing_ok=True)
        return manifest

    def close(self) -> None:
        self._lock.release()
        with contextlib.suppress(OSError):
            Path(self._lock.lock_file).unlink()

    def segment_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}.mp4"

    def partial_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}.partial.mp4"

    def done(self, index: int) -> bool:
        return str(index) in self.manifest["segments"] and self.segment_path(index).exists()

    def finished(self) -> list[int]:
        return sorted(int(k) for k in self.manifest["segments"])

    def finish(self, index: int, partial: Path, frames: int) -> None:
        """Move a complete segment into place and record it, both safely on disk first."""
        _fsync(partial)
        partial.replace(self.segment_path(index))
        updated = {**self.manifest, "segments": {**self.manifest["segments"], str(index): {"frames": frames}}}
        with atomic_output(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(updated))
            _fsync(tmp)
        _fsync(self.path)
        self.manifest = updated  # only once it is on disk

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
