"""`medalist demo`: a competition built from scikit-learn's digits, run end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.logs import quiet_libraries


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where to build the demo project")] = Path(
        "medalist-demo"
    ),
) -> None:
    """Build a competition from scikit-learn's digits and run it end to end."""
    quiet_libraries()
    from medalist.workflows.demo import run_demo

    run_demo(out)
