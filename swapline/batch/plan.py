"""Cutting a batch into tasks: every video into chunks of whole segments, stills into groups.

A chunk is frames [first_frame, first_frame + len(frame_pts)) of one video, where first_frame is
a multiple of the segment size: its output is exactly the segment files a single-process run of
the same video makes, so chunks join (and resume) like today's segments. The frames are found by
their timestamps, read from the container's packet index without decoding anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from swapline.batch.options import BatchOptions
from swapline.errors import SwaplineError
from swapline.io.images import FORMATS as IMAGE_FORMATS
from swapline.io.video import OUTPUT_FORMATS, VideoInfo, is_video_path, probe


@dataclass(frozen=True)
class VideoChunk:
    """Whole segments of one video; the last chunk of a video runs on to the end of the stream."""

    input: Path
    index: int  # chunk number within the video
    first_frame: int  # a multiple of segment_frames
    segment_frames: int
    frame_pts: tuple[int, ...]  # every frame's timestamp, in display order; () when unknown
    last: bool

    @property
    def first_segment(self) -> int:
        return self.first_frame // self.segment_frames

    @property
    def segments(self) -> range:
        """The segments this chunk is planned to make (the last may turn out shorter or longer)."""
        count = max(1, math.ceil(len(self.frame_pts) / self.segment_frames))
        return range(self.first_segment, self.first_segment + count)


@dataclass(frozen=True)
class ImageGroup:
    """Stills swapped by one task with one loaded session: (input, output) pairs."""

    index: int
    items: tuple[tuple[Path, Path], ...]


@dataclass(frozen=True)
class VideoPlan:
    input: Path
    output: Path
    info: VideoInfo
    chunks: tuple[VideoChunk, ...]


@dataclass(frozen=True)
class BatchPlan:
    videos: tuple[VideoPlan, ...]
    images: tuple[ImageGroup, ...]

    @property
    def tasks(self) -> int:
        return sum(len(v.chunks) for v in self.videos) + len(self.images)


def output_name(path: Path) -> str:
    """The output's file name: the input's, with a format swapline writes (mp4 or png otherwise)."""
    formats = OUTPUT_FORMATS if is_video_path(path) else IMAGE_FORMATS
    suffix = path.suffix if path.suffix.lower() in formats else (".mp4" if is_video_path(path) else ".png")
    return path.stem + suffix


def frame_timestamps(path: Path) -> list[int] | None:
    """Every video frame's timestamp in display order, from the packets alone (no decoding).

    None when a packet has no timestamp: such a stream is processed as one chunk.
    """
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stamps = []
        for packet in container.demux(stream):
            if not packet.size or packet.is_discard:
                continue
            if packet.pts is None:
                return None
            stamps.append(int(packet.pts))
    return sorted(stamps)


def chunk_video(path: Path, info: VideoInfo, options: BatchOptions) -> tuple[VideoChunk, ...]:
    segment = options.video.segment_frames
    per_chunk = segment * max(1, round(options.chunk_seconds * (info.fps or 30.0) / segment))
    stamps = frame_timestamps(path)
    if not stamps:  # no usable index: one chunk, decoded from the start, to the end
        return (VideoChunk(path, 0, 0, segment, (), True),)
    starts = range(0, len(stamps), per_chunk)
    return tuple(
        VideoChunk(path, n, start, segment, tuple(stamps[start : start + per_chunk]), n == len(starts) - 1)
        for n, start in enumerate(starts)
    )


def group_images(items: list[tuple[Path, Path]], options: BatchOptions, workers: int) -> tuple[ImageGroup, ...]:
    """Groups of at most images_per_task, but enough groups to keep every worker busy."""
    if not items:
        return ()
    size = max(1, min(options.images_per_task, math.ceil(len(items) / max(1, workers))))
    return tuple(ImageGroup(n, tuple(items[i : i + size])) for n, i in enumerate(range(0, len(items), size)))


def plan_batch(inputs: list[Path], output_dir: Path, options: BatchOptions, workers: int) -> BatchPlan:
    """Probe every input and cut the work; a name clash or an unknown format is an error up front."""
    from swapline.io.images import check_input_file

    outputs: dict[Path, Path] = {}
    for path in inputs:
        path = Path(path)
        check_input_file(path, "a video" if is_video_path(path) else "an image")
        if not is_video_path(path) and path.suffix.lower() not in IMAGE_FORMATS:
            raise SwaplineError(f"{path}: neither a video nor an image swapline reads")
        output = Path(output_dir) / output_name(path)
        if output in outputs.values():
            clash = next(k for k, v in outputs.items() if v == output)
            raise SwaplineError(f"{path} and {clash} would both be written to {output}; rename one")
        outputs[path] = output
    videos = []
    for path, output in outputs.items():
        if is_video_path(path):
            info = probe(path)
            videos.append(VideoPlan(path, output, info, chunk_video(path, info, options)))
    stills = [(path, output) for path, output in outputs.items() if not is_video_path(path)]
    return BatchPlan(tuple(videos), group_images(stills, options, workers))
