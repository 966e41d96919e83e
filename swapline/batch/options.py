"""What a batch run needs beyond the session's settings: how work is cut up and where it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swapline.batch import RUNNERS
from swapline.errors import SwaplineError
from swapline.settings import VideoOptions


@dataclass(frozen=True)
class BatchOptions:
    video: VideoOptions = field(default_factory=VideoOptions)
    # A long video is cut into chunks of about this long, rounded to whole segments, so that a
    # chunk's output is exactly the segments a single-process run would make.
    chunk_seconds: float = 60.0
    images_per_task: int = 8  # stills travel in groups: one task start per group, not per photo
    workers: int | None = None  # None: one per core here, or every CPU of a cluster
    address: str | None = None  # None: Ray started here (loopback, offline); "auto" or "ray://host:port"
    runner: str = "auto"  # auto: Ray when installed, else a local process pool | ray | pool
    max_retries: int = 3  # a chunk whose worker process died is run again this many times
    # Send input files to the workers through Ray's object store (None: only with an address,
    # where workers may not share this machine's files). Outputs always come back that way.
    ship_files: bool | None = None
    # Testing fault tolerance only: the first chunk to reach its middle creates this file and kills
    # its own worker process (os._exit); the retried attempt sees the file and finishes normally.
    crash_once_marker: Path | None = None

    def __post_init__(self) -> None:
        if self.chunk_seconds <= 0:
            raise SwaplineError(f"chunk seconds must be above 0, not {self.chunk_seconds}")
        if self.workers is not None and self.workers < 1:
            raise SwaplineError(f"workers must be at least 1, not {self.workers}")
        if self.images_per_task < 1:
            raise SwaplineError(f"images per task must be at least 1, not {self.images_per_task}")
        if self.runner not in RUNNERS:
            raise SwaplineError(f"runner must be one of {', '.join(RUNNERS)}, not {self.runner!r}")
        if self.max_retries < 0:
            raise SwaplineError(f"max retries must be 0 or more, not {self.max_retries}")
