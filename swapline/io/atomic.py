"""Atomic file output: a crash never leaves a truncated file under the name the user asked for.

Temporaries are named `.{name}.{pid}.{token}{suffix}` beside the output, so a later run can tell
ours apart from anything else in the folder and remove the ones a killed process (kill -9, power
cut) left behind, without touching a temporary that a live process is still writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".partial"


def temporary_sibling(path: Path | str, suffix: str = TEMP_SUFFIX) -> Path:
    """Create an empty temporary file beside `path`, named so clean_stale_temporaries knows it.

    Pass the output's own extension as `suffix` for writers that pick the format from the name.
    The file gets the usual umask-derived mode (mkstemp's 0600 would survive the rename).
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{path}: no free temporary name")


def _pid_alive(pid: int) -> bool:
    """True unless `pid` surely runs no process here: when in doubt, a temporary is kept."""
    if os.name == "nt":  # os.kill would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, someone else's
        return True
    return True


def clean_stale_temporaries(path: Path | str, suffix: str = TEMP_SUFFIX) -> list[Path]:
    """Remove temporaries for `path` left by processes that no longer run; return what went.

    Best effort: a folder that cannot be listed or a file that cannot be removed is left alone.
    """
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"([0-9]+)\.[0-9a-f]{8}" + re.escape(suffix))
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or int(match[1]) <= 0 or _pid_alive(int(match[1])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_output(path: Path | str, suffix: str = TEMP_SUFFIX) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    clean_stale_temporaries(path, suffix)
    tmp_path = temporary_sibling(path, suffix)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
