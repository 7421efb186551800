"""Blending segmentation runs: their out-of-fold probability masks, weighted, and the weights
that maximise the run's mask metric on the OOF rows.

A blend is the weighted mean of the members' probability masks (summed in float32, kept as
float16 like every mask prediction). The weights are the point of a simplex grid (step 0.1 for
two or three members, coarser for more) whose blend scores best with the competition metric
(mean Dice or IoU at 0.5, what the run's CV reports); ties go to the point nearest equal
weights. The metric is a mean over images, so each grid point is scored in chunks of images:
the members' masks are read (memory-mapped) a chunk at a time, never a float copy of all rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import read_ids_csv
from medalist.runs import layout

CHUNK = 64  # images scored at a time
MAX_POINTS = 120  # simplex grid points at most


def simplex_grid(members: int) -> np.ndarray:
    """Weights on the simplex (rows summing to 1), the finest step of 1/10, 1/5, 1/4, ... that
    keeps the grid at most MAX_POINTS points; equal weights are always one of them."""
    if members == 1:
        return np.ones((1, 1))
    for steps in (10, 6, 5, 4, 3, 2, 1):
        points = [
            c for c in itertools.product(range(steps + 1), repeat=members - 1) if sum(c) <= steps
        ]
        if len(points) <= MAX_POINTS:
            break
    grid = np.array([[*c, steps - sum(c)] for c in points], dtype=np.float64) / steps
    return np.vstack([grid, np.full((1, members), 1.0 / members)])


def weighted_masks(preds: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of probability masks (weights normalised), summed in float32."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(preds) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights {list(w)} for {len(preds)} predictions")
    w = w / w.sum()
    out = np.zeros(np.shape(preds[0]), dtype=np.float32)
    for wi, p in zip(w, preds, strict=True):
        if wi > 0:
            out += np.float32(wi) * np.asarray(p, dtype=np.float32)
    return out


def fit_mask_weights(score_rows: Any, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
    """The simplex grid point whose blend has the highest mean per-image score.

    `score_rows(y, p)` gives the (n, ...) per-image (and class) scores of masks `p`."""
    m = len(preds)
    if m == 1:
        return np.ones(1)
    grid = simplex_grid(m)
    total = np.zeros(len(grid))
    count = 0
    for start in range(0, len(y), CHUNK):
        rows = slice(start, start + CHUNK)
        chunk = [np.asarray(p[rows], dtype=np.float32) for p in preds]
        yc = y[rows]
        for g, w in enumerate(grid):
            s = score_rows(yc, weighted_masks(chunk, w))
            total[g] += float(np.sum(s))
        count += int(np.size(s))
    mean = total / max(count, 1)
    distance = -np.abs(grid - 1.0 / m).sum(axis=1)  # ties: nearest equal weights
    best = int(np.lexsort((distance, np.round(mean, 12)))[-1])
    return grid[best]


def read_oof_masks(
    oof: pd.DataFrame, folds: list[list[Path]], height_width: tuple[int, int], classes: int
) -> np.ndarray:
    """A run's out-of-fold probability masks (seeds averaged) in the rows of `oof` (its merged
    oof.csv), filled fold by fold from each fold's memory-mapped `oof_masks.npy` (`folds[k]`:
    fold k's folders, one per seed)."""
    where = {v: i for i, v in enumerate(oof["id"].astype(str))}
    shape = (len(oof), *([] if classes == 1 else [classes]), *height_width)
    out = np.empty(shape, dtype=np.float16)
    filled = np.zeros(len(oof), dtype=bool)
    for dirs in folds:
        missing = [d for d in dirs if not (d / layout.OOF_MASKS).is_file()]
        if missing:
            raise UserError(
                f"{missing[0] / layout.OOF_MASKS} is missing: the run's out-of-fold masks are "
                "needed here (an ensemble keeps none: give its member runs); restore the file "
                f"or train the run again"
            )
        ids = read_ids_csv(dirs[0] / layout.FOLD_OOF)["id"].astype(str)
        rows = np.array([where[i] for i in ids], dtype=np.int64)
        masks = [np.load(d / layout.OOF_MASKS, mmap_mode="r") for d in dirs]
        if masks[0].shape[1:] != shape[1:]:
            raise UserError(
                f"{dirs[0] / layout.OOF_MASKS} holds masks of shape {masks[0].shape[1:]}, not "
                f"{shape[1:]} as the run's config says: train the run again"
            )
        for start in range(0, len(rows), CHUNK):  # seeds averaged as the run's CV did
            part = slice(start, start + CHUNK)
            chunk = [np.asarray(m[part]) for m in masks]
            mean = chunk[0] if len(chunk) == 1 else np.mean(chunk, axis=0, dtype=np.float32)
            out[rows[part]] = mean.astype(np.float16)
        filled[rows] = True
    if not filled.all():
        raise UserError(
            f"{folds[0][0].parent}: oof.csv id {oof['id'].astype(str)[~filled].iloc[0]!r} is "
            "in no fold's oof.csv: train the run again"
        )
    return out
