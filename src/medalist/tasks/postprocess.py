"""Post-processing of predictions on video frames (neighbouring frames predict
alike, so a moving average over them removes flicker).

`smooth_sequences` replaces each frame's prediction by the mean of the `window` frames centred
on it within its own sequence (ordered by frame number; fewer at the ends). Sequences never
mix, and the row order of the input is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def smooth_sequences(
    preds: np.ndarray, sequences: np.ndarray, frames: np.ndarray, window: int
) -> np.ndarray:
    """Centred moving average of `preds` rows over `window` frames of the same sequence."""
    preds = np.asarray(preds, dtype=np.float64)
    if window <= 1 or len(preds) == 0:
        return preds
    flat = preds.reshape(len(preds), -1)
    sequences = np.asarray(sequences, dtype=object)
    order = np.lexsort((np.asarray(frames, dtype=np.float64), pd.factorize(sequences)[0]))
    table = pd.DataFrame(flat[order])
    keys = pd.Series(sequences[order]).astype(str).to_numpy()
    rolled = (
        table.groupby(keys, sort=False)
        .rolling(window, center=True, min_periods=1)
        .mean()
        .reset_index(level=0, drop=True)
        .sort_index()
        .to_numpy()
    )
    out = np.empty_like(flat)
    out[order] = rolled
    return out.reshape(preds.shape)
