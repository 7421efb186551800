"""`medalist labels RUN`: the training labels a finished run's out-of-fold predictions
confidently contradict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app

TOP = 10


@app.command()
def labels(
    run: Annotated[Path, typer.Argument(help="a finished run directory (runs/<name>)")],
    filter_by: Annotated[
        str,
        typer.Option(
            help="which rows count as suspect: prune_by_noise_rate | prune_by_class | both | "
            "confident_learning"
        ),
    ] = "prune_by_noise_rate",
    rank_by: Annotated[
        str, typer.Option(help="order of the suspects: self_confidence | normalized_margin")
    ] = "self_confidence",
    show: Annotated[int, typer.Option(help="how many suspects to draw")] = 32,
) -> None:
    """Rank the training rows whose label the model confidently contradicts (confident learning).

    Writes RUN/analysis/label_issues.csv, RUN/plots/label_issues.png and
    RUN/analysis/label_issues.html. Segmentation runs: the images whose out-of-fold mask
    disagrees most with the given mask on the pixels the model is sure of.
    """
    from rich.table import Table

    from medalist.analysis.report import fmt
    from medalist.console import console
    from medalist.workflows.labels import find_label_issues

    report = find_label_issues(run, filter_by=filter_by, rank_by=rank_by, show=show)
    n, total = len(report.table), report.examined
    share = f" ({n / total:.1%})" if total else ""
    console.print(
        f"suspects [bold]{n}[/] of {total} {report.unit}{share} in run {report.run.name} "
        f"({report.method})"
    )
    if n:
        top = report.table.head(TOP).drop(columns=["score"], errors="ignore")
        out = Table(title=f"most suspicious {len(top)}")
        for col in top.columns:
            out.add_column(str(col))
        for row in top.itertuples(index=False):
            out.add_row(*[fmt(v, 3) for v in row])
        console.print(out)
    console.print(f"table: {report.csv}")
    if report.plot:
        console.print(f"thumbnails: {report.plot}")
    console.print(f"page: {report.page}")
    if n:
        console.print(
            "look at them first; to train without them: "
            f"medalist train CONFIG --exclude {report.csv}"
        )
