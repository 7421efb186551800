"""After training: `medalist ensemble` (combine runs), `medalist smooth` (video frames)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.commands._format import fmt


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
            f"{fmt(np.mean(folds))} +- {fmt(np.std(folds))}",
            f"{result.weights[member]:.3f}",
        )
    console.print(table)
    eq = result.equal_folds
    console.print(f"equal weights:        {fmt(np.mean(eq))} +- {fmt(np.std(eq))}")
    if result.method == "fit":
        console.print(
            f"fitted, in-sample:    {fmt(result.in_sample)}  (weights chosen on the rows they "
            "score: optimistic)"
        )
    console.print(
        f"[bold]ensemble CV:          {fmt(result.mean)} +- {fmt(result.std)}[/]  "
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


@app.command()
def smooth(
    run: Annotated[str, typer.Argument(help="a finished run (dir or name)")],
    windows: Annotated[
        str, typer.Option(help="odd window sizes in frames, comma-separated")
    ] = "1,3,5,9,15",
    project: Annotated[Path, typer.Option("--project", help="project folder")] = Path("."),
) -> None:
    """Video frames: does a moving average, Gaussian or median filter of the predictions over
    frames (for detection: boosting the boxes neighbouring frames confirm) beat the CV's
    noise?"""
    from rich.table import Table

    from medalist.commands.validation import _resolve_run
    from medalist.console import console
    from medalist.errors import UserError
    from medalist.workflows.smooth import evaluate_smoothing

    try:
        sizes = [int(w) for w in windows.split(",") if w.strip()]
    except ValueError:
        raise UserError(f"--windows {windows!r}: give odd numbers, e.g. 1,3,5,9") from None
    result = evaluate_smoothing(_resolve_run(run, project), sizes)
    table = Table(title=f"{result.run.name}: {result.metric} of the OOF rows smoothed over frames")
    for col in ("filter", "window", "CV mean +- std", "vs no smoothing", "verdict", "per fold"):
        table.add_column(col)
    for r in result.filters.itertuples():
        diff = "-" if r.window == 1 else f"{r.mean_diff:+.4f} (p {r.p_value:.3g})"
        table.add_row(
            r.filter, str(r.window), f"{fmt(r.mean)} +- {fmt(r.std)}", diff, r.verdict, r.folds
        )
    console.print(table)
    if result.best > 1:
        kind = "" if result.best_filter == "mean" else f" --smooth-filter {result.best_filter}"
        console.print(
            f"best window beyond noise: {result.best} frames, {result.best_filter} (chosen on "
            f"these OOF rows, so slightly optimistic); apply it: medalist predict "
            f"{result.run.path} --smooth {result.best}{kind}"
        )
    else:
        console.print("no window beats the CV's noise: leave the predictions unsmoothed")
    console.print(f"plot: {result.plot}")
