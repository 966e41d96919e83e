"""Video files with PyAV (FFmpeg inside the wheel): probing, upright decoding, H.264 segments.

Decoded frames are turned upright by the stream's display rotation before any processing, and
written upright (so the output needs no rotation metadata). H.264 in 4:2:0 cannot store odd
sizes (its chroma and its cropping work in 2-pixel units), so an odd width or height is padded
by repeating the last column or row.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from swapline.errors import SwaplineError

if TYPE_CHECKING:
    import av

INPUT_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
# What the codecs keep in flight, sized in bytes so big frames cost frames, not gigabytes: a
# frame-threaded decoder holds a picture per thread (auto: one per core, plus one), and x264
# about a BGR frame's bytes per frame of rate-control lookahead (veryfast: 10, medium: 40;
# measured: 24 MB a frame at 4K). At 720p and 1080p (veryfast) neither bound bites; at 4K they
# keep 1 decoder thread and 3 lookahead frames (~215 MB less than auto and 10 on 2 cores; the
# second decoder thread cost 25 MB at 4K and made the job no faster: x264 is what waits there).
DECODER_BYTES = 16 << 20
LOOKAHEAD_BYTES = 80 << 20
# x264's frame threads (each encodes a frame of its own) ran 8-15% faster than its slice threads
# (PyAV's default) on 2 cores at 720p and 1080p, and no faster at 4K; each frame thread past the
# first holds about 10 bytes a pixel (measured with 3: +18 MB at 720p, +40 MB at 1080p, +134 MB
# at 4K). They are used where this many bytes hold at least one more thread.
ENCODER_THREAD_BYTES = 64 << 20
# x264's rc-lookahead per preset (x264 --fullhelp): a cap is only ever set below these.
X264_LOOKAHEAD = {"ultrafast": 0, "superfast": 0, "veryfast": 10, "faster": 20, "fast": 30, "medium": 40}
X264_LOOKAHEAD.update(slow=50, slower=60, veryslow=60, placebo=60)
OUTPUT_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}
# The CPU features of x264's AVX-512 level (its cpu.c asks for all five).
X264_AVX512 = ("AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL")


def _cpu_features() -> dict[str, bool]:
    """numpy's runtime CPU feature table (its location moved in numpy 2); empty if neither is there."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return dict(__import__(module, fromlist=["__cpu_features__"]).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return {}


@functools.cache
def x264_options(features: tuple[tuple[str, bool], ...] | None = None) -> dict[str, str]:
    """Options for every libx264 stream we open, so that the same pictures give the same bytes.

    x264's AVX-512 code makes its output depend on the process's memory layout (not on threads:
    single-threaded it did too): on an AVX-512 machine the same ten pictures encoded in 60 fresh
    processes gave up to 12 different streams (a few pixels of the last macroblocks), and batch
    outputs differed from a single run's.
    Its AVX2 level gave one stream in 120 processes, at the same speed; so a CPU with AVX-512
    is run at AVX2 (a level it has). `features`: (name, present) pairs, for tests."""
    table = dict(features) if features is not None else _cpu_features()
    return {"x264-params": "asm=AVX2"} if all(table.get(name, False) for name in X264_AVX512) else {}


def is_video_path(path: Path | str) -> bool:
    return Path(path).suffix.lower() in INPUT_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # upright (after rotation)
    height: int
    rotation: int  # degrees counter-clockwise to turn stored frames upright
    fps: float
    time_base: Fraction
    frames: int  # as declared by the container; 0 when unknown
    duration_s: float  # 0 when unknown
    audio_streams: int


def _open(path: Path):
    import av

    from swapline.io.images import check_input_file

    check_input_file(path, "a video")  # missing, a folder or a symlink loop: one line
    if path.suffix.lower() not in INPUT_SUFFIXES:
        raise SwaplineError(f"{path}: unsupported video format {path.suffix!r} (use {', '.join(INPUT_SUFFIXES)})")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise SwaplineError(f"{path}: not a readable video ({exc.strerror or exc})") from exc
    if not container.streams.video:
        container.close()
        raise SwaplineError(f"{path}: has no video stream")
    return container


def probe(path: Path | str) -> VideoInfo:
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rotation = 0
        try:
            first = next(container.decode(video=0))
            rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
        except StopIteration:
            raise SwaplineError(f"{path}: contains no video frames") from None
        except Exception as exc:
            raise SwaplineError(f"{path}: cannot decode the first frame ({exc})") from exc
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        # the video stream's own duration only: a container's (Matroska has no other) counts
        # audio that may outlast the video
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            rotation=rotation,
            fps=float(stream.average_rate or stream.guessed_rate or 30),
            time_base=stream.time_base or Fraction(1, 90000),
            frames=int(stream.frames or 0),
            duration_s=duration,
            audio_streams=len(container.streams.audio),
        )
    finally:
        container.close()


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


