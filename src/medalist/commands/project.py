"""`medalist new`: a project folder and a baseline config inferred from the competition data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="the project folder to create")],
    data: Annotated[Path, typer.Option("--data", help="the competition's data folder")],
    layout: Annotated[
        str, typer.Option(help="script (src/, scripts/) | notebook | hybrid (both)")
    ] = "script",
) -> None:
    """Make a project folder and a baseline config inferred from the data."""
    from medalist.console import console
    from medalist.workflows.scaffold import create_project, render_report

    report = create_project(dest, data, layout=layout)
    console.print(render_report(report), markup=False)
