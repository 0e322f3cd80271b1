"""The one look of graceful's progress bars (rich): description, bar, count, elapsed, left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["progress_bar"]


def progress_bar(*, disable: bool = False, console: Console | None = None) -> Progress:
    """A rich :class:`~rich.progress.Progress` with graceful's columns; use it as a context.

    Args:
        disable: show nothing (the tasks are still tracked).
        console: where to draw; ``None``: rich's global console (standard output).

    Example:
        >>> import io
        >>> console = Console(file=io.StringIO(), width=60)
        >>> with progress_bar(console=console) as bar:
        ...     task = bar.add_task("epoch 1/1", total=2)
        ...     bar.advance(task, 2)
        >>> "epoch 1/1" in console.file.getvalue()
        True
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=disable,
        console=console,
    )
