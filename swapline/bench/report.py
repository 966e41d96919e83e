"""Shared output for benchmarks: rich tables (printed by the CLI) and a JSON file."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from swapline import __version__


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    import os

    import onnxruntime

    return {
        "swapline": __version__,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
    }


def make_table(title: str, columns: list[str], rows: list[list]) -> Table:
    """A rich table (the CLI decides where it is printed)."""
    table = Table(title=title)
    for column in columns:
        first = column == columns[0]
        table.add_column(column, justify="left" if first else "right", no_wrap=first)  # names stay whole
    for row in rows:
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    return table


def write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    from swapline.io.atomic import atomic_output

    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")


ProgressCallback = Callable[[int, int | None], None]  # (steps done, total steps or None)


def no_progress(done: int, total: int | None) -> None:
    """The default progress callback: nothing."""
