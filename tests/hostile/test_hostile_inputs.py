"""Hostile files and folders: each gives one line naming the file and the problem, or a correct result."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swapline.errors import SwaplineError
from swapline.io import check_output_path, read_image, write_image
from swapline.io.atomic import atomic_output, clean_stale_temporaries, temporary_sibling
from tests.conftest import DATA


def _skip_unless_enforced(probe) -> None:
    """Root (CAP_DAC_OVERRIDE) ignores file modes: skip rather than test nothing."""
    try:
        probe()
    except PermissionError:
        return
    pytest.skip("file modes are not enforced for this user (root); a read-only mount needs privileges")


def _one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(SwaplineError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _png_header(path: Path, width: int, height: int, color_type: int = 2) -> Path:
    """A valid PNG signature and IHDR declaring width x height, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _jpeg_declaring(path: Path, width: int, height: int) -> Path:
    """A small baseline JPEG whose SOF0 header is patched to declare width x height."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    at = 2  # after SOI: walk the marker segments to SOF0
    while data[at + 1] != 0xC0:
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


# --- 1. decompression bombs -------------------------------------------------------------------


def test_png_bomb_is_refused_from_its_header(tmp_path):
    bomb = _png_header(tmp_path / "bomb.png", 50000, 50000)
    message = _one_line_error(read_image, bomb)
    assert message == f"{bomb}: image is 50000x50000 (2500 MP), over the 100 MP limit"


def test_large_jpeg_is_refused_from_its_header(tmp_path):
    bomb = _jpeg_declaring(tmp_path / "huge.jpg", 16000, 16000)
    message = _one_line_error(read_image, bomb)
    assert message == f"{bomb}: image is 16000x16000 (256 MP), over the 100 MP limit"


def test_pixel_limit_is_a_setting():
    message = _one_line_error(read_image, DATA / "obama.jpg", max_pixels=100_000)
    assert message.endswith("image is 640x800 (0.51 MP), over the 0.1 MP limit")
    assert read_image(DATA / "obama.jpg", max_pixels=None).pixels.shape == (800, 640, 3)


def test_no_pillow_warning_between_its_threshold_and_our_limit(tmp_path, capfd):
    # 9500 x 9500 = 90.25 MP: over Pillow's warning threshold (89.5 MP), under our 100 MP limit.
    # Greyscale and almost no pixel data, so the attempt to decode stays small and fails fast.
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None and limit < 9500 * 9500
    big = _png_header(tmp_path / "big.png", 9500, 9500, color_type=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = _one_line_error(read_image, big)
    assert "limit" not in message  # not refused for its size: it failed decoding
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert capfd.readouterr().err == ""
    assert limit == Image.MAX_IMAGE_PIXELS  # Pillow's global setting untouched


# --- 3. symlink loops -------------------------------------------------------------------------


def test_symlink_loop_image_input(tmp_path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop.name)
    assert _one_line_error(read_image, loop) == f"{loop}: symlink loop"
    assert check_output_path(tmp_path / "out.png", [loop]) == tmp_path / "out.png"


def test_symlink_loop_video_input(tmp_path):
    from swapline.io.video import probe

    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop.name)
    assert _one_line_error(probe, loop) == f"{loop}: symlink loop"


def test_folder_and_dangling_link_inputs(tmp_path):
    (tmp_path / "folder.png").mkdir()
    assert _one_line_error(read_image, tmp_path / "folder.png").endswith("is a folder, not an image")
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to("nowhere.png")
    assert _one_line_error(read_image, dangling) == f"{dangling}: no such file"


def test_unreadable_image(tmp_path):
    locked = tmp_path / "locked.jpg"
    locked.write_bytes((DATA / "obama.jpg").read_bytes())
    locked.chmod(0)
    _skip_unless_enforced(locked.read_bytes)
    assert _one_line_error(read_image, locked) == f"{locked}: cannot be read (Permission denied)"


# --- 4. temporaries left by killed writers ----------------------------------------------------


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_temporaries_of_killed_writers_are_removed(tmp_path, umask_022):
    output = tmp_path / "out.png"
    # a writer killed with SIGKILL in the middle of an atomic write
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from swapline.io.atomic import atomic_output\n"
            "with atomic_output(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half an image')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n",
            str(output),
        ],
        cwd=Path(__file__).parents[2],
    )
    assert killed.returncode == -signal.SIGKILL
    orphans = list(tmp_path.glob(".out.png.*.partial"))
    assert len(orphans) == 1 and not output.exists()
    dead_pid = int(orphans[0].name.split(".")[3])
    # a temporary of this (live) process, and files that only look similar
    live = tmp_path / f".out.png.{os.getpid()}.0badc0de.partial"
    other_output = tmp_path / f".other.png.{dead_pid}.deadbeef.partial"
    old_style = tmp_path / ".out.png.k3j4h5_x.partial"  # mkstemp's names: no pid to check
    for keep in (live, other_output, old_style):
        keep.write_bytes(b"")

    write_image(output, np.full((16, 16, 3), 128, np.uint8))

    assert not orphans[0].exists()
    assert live.exists() and other_output.exists() and old_style.exists()
    assert output.stat().st_mode & 0o777 == 0o644


def test_temporary_sibling_names_and_modes(tmp_path, umask_022):
    output = tmp_path / "clip.mp4"
    tmp = temporary_sibling(output, ".mp4")
    assert tmp.parent == tmp_path and tmp.name.startswith(f".clip.mp4.{os.getpid()}.") and tmp.suffix == ".mp4"
    assert tmp.stat().st_mode & 0o777 == 0o644
    assert clean_stale_temporaries(output, ".mp4") == []  # ours, and we are alive
    assert tmp.exists()


def test_failed_atomic_write_leaves_nothing(tmp_path):
    output = tmp_path / "out.png"
    with pytest.raises(RuntimeError), atomic_output(output) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


# --- 5. read-only output folder ---------------------------------------------------------------


def test_write_into_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        _skip_unless_enforced(lambda: (folder / "probe").touch() or (folder / "probe").unlink())
        message = _one_line_error(write_image, folder / "out.png", np.zeros((16, 16, 3), np.uint8))
    finally:
        folder.chmod(0o755)
    assert message == f"{folder / 'out.png'}: cannot write (Permission denied)"
    assert list(folder.iterdir()) == []
