"""The single console through which everything below the CLI speaks to the user."""

from __future__ import annotations

import sys
import time
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


class EpochBar:
    """A transient bar for one training epoch: batches done, images/s, time left, running loss.

    Only on a terminal; elsewhere (CI, a log file, tests) it draws nothing, and the one line
    per epoch is the whole record.
    """

    def __init__(self, label: str, total: int) -> None:
        self.bar = None
        self.images = 0
        self.start = time.perf_counter()
        if not console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]} img/s | loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, speed="-", loss="-")

    def advance(self, images: int, loss: float) -> None:
        """One more batch of `images` images; `loss` is the epoch's running training loss."""
        if self.bar is None:
            return
        self.images += images
        speed = self.images / max(1e-9, time.perf_counter() - self.start)
        self.bar.update(self.task, advance=1, speed=f"{speed:.0f}", loss=f"{loss:.4f}")

    def close(self) -> None:
        """Remove the bar (the epoch's line follows)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
