"""What reaches the terminal: results on stdout (only JSON with --json), everything else on stderr."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

stderr = Console(stderr=True)


def show(*items) -> None:
    """Tables and lines for a person, on stdout."""
    console = Console()
    for item in items:
        if isinstance(item, str):
            print(item)  # plain text: no markup, no wrapping
        else:
            console.print(item)


def show_json(payload: dict) -> None:
    print(json.dumps(payload, indent=2))


def error(message: str) -> None:
    print(f"swapline: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def progress(description: str, enabled: bool = True) -> Iterator[Callable[[int, int | None], None]]:
    """A transient bar on stderr; yields the callback the library calls with (done, total)."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not enabled or not stderr.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class DownloadBars:
    """Model downloads: one bar per file on stderr, fed by the model store's callback."""

    def __init__(self) -> None:
        self._bar = Progress(
            *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=stderr, transient=True
        )
        self._tasks: dict[str, int] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if not self._tasks:
            self._bar.start()
        if name not in self._tasks:
            self._tasks[name] = self._bar.add_task(f"downloading {name}", total=total)
        self._bar.update(self._tasks[name], completed=done, total=total)

    def close(self) -> None:
        if self._tasks:
            self._bar.stop()
