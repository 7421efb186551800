"""Detection runs blended by `medalist ensemble`: each run's pooled out-of-fold boxes read back
in its oof.csv's order, and run weights for weighted boxes fusion fitted on them.

The weights maximise the competition metric of the fused boxes (a threshold metric at its best
score threshold on those boxes, so the threshold is refitted for every candidate): a
coordinate search over each run's share on a 0.1 grid, the others keeping their proportions,
from equal weights, taking only strict improvements. A share of 0 leaves the run out of the
fusion, so each run alone is a candidate and the fitted blend is never worse than the best run
or the equal blend on the rows it was fitted on. WBF's result depends only on the weights'
ratios, so they are kept summing to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.runs import layout

if TYPE_CHECKING:
    from medalist.tasks.detect import DetectTask

SHARES = np.round(np.linspace(0.0, 1.0, 11), 2)  # a run's share tried at each step
PASSES = 3  # rounds over the runs; the search stops earlier once a round changes nothing


def pooled_oof(
    task: DetectTask, oof: pd.DataFrame, folds: list[list[Path]] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(true boxes, out-of-fold boxes, each fold's seeds fused) of `oof`'s rows, in its order."""
    from medalist.data.tables import load_train

    if folds is None:
        raise UserError(
            "this is a detection run: its out-of-fold predictions are boxes "
            "(fold_*/oof_boxes.npz), and this command works on classification runs only"
        )
    missing = next(
        (d for dirs in folds for d in dirs if not (d / layout.OOF_BOXES).is_file()), None
    )
    if missing is not None:
        raise UserError(
            f"{missing / layout.OOF_BOXES} is missing: an ensemble of detection runs keeps no "
            "boxes of its own (use its member runs), and a fold without it was not trained to "
            "the end (medalist train --resume)"
        )
    order, preds = task.oof_boxes(folds)
    train = load_train(task.cfg)
    ids = oof["id"].astype(str).tolist()
    row = {v: i for i, v in enumerate(train[task.id_column].astype(str))}
    where = {v: i for i, v in enumerate(order)}
    lost = next((v for v in ids if v not in where or v not in row), None)
    if lost is not None:
        raise UserError(
            f"image {lost!r} of {folds[0][0].parent / 'oof.csv'} has no out-of-fold boxes or no "
            "row in the training table: the run was trained on other data; train it again"
        )
    y = task.encode(train.iloc[[row[v] for v in ids]])
    return y, preds[[where[v] for v in ids]]


def fit_box_weights(task: DetectTask, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
    """Run weights (summing to 1) whose fused boxes score best on these images."""
    m = len(preds)
    if m == 1:
        return np.ones(1)
    sign = 1.0 if task.metric.higher_is_better else -1.0
    seen: dict[tuple[float, ...], float] = {}

    def value(w: np.ndarray) -> float:
        key = tuple(np.round(w, 6))
        if key not in seen:
            seen[key] = sign * float(task.score(y, task.combine(preds, w)))
        return seen[key]

    w = np.full(m, 1.0 / m)
    best = value(w)
    for _ in range(PASSES):
        moved = False
        for i in range(m):
            others = np.delete(w, i)
            rest = others / others.sum() if others.sum() > 0 else np.full(m - 1, 1 / (m - 1))
            for share in SHARES:
                cand = np.insert(rest * (1.0 - share), i, share)
                v = value(cand)
                if v > best + 1e-12:
                    best, w, moved = v, cand, True
        if not moved:
            break
    return w / w.sum()
