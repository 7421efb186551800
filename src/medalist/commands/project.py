"""`medalist new`: a project folder and a baseline config inferred from the competition data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.errors import UserError


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="the project folder to create")],
    data: Annotated[
        Path | None, typer.Option("--data", help="the competition's data folder")
    ] = None,
    competition: Annotated[
        str | None, typer.Option(help="or a Kaggle competition: its data downloaded into data/")
    ] = None,
    layout: Annotated[
        str, typer.Option(help="script (src/, scripts/) | notebook | hybrid (both)")
    ] = "script",
    train_csv: Annotated[
        str | None,
        typer.Option(
            "--train-csv",
            help="the training table in the data folder, when it is not train.csv or a name "
            "like train_labels.csv, trainLabels.csv or labels.csv",
        ),
    ] = None,
) -> None:
    """Make a project folder and a baseline config inferred from the data."""
    from medalist.console import console
    from medalist.workflows.scaffold import create_project, render_report

    if (data is None) == (competition is None):
        raise UserError("give --data DATA_DIR or --competition SLUG (one of them)")
    if competition is not None:
        from medalist.kaggle.download import create_competition_project

        console.print(
            f"downloading {competition} from Kaggle into {dest / 'data'} ...", markup=False
        )
        report = create_competition_project(dest, competition, layout=layout, train_csv=train_csv)
    else:
        report = create_project(dest, data, layout=layout, train_csv=train_csv)
    console.print(render_report(report), markup=False)
