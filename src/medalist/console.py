"""The single console through which everything below the CLI speaks to the user."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

# Piped output (logs, CI, tests) gets room for a wide table instead of rich's 80 columns.
_width = None if sys.stdout.isatty() else 160
console = Console(highlight=False, soft_wrap=True, width=_width)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_width)


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A transient progress bar; yields `advance(n)` to call as work is done."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
