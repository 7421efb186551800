"""`medalist lr`: the learning-rate finder, before a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.logs import quiet_libraries


@app.command()
def lr(
    config: Annotated[Path, typer.Argument(help="config file")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value ...")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="where to save the curve (default: plots/lr_find.png)")
    ] = None,
) -> None:
    """Find a learning rate on fold 0: the loss curve as a plot and the suggestion.

    Use the number as train.lr, or set train.lr=auto to let each run find it.
    """
    quiet_libraries()
    from medalist.console import console
    from medalist.workflows.lr import lr_command

    result = lr_command(config, overrides or [], plot)
    console.print(f"suggested learning rate: {result.suggestion:.3g}")
    console.print(f"curve: {result.plot}")
    console.print(f"use it: medalist train {config} train.lr={result.suggestion:.3g}")