@dataclass
class DecodedFrame:
    index: int
    pts: int
    time_s: float
    image: np.ndarray


def cpu_cores(cores: int | None = None) -> int:
    """cores when given, else this machine's: what the codecs' thread counts are chosen for."""
    return max(1, cores or os.cpu_count() or 1)


def decoder_threads(width: int, height: int, cores: int | None = None) -> int:
    """Decoder threads: FFmpeg's auto (cores + 1), fewer where the pictures they hold exceed DECODER_BYTES."""
    auto = cpu_cores(cores) + 1
    return max(1, min(auto, DECODER_BYTES // max(1, width * height * 3 // 2)))


def encoder_threads(width: int, height: int, cores: int | None = None) -> int:
    """x264 frame threads for this frame size: x264's auto (1.5 a core) as far as
    ENCODER_THREAD_BYTES holds the ones past the first; 1: slice threads instead (big frames)."""
    auto = max(1, cpu_cores(cores) * 3 // 2)
    return min(auto, 1 + ENCODER_THREAD_BYTES // max(1, width * height * 10))


def encoder_lookahead(width: int, height: int, preset: str) -> int | None:
    """x264 rc-lookahead for this frame size: None (the preset's own) unless LOOKAHEAD_BYTES caps it."""
    preset_frames = X264_LOOKAHEAD.get(preset, 40)
    cap = LOOKAHEAD_BYTES // max(1, width * height * 3)
    return cap if cap < preset_frames else None


def decode_frames(info: VideoInfo):
    """Yield every frame upright; a decoding error or a stream shorter than declared is an error."""
    import av

    container = _open(info.path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = decoder_threads(info.width, info.height)
    index, last_time = 0, 0.0
    try:
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else index
                time_s = float(pts * stream.time_base) if stream.time_base else index / info.fps
                image = upright(frame.to_ndarray(format="bgr24"), info.rotation)
                yield DecodedFrame(index, pts, time_s, image)
                index, last_time = index + 1, time_s
        except av.error.FFmpegError as exc:
            raise SwaplineError(
                f"{info.path}: decoding failed after {last_time:.2f} s, frame {index} ({exc.strerror or exc})"
            ) from exc
        # The stream's duration is the check; a declared frame count only when there is no
        # duration (edit lists can skip declared frames). Allow for rounding: a few frames.
        period = 1.0 / info.fps if info.fps else 0.04
        short_time = info.duration_s and last_time + 3.5 * period < info.duration_s
        short_count = not info.duration_s and info.frames and index < info.frames - 2
        if index == 0 or short_count or short_time:
            raise SwaplineError(
                f"{info.path}: truncated: the last good frame is at {last_time:.2f} s"
                + (f" of {info.duration_s:.2f} s" if info.duration_s else "")
            )
    finally:
        container.close()


def even_size(width: int, height: int) -> tuple[int, int]:
    return width + width % 2, height + height % 2


def pad_to_even(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


def _bgr_frame(image: np.ndarray) -> av.VideoFrame:
    import av

    image = pad_to_even(image)
    try:  # the frame reads our pixels in place
        return av.VideoFrame.from_numpy_buffer(image, format="bgr24")
    except ValueError:  # rows not contiguous: one copy
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")


def encoder_picture(image: np.ndarray) -> av.VideoFrame:
    """A BGR frame as the encoder takes it (yuv420p, even size), converted exactly as the
    encoder would convert it. Made on the thread that finished the frame, the BGR pixels (25 MB
    at 4K) can be freed before the frame's turn to be encoded, and the conversion overlaps x264."""
    return _bgr_frame(image).reformat(format="yuv420p", threads=0)  # threads: as the encoder's (auto)


def picture_from_planes(planes: np.ndarray) -> av.VideoFrame:
    """The encoder's picture back from encoder_picture(...).to_ndarray() (made in another process)."""
    import av

    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


class SegmentWriter:
    """Encodes one segment of frames to its own file (video only), keeping the input's timestamps.
    cores: the core count x264's threads are chosen for (None: this machine's); x264's output
    follows its thread count, so equal cores make equal bytes on any machine."""

    def __init__(self, path: Path, info: VideoInfo, crf: int, preset: str, cores: int | None = None):
        import av

        self._av = av
        self.path = path
        # keep the input's clock: the mp4 muxer would otherwise pick its own track timescale
        den = str(info.time_base.denominator)
        timescale = {"video_track_timescale": den, "movie_timescale": den}  # edit lists too
        self._container = av.open(str(path), mode="w", format="mp4", options=timescale)
        stream = self._container.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(1001))
        stream.width, stream.height = even_size(info.width, info.height)
        stream.pix_fmt = "yuv420p"
        stream.time_base = info.time_base
        # No B-frames: decode order = display order, so segments join with monotonic timestamps.
        stream.options = {"crf": str(crf), "preset": preset, "bf": "0", **x264_options()}
        lookahead = encoder_lookahead(info.width, info.height, preset)
        if lookahead is not None:
            stream.options = {**stream.options, "rc-lookahead": str(lookahead)}
        stream.codec_context.time_base = info.time_base
        threads = encoder_threads(stream.width, stream.height, cores)
        # frame threads, or for big frames slice threads, one per core (x264's own count), both
        # given: x264 would count this machine's cores itself
        stream.codec_context.thread_type = "FRAME" if threads > 1 else "SLICE"
        stream.codec_context.thread_count = threads if threads > 1 else cpu_cores(cores)
        self._stream = stream
        self._time_base = info.time_base
        self.frames = 0

    def write(self, image: np.ndarray | av.VideoFrame, pts: int) -> None:
        """Encode a BGR frame (converted to yuv420p by the encoder) or an encoder_picture of one."""
        frame = image if isinstance(image, self._av.VideoFrame) else _bgr_frame(image)
        frame.pts, frame.time_base = pts, self._time_base
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except self._av.error.FFmpegError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS):
                raise SwaplineError(f"{self.path}: the H.264 encoder refused the settings ({exc})") from exc
            raise  # a write failure (disk full, folder gone): the job says what it means
        self.frames += 1

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()


PROVENANCE_TAG = "comment"  # mp4/mov: the udta comment atom; mkv: a COMMENT tag


def join_segments(
    segments: list[Path], info: VideoInfo, output: Path, tmp: Path, provenance: dict | None = None
) -> None:
    """Write `tmp` (then the caller renames it): the segments' video packets, in order, and every
    audio stream of the input copied packet for packet, interleaved by time; the provenance
    record goes into the container's metadata."""
    import heapq

    import av

    out_format = OUTPUT_FORMATS.get(output.suffix.lower(), "mp4")
    inputs = [av.open(str(p)) for p in segments]
    source = av.open(str(info.path))
    try:
        den = str(info.time_base.denominator)
        mp4_clock = {"video_track_timescale": den, "movie_timescale": den}
        options = mp4_clock if out_format in ("mp4", "mov") else {}
        with av.open(str(tmp), mode="w", format=out_format, options=options) as out:
            if provenance is not None:
                out.metadata[PROVENANCE_TAG] = json.dumps(provenance)
            video_out = out.add_stream_from_template(inputs[0].streams.video[0])
            audio_out = {s.index: out.add_stream_from_template(s) for s in source.streams.audio}

            def video_packets():
                for container in inputs:
                    for packet in container.demux(container.streams.video[0]):
                        if packet.size:
                            yield float(packet.dts * packet.time_base), 0, packet, video_out

            def audio_packets():
                if not audio_out:
                    return
                for packet in source.demux(*source.streams.audio):
                    if packet.size:
                        when = float((packet.dts if packet.dts is not None else 0) * packet.time_base)
                        yield when, 1, packet, audio_out[packet.stream.index]

            merged = heapq.merge(video_packets(), audio_packets(), key=lambda item: (item[0], item[1]))
            for _, _, packet, stream in merged:
                packet.stream = stream
                out.mux(packet)
    finally:
        for container in inputs:
            container.close()
        source.close()


def read_video_provenance(path: Path | str) -> dict | None:
    """The provenance record in a video's container metadata (written by swapline), or None."""
    import av

    try:
        with av.open(str(path)) as container:
            tags = {k.lower(): v for k, v in container.metadata.items()}
    except av.error.FFmpegError:
        return None
    try:
        record = json.loads(tags.get(PROVENANCE_TAG, ""))
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and record.get("ai_generated") else None


def segment_is_whole(path: Path, frames: int) -> bool:
    """Does this finished segment hold `frames` packets and decode from its last keyframe on?

    Cheap enough to run on every resume: packets are only counted, and only the last group of
    pictures is decoded. A segment cut short by a power loss fails one or the other.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            packets = [p for p in container.demux(stream) if p.size]
            if len(packets) != frames:
                return False
            last_key = max((i for i, p in enumerate(packets) if p.is_keyframe), default=None)
            if last_key is None:
                return False
            decoded = sum(len(stream.decode(p)) for p in packets[last_key:])
            decoded += len(stream.decode(None))
            return decoded == frames - last_key
    except (av.error.FFmpegError, OSError, IndexError, ValueError):
        return False
