"""`medalist labels RUN`: the training rows whose given label the run's out-of-fold predictions
confidently contradict (confident learning, `medalist.analysis.labels`), written to
`analysis/label_issues.csv`, drawn in `plots/label_issues.png` and on the page
`analysis/label_issues.html` (each image beside its given and suggested label).

A row's out-of-fold prediction comes from a model that never saw it, which is what lets a
confident disagreement point at the label rather than at memorisation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import write_csv, write_text
from medalist.runs import layout
from medalist.runs.rundir import RunDir, open_run_dir
from medalist.tasks import label_issues as cl
from medalist.tasks import load_run_task

ISSUES_CSV = "analysis/label_issues.csv"
ISSUES_PAGE = "analysis/label_issues.html"
ISSUES_PLOT = "plots/label_issues.png"


@dataclass
class LabelReport:
    """What `medalist labels` found in one run."""

    run: RunDir
    noun: str  # what is suspect: labels or masks
    examined: int  # rows, (row, label) pairs, images or (image, class) pairs
    unit: str
    table: pd.DataFrame  # the flagged ones, most suspicious first
    method: str
    thresholds: dict[str, float] = field(default_factory=dict)
    csv: Path | None = None
    plot: Path | None = None
    page: Path | None = None
    drawn: pd.DataFrame = field(default_factory=pd.DataFrame)  # the rows on the page


def find_label_issues(
    run_dir: str | Path,
    *,
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
    show: int = 32,
) -> LabelReport:
    """Rank a finished run's suspect labels and write the table, the plot and the page."""
    if filter_by not in cl.FILTERS:
        raise UserError(f"--filter-by {filter_by!r}: use one of {', '.join(cl.FILTERS)}")
    if rank_by not in cl.RANKINGS:
        raise UserError(f"--rank-by {rank_by!r}: use one of {', '.join(cl.RANKINGS)}")
    if show < 0:
        raise UserError(f"--show {show}: give 0 or more images to draw")
    run = open_run_dir(run_dir)
    if not run.has_task():
        raise UserError(f"{run.path}: no {layout.TASK}; the run never started training")
    cfg = run.config()
    task = load_run_task(run, cfg)
    found = task.find_label_issues(run.path, cfg, filter_by, rank_by)
    report = LabelReport(
        run, found.noun, found.examined, found.unit, found.table, found.method, found.thresholds
    )
    report.csv = write_csv(run.file(ISSUES_CSV), report.table)
    report.drawn = report.table.head(show)
    images = task.draw_label_issues(run.path, cfg, found, report.drawn)
    if len(report.drawn):
        report.plot = _plot(run, report, images, task.label_issue_captions(report.drawn))
    else:  # a plot left by an earlier look would show rows that are no longer suspect
        run.file(ISSUES_PLOT).unlink(missing_ok=True)
    report.page = _page(run, report, images)
    return report


# ---- pictures -------------------------------------------------------------------------------
def _plot(
    run: RunDir, report: LabelReport, images: list[np.ndarray | None], captions: list[str]
) -> Path:
    from medalist.plots import plot_image_grid

    return plot_image_grid(
        images,
        captions,
        run.file(ISSUES_PLOT),
        suptitle=f"{len(report.table)} suspect {report.noun} of {report.examined} {report.unit}, "
        f"most suspicious first ({report.method})",
    )


def _png_uri(image: np.ndarray) -> str:
    from PIL import Image

    from medalist.analysis.report import png_data_uri

    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format="PNG")
    return png_data_uri(buf.getvalue())


def _page(run: RunDir, report: LabelReport, images: list[np.ndarray | None]) -> Path:
    """A self-contained HTML page: every drawn row with its image (a data URI) and labels."""
    from datetime import datetime

    import jinja2

    from medalist.analysis.report import fmt

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medalist.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    rows = report.drawn
    columns = [c for c in rows.columns if c != "score"]
    cards = [
        {
            "image": _png_uri(img) if img is not None else None,
            "cells": [(c, fmt(v, 3)) for c, v in zip(columns, row, strict=True)],
        }
        for img, row in zip(images, rows[columns].itertuples(index=False), strict=True)
    ]
    html = env.get_template("label_issues.html.j2").render(
        run=run.name,
        noun=report.noun,
        suspected=len(report.table),
        examined=report.examined,
        unit=report.unit,
        method=report.method,
        thresholds=[(k, fmt(v, 3)) for k, v in report.thresholds.items()],
        cards=cards,
        csv=ISSUES_CSV,
        generated=datetime.now().strftime("%Y-%m-%d %H:%M"),
    )
    return write_text(run.file(ISSUES_PAGE), html)
