"""Post-processing of predictions on video frames (neighbouring frames predict
alike, so a moving average over them removes flicker).

`smooth_sequences` replaces each frame's prediction by a filter of the `window` frames centred
on it within its own sequence (ordered by frame number; fewer at the ends): their mean, their
Gaussian-weighted mean (sigma = window / 4, so the window spans about 2 sigma each side), or
their median (which keeps a sharp change and drops a one-frame outlier; probability rows are
scaled back to sum to 1). Sequences never mix, and the row order of the input is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FILTERS = ("mean", "gaussian", "median")  # predict.smooth_filter


def smooth_sequences(
    preds: np.ndarray,
    sequences: np.ndarray,
    frames: np.ndarray,
    window: int,
    kind: str = "mean",
) -> np.ndarray:
    """`preds` rows filtered (`kind`: one of FILTERS) over `window` centred frames of the same
    sequence."""
    preds = np.asarray(preds, dtype=np.float64)
    if window <= 1 or len(preds) == 0:
        return preds
    flat = preds.reshape(len(preds), -1)
    sequences = np.asarray(sequences, dtype=object)
    order = np.lexsort((np.asarray(frames, dtype=np.float64), pd.factorize(sequences)[0]))
    table = pd.DataFrame(flat[order])
    keys = pd.Series(sequences[order]).astype(str).to_numpy()
    groups = table.groupby(keys, sort=False)
    if kind == "gaussian":  # pandas' weighted windows don't take a groupby: one sequence each
        rolled = pd.concat(
            [
                g.rolling(window, center=True, min_periods=1, win_type="gaussian").mean(
                    std=window / 4
                )
                for _, g in groups
            ]
        )
        rolled = rolled.sort_index().to_numpy()
    else:
        windows = groups.rolling(window, center=True, min_periods=1)
        filtered = windows.median() if kind == "median" else windows.mean()
        rolled = filtered.reset_index(level=0, drop=True).sort_index().to_numpy()
    if kind == "median" and flat.shape[1] > 1 and np.allclose(flat.sum(axis=1), 1.0):
        rolled = rolled / np.maximum(rolled.sum(axis=1, keepdims=True), 1e-12)
    out = np.empty_like(flat)
    out[order] = rolled
    return out.reshape(preds.shape)
