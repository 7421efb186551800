"""The single console through which everything below the CLI speaks to the user."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (logs, CI, tests) gets room for a wide table instead of rich's 80 columns.
_width = None if sys.stdout.isatty() else 160
console = Console(highlight=False, soft_wrap=True, width=_width)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_width)
