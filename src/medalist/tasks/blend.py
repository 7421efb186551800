"""Blending several runs' predictions: the weighted average, and weights fitted on OOF rows.

Predictions are what `ClassifyTask.activate` gives: class probabilities (multiclass, binary),
per-label probabilities (multilabel) or values on the target's scale (regression). A blend is
their weighted average with non-negative weights that sum to 1, the same rule for the
out-of-fold rows, `medalist predict` and the offline Kaggle notebook.

Weights are fitted by minimising a smooth loss of the blend on out-of-fold rows (scipy's
SLSQP on the simplex): the cross-entropy for classes, the binary cross-entropy per label,
the squared error for a regression target. A step-shaped metric such as accuracy would give
the optimiser no slope; the competition metric is what the blend is then scored with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-7


def blend(preds: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of several runs' predictions (weights need not sum to 1)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(preds) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights {list(w)} for {len(preds)} predictions")
    return sum(wi * np.asarray(p, np.float64) for wi, p in zip(w / w.sum(), preds, strict=True))


def blend_loss(kind: str, y: np.ndarray, pred: np.ndarray) -> float:
    """The smooth loss the weights minimise: cross-entropy, binary cross-entropy or MSE."""
    if kind == "multiclass":
        p = np.clip(pred[np.arange(len(y)), np.asarray(y, np.int64)], EPS, 1.0)
        return float(-np.log(p).mean())
    if kind == "multilabel":
        p = np.clip(pred, EPS, 1.0 - EPS)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return float(np.mean((np.asarray(pred, np.float64) - y) ** 2))


def fit_weights(kind: str, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
    """Weights on the simplex that minimise `blend_loss` of the blend on these rows."""
    from scipy.optimize import minimize

    m = len(preds)
    if m == 1:
        return np.ones(1)
    stacked = np.stack([np.asarray(p, np.float64) for p in preds])

    def loss(w: np.ndarray) -> float:
        return blend_loss(kind, y, np.tensordot(np.clip(w, 0.0, None), stacked, axes=1))

    start = np.full(m, 1.0 / m)
    result = minimize(
        loss,
        start,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        options={"ftol": 1e-10, "maxiter": 200},
    )
    w = np.clip(result.x if np.isfinite(result.x).all() else start, 0.0, None)
    if loss(w / w.sum()) > loss(start):  # never worse than the equal blend on these rows
        w = start
    return w / w.sum()
