"""A run's folds (and seed repeats) merged into its oof.csv and scores.json.

With several seeds the out-of-fold predictions are the seeds' average, `folds` holds each fold's
score averaged over seeds, and `seed_scores` the CV mean of each seed alone (seed noise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medalist.config import Config
from medalist.io import read_ids_csv, read_json, write_csv, write_json
from medalist.runs import layout
from medalist.runs.rundir import RunDir
from medalist.tasks.base import Task


def merge_folds(
    run: RunDir, n_splits: int, metric_name: str, higher_is_better: bool, seed_index: int = 0
) -> dict[str, Any] | None:
    """The OOF table and scores of one seed's finished folds; None until every fold is done."""
    dirs = [run.fold_dir(k, seed_index) for k in range(n_splits)]
    if not all((d / layout.RESULT).is_file() for d in dirs):
        return None
    results = [read_json(d / layout.RESULT) for d in dirs]
    oof = pd.concat([read_ids_csv(d / layout.FOLD_OOF) for d in dirs])
    scores = [float(r["score"]) for r in results]
    summary = {
        "metric": metric_name,
        "higher_is_better": higher_is_better,
        "folds": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "best_epochs": [int(r["best_epoch"]) for r in results],
        "seconds": float(sum(r["seconds"] for r in results)),
    }
    return {"oof": oof, "scores": summary}


def write_merged(run: RunDir, oof: pd.DataFrame, scores: dict[str, Any]) -> None:
    write_csv(run.file(layout.OOF), oof)
    write_json(run.file(layout.SCORES), scores)


def run_seeds(cfg: Config) -> list[int]:
    """The seeds of a run: train.seed, then one more for each repeat (folds stay fixed)."""
    return [cfg.train.seed + i for i in range(cfg.train.seeds)]


def finish_run(cfg: Config, run: RunDir, task: Task) -> dict[str, Any] | None:
    """Merge the folds (and seeds) into oof.csv and scores.json once every fold is done.

    With several seeds the out-of-fold predictions are the seeds' average, `folds` holds each
    fold's score averaged over seeds, and `seed_scores` the CV mean of each seed alone.
    """
    metric = task.metric
    per_seed = []
    for index in range(cfg.train.seeds):
        merged = merge_folds(run, cfg.cv.n_splits, metric.name, metric.higher_is_better, index)
        if merged is None:
            return None
        per_seed.append(merged)
    scores = dict(per_seed[0]["scores"])
    oof = per_seed[0]["oof"].sort_values("id", kind="stable").reset_index(drop=True)
    if len(per_seed) > 1:
        cols = task.pred_columns
        stacked = [m["oof"].sort_values("id", kind="stable")[cols].to_numpy() for m in per_seed]
        oof[cols] = np.mean(stacked, axis=0)
        fold_scores = np.mean([m["scores"]["folds"] for m in per_seed], axis=0)
        seed_scores = [m["scores"]["mean"] for m in per_seed]
        scores.update(
            folds=fold_scores.tolist(),
            mean=float(fold_scores.mean()),
            std=float(fold_scores.std()),
            seed_scores=seed_scores,
            seed_mean=float(np.mean(seed_scores)),
            seed_std=float(np.std(seed_scores)),
            seconds=float(sum(m["scores"]["seconds"] for m in per_seed)),
        )
    # The task scores the merged table (segmentation reads each fold's masks beside it) and
    # fits its post-processing, which task.json keeps for predict.
    scores.update(task.finish_oof(oof, run.seed_fold_dirs(cfg.cv.n_splits, cfg.train.seeds)))
    write_json(run.file(layout.TASK), task.state())
    if cfg.competition.submission_by is not None:
        scores["by_group"] = group_cv(cfg, task, oof)
    scores["seeds"] = run_seeds(cfg)
    write_merged(run, oof, scores)
    return scores


def group_cv(cfg: Config, task: Task, oof: pd.DataFrame) -> dict[str, Any]:
    """The CV as the submission is scored when it has a row per group of images
    (`competition.submission_by`): each fold's out-of-fold images combined per group, as
    predict combines the test images, then scored; and how many groups span several folds
    (their images were trained on while a sibling was scored: group folds prevent it)."""
    from medalist.data.submission_rows import group_keys
    from medalist.data.tables import load_train

    comp = cfg.competition
    train = load_train(cfg)
    keys = group_keys(train, comp.submission_by, str(cfg.path(comp.train_csv)))
    by_id = dict(zip(train[comp.id_column].astype(str), keys, strict=True))
    oof_keys = oof["id"].astype(str).map(by_id).reset_index(drop=True)
    y, preds = task.preds_from_oof(oof)
    folds = oof["fold"].to_numpy()
    reduce = comp.submission_reduce  # (the config takes submission_by for classification only)
    per_fold = [
        task.score_groups(oof_keys[folds == k].reset_index(drop=True), y[folds == k],
                          preds[folds == k], reduce)
        for k in sorted(set(folds.tolist()))
    ]  # fmt: skip
    spans = pd.DataFrame({"key": oof_keys, "fold": folds}).groupby("key")["fold"].nunique()
    return {
        "by": comp.submission_by,
        "reduce": reduce,
        "groups": int(len(spans)),
        "folds": per_fold,
        "mean": float(np.mean(per_fold)),
        "std": float(np.std(per_fold)),
        "oof": task.score_groups(oof_keys, y, preds, reduce),
        "groups_in_several_folds": int((spans > 1).sum()),
    }
