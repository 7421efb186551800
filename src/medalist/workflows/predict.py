"""`medalist predict`: a run's (or an ensemble's) test predictions as a checked submission.

The work is `medalist.workflows.inference`'s, shared with the ensemble, the offline notebook and
`medalist package --check`; this module opens the run and writes `RUN/submission.csv`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.runs import layout
from medalist.runs.rundir import RunDir, open_run_dir
from medalist.tasks import load_run_task
from medalist.workflows.inference import (
    blend_members,
    make_submission,
    run_test_predictions,
    test_tables,
    write_submission,
)


@dataclass
class PredictResult:
    run: RunDir
    submission: pd.DataFrame
    path: Path
    preds: np.ndarray


def check_window(window: int, option: str = "--smooth") -> int:
    if window < 1 or window % 2 == 0:
        raise UserError(f"{option} {window}: give an odd number of frames (1 = off, 3, 5, ...)")
    return window


def ensemble_test_predictions(run: RunDir, tta: list[str] | None = None) -> np.ndarray:
    """Each member's fold-averaged test predictions, blended with the ensemble's weights."""
    spec = run.ensemble() or {}
    results = [run_test_predictions(member, tta=tta) for member in run.members()]
    return blend_members(results, spec["weights"], f"ensemble {run.name}")


def predict(
    run_path: str | Path,
    *,
    tta: list[str] | None = None,
    out: Path | None = None,
    smooth: int | None = None,
    smooth_filter: str | None = None,
) -> PredictResult:
    """Fold-averaged test predictions of a run (an ensemble: its members' blend), smoothed over
    video frames when `smooth` (else `predict.smooth_window`) is above 1, written as
    `RUN/submission.csv`."""
    from rich.markup import escape

    from medalist.console import console
    from medalist.workflows.smooth import check_filter, refit_after_smoothing, use_filter

    if smooth is not None:
        check_window(smooth)
    if smooth_filter is not None:
        check_filter(smooth_filter)
    run = open_run_dir(run_path)
    if smooth_filter is not None:  # before the test images are read
        check_filter(smooth_filter, load_run_task(run, run.config()))
    if run.ensemble() is not None:
        cfg = run.config()
        tables = test_tables(cfg)
        ids = tables.test[cfg.competition.id_column]
        preds = ensemble_test_predictions(run, tta=tta)
        task = load_run_task(run, cfg)
    else:
        result = run_test_predictions(run, tta=tta)
        cfg, task, tables, ids, preds = (
            result.cfg, result.task, result.tables, result.ids, result.preds
        )  # fmt: skip
    window = smooth if smooth is not None else cfg.predict.smooth_window
    use_filter(cfg, smooth_filter)
    note = refit_after_smoothing(run, cfg, task, window)
    if note:
        console.print(escape(note))
    preds, sub = make_submission(cfg, task, ids, tables.test, preds, tables.sample, window)
    path = write_submission(out or run.file(layout.SUBMISSION), sub)
    return PredictResult(run, sub, path, preds)
