"""`medalist folds`: the folds of a config, made once and saved under `<project>/folds/`, so
every run of the same cv settings uses the same split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medalist.config import Config
from medalist.console import console, err_console
from medalist.data.folds import (
    fold_summary,
    folds_file_name,
    make_folds,
    read_folds,
    render_fold_table,
    write_folds,
)


def folds_path(cfg: Config) -> Path:
    c = cfg.cv
    return (
        cfg.root
        / "folds"
        / folds_file_name(c.scheme, c.n_splits, c.seed, cfg.competition.group_column)
    )


def compute_folds(cfg: Config, train: pd.DataFrame) -> np.ndarray:
    """The fold of each training row, balancing what the task says stratified folds balance."""
    from medalist.tasks import task_class

    train, targets = task_class(cfg).fold_table(cfg, train)
    return make_folds(
        train,
        scheme=cfg.cv.scheme,
        n_splits=cfg.cv.n_splits,
        seed=cfg.cv.seed,
        target_columns=targets,
        group_column=cfg.competition.group_column,
        where=str(cfg.path(cfg.competition.train_csv)),
    )


def get_folds(cfg: Config, train: pd.DataFrame, *, save: bool = True) -> np.ndarray:
    """The saved folds for this cv setting, made (and saved, unless `save` is off) on first use."""
    path = folds_path(cfg)
    ids = train[cfg.competition.id_column]
    if path.is_file():
        return read_folds(path, ids, cfg.competition.id_column)
    folds = compute_folds(cfg, train)
    warn_split_sequences(cfg, train, folds)
    if save:
        write_folds(path, ids, folds)
    return folds


def warn_split_sequences(cfg: Config, train: pd.DataFrame, folds: np.ndarray) -> None:
    """Frames of one video in several folds: near-identical neighbours make the CV optimistic."""
    seq = cfg.competition.sequence_column
    if seq is None or seq not in train.columns:
        return
    spread = pd.Series(folds).groupby(train[seq].to_numpy()).nunique()
    split = int((spread > 1).sum())
    if split:
        err_console.print(
            f"[yellow]warning[/]: {split} of {len(spread)} sequences have frames in several "
            "folds; neighbouring frames are near copies, so the CV is optimistic. Keep each "
            f"sequence in one fold: cv.scheme=group competition.group_column={seq}"
        )


def run_folds(cfg: Config) -> tuple[Path, pd.DataFrame]:
    """`medalist folds`: write the folds file and return its per-fold summary."""
    from medalist.data.tables import load_train

    train = load_train(cfg)
    folds = compute_folds(cfg, train)
    warn_split_sequences(cfg, train, folds)
    path = folds_path(cfg)
    write_folds(path, train[cfg.competition.id_column], folds)
    targets = cfg.target_columns
    if cfg.competition.label_separator is not None:  # each label's share, not each combination's
        from medalist.tasks import task_class

        train, targets = task_class(cfg).fold_table(cfg, train)
    return path, fold_summary(train, folds, targets, cfg.competition.group_column)


def print_fold_table(summary: pd.DataFrame) -> None:
    console.print(render_fold_table(summary))
