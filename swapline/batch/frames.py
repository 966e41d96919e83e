"""The frames of one chunk, found by seeking to the keyframe before it (not by decoding from 0).

Each frame's timestamp must be the one the plan expects; anything else (a stream whose seeking
the container gets wrong, frames the demuxer drops) raises Misplaced, and the chunk is then
decoded from the start instead, counting frames exactly as a single-process run does.
"""

from __future__ import annotations

from collections.abc import Iterator

from swapline.batch.plan import VideoChunk
from swapline.errors import SwaplineError
from swapline.io.video import DecodedFrame, VideoInfo, decode_frames, upright


class Misplaced(Exception):
    """The frames after a seek are not the planned ones."""


def _end(chunk: VideoChunk) -> int | None:
    return None if chunk.last else chunk.first_frame + len(chunk.frame_pts)


def scan_frames(info: VideoInfo, chunk: VideoChunk) -> Iterator[DecodedFrame]:
    """The chunk's frames, decoded from the first frame of the video (always right, slower)."""
    end = _end(chunk)
    for frame in decode_frames(info):
        if end is not None and frame.index >= end:
            return
        if frame.index >= chunk.first_frame:
            yield frame


def chunk_frames(info: VideoInfo, chunk: VideoChunk) -> Iterator[DecodedFrame]:
    """The chunk's frames: from the start for the first chunk, else by seeking (Misplaced on doubt)."""
    if chunk.first_frame == 0 or not chunk.frame_pts:
        yield from scan_frames(info, chunk)
    else:
        yield from _seek_frames(info, chunk)


def _seek_frames(info: VideoInfo, chunk: VideoChunk) -> Iterator[DecodedFrame]:
    import av

    expected = chunk.frame_pts
    container = av.open(str(info.path))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count, last_time = 0, 0.0
    try:
        container.seek(expected[0], stream=stream, backward=True, any_frame=False)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise Misplaced("a frame without a timestamp")
                if frame.pts < expected[0]:
                    continue  # between the keyframe and the chunk
                if count < len(expected) and frame.pts != expected[count]:
                    raise Misplaced(f"frame {chunk.first_frame + count}: pts {frame.pts}, planned {expected[count]}")
                time_s = float(frame.pts * stream.time_base) if stream.time_base else frame.pts / info.fps
                image = upright(frame.to_ndarray(format="bgr24"), info.rotation)
                yield DecodedFrame(chunk.first_frame + count, frame.pts, time_s, image)
                count, last_time = count + 1, time_s
                if not chunk.last and count == len(expected):
                    return
        except av.error.FFmpegError as exc:
            raise SwaplineError(
                f"{info.path}: decoding failed after {last_time:.2f} s, frame {chunk.first_frame + count} "
                f"({exc.strerror or exc})"
            ) from exc
        if count == 0 or (count < len(expected) and not chunk.last):
            raise Misplaced(f"{count} of {len(expected)} planned frames after the seek")
        # the end of the stream: the same truncation rule as decode_frames
        period = 1.0 / info.fps if info.fps else 0.04
        total = chunk.first_frame + count
        short_time = info.duration_s and last_time + 3.5 * period < info.duration_s
        short_count = not info.duration_s and info.frames and total < info.frames - 2
        if short_count or short_time:
            raise SwaplineError(
                f"{info.path}: truncated: the last good frame is at {last_time:.2f} s"
                + (f" of {info.duration_s:.2f} s" if info.duration_s else "")
            )
    except av.error.FFmpegError as exc:  # the seek itself
        raise Misplaced(f"seek failed ({exc})") from exc
    finally:
        container.close()
