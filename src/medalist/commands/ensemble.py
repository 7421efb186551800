"""Combining runs: `medalist ensemble`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.4f}"


@app.command()
def ensemble(
    runs: Annotated[list[str], typer.Argument(help="two or more finished runs (dirs or names)")],
    name: Annotated[str | None, typer.Option(help="name of the ensemble run")] = None,
    method: Annotated[
        str, typer.Option(help="fit: weights from the OOF rows; mean: equal weights")
    ] = "fit",
    project: Annotated[Path, typer.Option("--project", help="project folder")] = Path("."),
) -> None:
    """Blend finished runs: weights fitted on OOF rows, honest (nested) CV, a run to predict."""
    import numpy as np
    from rich.table import Table

    from medalist.commands.validation import _resolve_run
    from medalist.console import console
    from medalist.workflows.ensemble import make_ensemble

    result = make_ensemble([_resolve_run(r, project) for r in runs], name=name, method=method)
    table = Table(title=f"ensemble {result.run.name}: {result.metric} per run, from OOF rows")
    table.add_column("run")
    table.add_column("CV mean +- std")
    table.add_column("weight")
    for member, folds in result.member_folds.items():
        table.add_row(
            member,
            f"{_fmt(np.mean(folds))} +- {_fmt(np.std(folds))}",
            f"{result.weights[member]:.3f}",
        )
    console.print(table)
    eq = result.equal_folds
    console.print(f"equal weights:        {_fmt(np.mean(eq))} +- {_fmt(np.std(eq))}")
    if result.method == "fit":
        console.print(
            f"fitted, in-sample:    {_fmt(result.in_sample)}  (weights chosen on the rows they "
            "score: optimistic)"
        )
    console.print(
        f"[bold]ensemble CV:          {_fmt(result.mean)} +- {_fmt(result.std)}[/]  "
        + (
            "(honest: each fold scored with weights fitted on the other folds)"
            if result.method == "fit"
            else "(equal weights: nothing fitted)"
        )
    )
    console.print(
        f"against the best run ({result.best_member}): mean difference per fold "
        f"{result.mean_diff:+.4f}, [bold]{result.verdict}[/] ({'; '.join(result.reasons)})"
    )
    for note in result.notes:
        console.print(f"[yellow]note[/]: {note}")
    console.print(
        f"written: {result.run.path} (ensemble.json, oof.csv, scores.json); "
        f"next: medalist predict {result.run.path}, medalist package {result.run.path}"
    )
