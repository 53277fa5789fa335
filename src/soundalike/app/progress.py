"""Progress bars for long work: count, percentage, rate, elapsed time and ETA (rich, on stderr)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "files",
                 console: Console | None = None) -> Iterator[Callable[[str, int, int], None]]:
    """A bar; yields ``update(stage, done, total)`` to call as work completes."""
    console = console or Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[progress.percentage]{task.percentage:>3.0f}%"), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=None, rate="")

        def update(stage: str, done: int, total: int) -> None:
            elapsed = progress.tasks[task].elapsed or 0.0
            rate = f"{done / elapsed:.1f} {unit}/s" if elapsed > 0 and done else ""
            progress.update(task, completed=done, total=total, rate=rate)

        yield update
