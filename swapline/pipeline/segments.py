"""Finished video segments kept beside the output, so an interrupted job resumes where it stopped.

The work folder is keyed by a fingerprint of everything that shapes the output (the input file,
the source photo, the settings, the version): a rerun with anything changed starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from swapline import __version__
from swapline.io.atomic import atomic_output


def fingerprint(inputs: list[Path], settings: object) -> str:
    """A key for the work: versions, settings, and the inputs' size, time and leading bytes."""
    digest = hashlib.sha256(f"{__version__}|{settings!r}".encode())
    for path in inputs:
        stat = path.stat()
        digest.update(f"|{path.name}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


class SegmentStore:
    """The work folder: finished segment files and a manifest of them."""

    def __init__(self, output: Path, key: str):
        self.path = output.parent / f".{output.name}.swapline-parts"
        self.manifest_path = self.path / "manifest.json"
        manifest = {}
        if self.manifest_path.exists():
            with contextlib.suppress(ValueError, OSError):
                manifest = json.loads(self.manifest_path.read_text())
        if manifest.get("key") != key:
            shutil.rmtree(self.path, ignore_errors=True)
            manifest = {"key": key, "segments": {}}
        self.path.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest

    def segment_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}.mp4"

    def partial_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}.partial.mp4"

    def done(self, index: int) -> bool:
        return str(index) in self.manifest["segments"] and self.segment_path(index).exists()

    def finished(self) -> list[int]:
        return sorted(int(k) for k in self.manifest["segments"])

    def finish(self, index: int, partial: Path, frames: int) -> None:
        """Move a complete segment into place and record it."""
        partial.replace(self.segment_path(index))
        self.manifest["segments"][str(index)] = {"frames": frames}
        with atomic_output(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(self.manifest))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
