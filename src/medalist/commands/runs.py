"""`medalist runs`: the ledger of every run of a project (commit, backbone, CV, folds done)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.commands._format import fmt
from medalist.errors import UserError


@app.command()
def runs(
    project: Annotated[Path, typer.Option(help="project folder")] = Path("."),
    csv: Annotated[bool, typer.Option("--csv", help="print the table as CSV")] = False,
    trials: Annotated[
        bool, typer.Option("--trials", help="list the runs `medalist tune` made too")
    ] = False,
) -> None:
    """List every run of the project: commit, backbone, CV mean +- std, folds done."""
    import pandas as pd
    from rich.table import Table

    from medalist.console import console
    from medalist.runs.rundir import ledger

    if not project.is_dir():
        raise UserError(
            f"--project {project}: no such folder; give the project folder (with runs/)"
        )
    table = ledger(project)
    hidden = 0 if trials else int((table["trial"] != "").sum())
    if hidden:
        table = table[table["trial"] == ""]
    if csv:
        sys.stdout.write(table.to_csv(index=False))
        return
    if table.empty and not hidden:
        console.print(f"no runs under {project / 'runs'}")
        return
    out = Table(title=f"runs in {project.resolve().name}")
    columns = ["name", "date", "commit", "dirty", "backbone", "epochs", "CV", "seeds", "folds"]
    for col in columns + (["trial"] if trials else []):
        out.add_column(col)
    for r in table.itertuples():
        has_cv = r.cv_mean is not None and r.cv_mean == r.cv_mean
        cv = f"{r.metric} {fmt(r.cv_mean)} +- {fmt(r.cv_std)}" if has_cv else "-"
        seeds = str(r.seeds) + (f" (sd {fmt(r.seed_std)})" if r.seeds > 1 else "")
        out.add_row(
            r.name,
            r.date,
            r.commit or "-",
            str(r.dirty),
            r.backbone,
            "-" if pd.isna(r.epochs) else str(r.epochs),
            cv,
            seeds,
            r.folds_done,
            *([r.trial or "-"] if trials else []),
        )
    console.print(out)
    if hidden:
        console.print(f"{hidden} tune trial run(s) not shown: `medalist runs --trials` lists them")
