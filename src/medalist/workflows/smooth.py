"""`medalist smooth RUN`: does a filter over video frames improve the CV, and by how much?

For each of the task's filters (`Task.smooth_filters`: a moving average, Gaussian window or
median of arrays, `medalist.tasks.postprocess`; detection's boost of the boxes neighbouring
frames confirm, `medalist.tasks.detect_temporal`) and window the run's out-of-fold predictions
are smoothed within each sequence by the task (`Task.smooth_frames`) and scored per fold; each
is judged against no smoothing with `medalist compare`'s rule on the paired per-fold
differences. The best window that beats noise is recommended; `medalist predict RUN --smooth
W [--smooth-filter F]` and `medalist package RUN --smooth W [--smooth-filter F]` apply it to
the test set. Choosing the window on the OOF rows is itself a (small) fit: the printout says
so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import read_ids_csv, write_csv
from medalist.runs import layout
from medalist.runs.rundir import RunDir, open_run_dir
from medalist.tasks.detect_temporal import BOOST_FILTERS
from medalist.tasks.postprocess import FILTERS

if TYPE_CHECKING:
    from medalist.tasks.base import Task

DEFAULT_WINDOWS = (1, 3, 5, 9, 15)


@dataclass
class SmoothingResult:
    run: RunDir
    metric: str
    table: (
        pd.DataFrame
    )  # the task's first filter: window, mean, std, mean_diff, p_value, verdict, folds
    best: int
    plot: Path
    filters: pd.DataFrame | None = None  # every filter's rows, with a `filter` column
    best_filter: str = "mean"


def sequence_info(cfg: Any, ids: pd.Series, table: pd.DataFrame, what: str) -> tuple:
    """(sequences, frames) for `ids` from `table`, which must hold the sequence columns."""
    comp = cfg.competition
    seq, frame = comp.sequence_column, comp.frame_column
    if seq is None or frame is None:
        raise UserError(
            "smoothing needs video frames: set competition.sequence_column and "
            "competition.frame_column in the config"
        )
    missing = [c for c in (seq, frame) if c not in table.columns]
    if missing:
        raise UserError(
            f"the {what} table has no column {missing[0]!r} (competition."
            f"{'sequence' if missing[0] == seq else 'frame'}_column): smoothing needs it"
        )
    by_id = table.assign(_id=table[comp.id_column].astype(str)).set_index("_id")
    keys = ids.astype(str)
    absent = ~keys.isin(by_id.index)
    if absent.any():
        raise UserError(f"id {keys[absent].iloc[0]!r} is not in the {what} table")
    rows = by_id.loc[keys]
    return rows[seq].to_numpy(), pd.to_numeric(rows[frame]).to_numpy()


def check_filter(kind: str, task: Task | None = None, option: str = "--smooth-filter") -> str:
    """`kind` when it is one of the filters (of `task`, when given), else a UserError naming
    those that fit."""
    every = (*FILTERS, *BOOST_FILTERS)
    if kind not in every:
        raise UserError(f"{option} {kind!r}: use one of {', '.join(every)}")
    if task is not None and kind not in task.smooth_filters:
        raise UserError(
            f"{option} {kind!r} is not a filter of a {task.name} run; use "
            f"{' or '.join(task.smooth_filters)}"
        )
    return kind


def use_filter(cfg: Any, kind: str | None) -> None:
    """The test predictions are smoothed with `kind` (None: the config's own filter)."""
    if kind is not None:
        cfg.predict.smooth_filter = check_filter(kind)


def smooth_test_predictions(
    cfg: Any, task: Task, ids: pd.Series, test: pd.DataFrame, preds: Any, window: int
) -> Any:
    """Test predictions filtered by the task over `window` frames of their sequences (1:
    unchanged) with `predict.smooth_filter` (None: the task's first filter)."""
    if window <= 1:
        return preds
    kind = check_filter(cfg.predict.smooth_filter or task.smooth_filters[0], task)
    seqs, frames = sequence_info(cfg, ids, test, "test")
    return task.smooth_frames(preds, seqs, frames, window, kind)


def refit_after_smoothing(run: RunDir, cfg: Any, task: Task, window: int) -> str | None:
    """Fit `task`'s post-processing (a detection score threshold; segmentation or multilabel
    thresholds and minimum areas) again on the run's out-of-fold predictions smoothed over
    `window` frames with `predict.smooth_filter`, as the test predictions are: smoothing moves
    the scores those were fitted on (the boost raises confirmed boxes). `task` is changed in
    place. Returns a line saying what moved, or None (window 1, or nothing moved)."""
    from medalist.data.tables import load_train

    if window <= 1:
        return None
    before = task.state()
    kept = "post-processing kept as fitted on unsmoothed predictions"
    if not run.file(layout.OOF).is_file():
        return f"{kept}: run {run.name} has no oof.csv yet"
    oof = read_ids_csv(run.file(layout.OOF))
    seqs, frames = sequence_info(cfg, oof["id"], load_train(cfg), "train")
    try:
        y, preds = task.preds_from_oof(oof, run.seed_fold_dirs(cfg.cv.n_splits, cfg.train.seeds))
    except UserError as e:  # an ensemble of detectors keeps no out-of-fold boxes of its own
        return f"{kept} ({e})"
    kind = check_filter(cfg.predict.smooth_filter or task.smooth_filters[0], task)
    task.fit_postprocess(
        y, task.smooth_frames(preds, seqs, frames, window, kind), oof["fold"].to_numpy()
    )
    after = task.state()
    shown = [k for k in after if not (k == "threshold" and "thresholds" in after)]
    moved = [f"{k} {before.get(k)} -> {after[k]}" for k in shown if before.get(k) != after[k]]
    if not moved:
        return None
    return (
        f"post-processing refitted on the out-of-fold predictions smoothed as the test set is "
        f"({kind}, {window} frames): {'; '.join(moved)}"
    )


def evaluate_smoothing(
    run_path: str | Path, windows: list[int] | tuple[int, ...] = DEFAULT_WINDOWS
) -> SmoothingResult:
    """Score the run's OOF rows smoothed over each window; see the module's doc."""
    from medalist.data.tables import load_train
    from medalist.noise import judge, paired_test
    from medalist.tasks import load_run_task

    bad = [w for w in windows if w < 1 or w % 2 == 0]
    if bad:
        raise UserError(f"--windows: {bad[0]} is not an odd number of frames >= 1 (1, 3, 5, ...)")
    windows = sorted(set(windows) | {1})
    run = open_run_dir(run_path)
    cfg = run.config()
    if not run.file(layout.OOF).is_file():
        raise UserError(
            f"run {run.name} has no oof.csv: finish it first (medalist train --resume {run.path})"
        )
    task = load_run_task(run, cfg)
    oof = read_ids_csv(run.file(layout.OOF))
    seqs, frames = sequence_info(cfg, oof["id"], load_train(cfg), "train")
    y, preds = task.preds_from_oof(oof, run.seed_fold_dirs(cfg.cv.n_splits, cfg.train.seeds))
    folds = oof["fold"].to_numpy()
    hib = task.metric.higher_is_better
    sign = 1.0 if hib else -1.0

    def per_fold(p: np.ndarray) -> list[float]:
        return [float(task.score(y[folds == k], p[folds == k])) for k in np.unique(folds)]

    base = per_fold(preds)
    seed_std = (run.scores() or {}).get("seed_std")
    rows = []
    first, *others = task.smooth_filters
    for kind, w in [(first, w) for w in windows] + [
        (k, w) for k in others for w in windows if w > 1
    ]:
        scores = per_fold(task.smooth_frames(preds, seqs, frames, w, kind))
        if w == 1:
            mean_diff, p_value, verdict = 0.0, float("nan"), "baseline"
        else:
            diffs = sign * (np.array(scores) - np.array(base))
            mean_diff, _, p_value = paired_test(diffs)
            verdict, _ = judge(mean_diff, p_value, seed_std)
        rows.append(
            {
                "filter": kind if w > 1 else "none",
                "window": w,
                "mean": float(np.mean(scores)),
                "std": float(np.std(scores)),
                "mean_diff": mean_diff,
                "p_value": p_value,
                "verdict": verdict,
                "folds": " ".join(f"{s:.4f}" for s in scores),
            }
        )
    every = pd.DataFrame(rows)
    table = every[every["filter"].isin(["none", first])].drop(columns="filter")
    better = every[every["verdict"] == "better"]
    best, best_filter = 1, first
    if len(better):
        top = better.loc[better["mean_diff"].idxmax()]
        best, best_filter = int(top["window"]), str(top["filter"])
    write_csv(run.file("analysis/smoothing.csv"), every)
    plot = _plot(every, task.metric.name, run.file("plots/smoothing.png"))
    return SmoothingResult(run, task.metric.name, table, best, plot, every, best_filter)


def _plot(table: pd.DataFrame, metric: str, path: Path) -> Path:
    from medalist.plots import new_figure, save_figure

    fig = new_figure(6, 3.5)
    ax = fig.add_subplot()
    base = table[table["window"] == 1]
    for kind, rows in table[table["window"] > 1].groupby("filter", sort=False):
        rows = pd.concat([base, rows])
        ax.errorbar(
            rows["window"], rows["mean"], yerr=rows["std"], marker="o", capsize=3, label=kind
        )
    for _, r in table[table["verdict"] == "better"].iterrows():
        ax.annotate("better", (r["window"], r["mean"]), textcoords="offset points", xytext=(4, 6))
    if (table["window"] > 1).any():
        ax.legend(title="filter")
    ax.set_xlabel("window (frames)")
    ax.set_ylabel(f"CV {metric} (mean +- fold std)")
    ax.set_title("smoothing out-of-fold predictions over frames")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
