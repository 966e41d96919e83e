"""The one output-path check every writer uses: known format, not an input, folder present."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from swapline.errors import SwaplineError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except (OSError, RuntimeError):  # a symlink loop cannot be an input we read
        return False


def check_output_path(
    output: Path | str,
    inputs: Iterable[Path | str | None],
    suffixes: Iterable[str],
    kind: str = "output",
) -> Path:
    """Refuse an output that would overwrite an input, has no known format, or has no folder."""
    output = Path(output)
    allowed = tuple(suffixes)
    if output.suffix.lower() not in allowed:
        names = ", ".join(s.lstrip(".") for s in allowed)
        raise SwaplineError(f"{output}: unsupported {kind} format {output.suffix or '(none)'!r} (use {names})")
    for item in inputs:
        if item is not None and _same_file(output, Path(item)):
            raise SwaplineError(f"{output}: output would overwrite an input; choose another name")
    try:
        folder_ok = output.parent.resolve().is_dir()
    except (OSError, RuntimeError):
        folder_ok = False
    if not folder_ok:
        raise SwaplineError(f"{output}: folder {output.parent} does not exist")
    return output
