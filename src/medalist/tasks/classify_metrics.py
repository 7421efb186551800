"""Classification and regression metrics.

For single-label classification `y_true` holds class indices and `y_pred` class probabilities
(n, K); for multi-label both are (n, L) with `y_pred` probabilities; for regression both are (n,).
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def _labels(y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        return y_pred.argmax(axis=1)
    return (y_pred.reshape(-1) >= threshold).astype(int)


def _is_multilabel(y_true: np.ndarray) -> bool:
    return y_true.ndim == 2 and y_true.shape[1] > 1


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if _is_multilabel(y_true):
        return skm.accuracy_score(y_true.astype(int), (y_pred >= 0.5).astype(int))
    return skm.accuracy_score(y_true, _labels(y_pred))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if _is_multilabel(y_true):
        return skm.f1_score(
            y_true.astype(int), (y_pred >= 0.5).astype(int), average="macro", zero_division=0
        )
    return skm.f1_score(y_true, _labels(y_pred), average="macro", zero_division=0)


def roc_auc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if _is_multilabel(y_true):
        return skm.roc_auc_score(y_true, y_pred, average="macro")
    if y_pred.ndim == 2 and y_pred.shape[1] == 2:
        return skm.roc_auc_score(y_true, y_pred[:, 1])
    if y_pred.ndim == 2 and y_pred.shape[1] > 2:
        labels = np.arange(y_pred.shape[1])
        return skm.roc_auc_score(y_true, y_pred, multi_class="ovr", labels=labels)
    return skm.roc_auc_score(y_true, y_pred.reshape(-1))


def log_loss(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if _is_multilabel(y_true):
        p = np.clip(y_pred, 1e-15, 1 - 1e-15)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))
    labels = np.arange(y_pred.shape[1]) if y_pred.ndim == 2 else None
    return skm.log_loss(y_true, y_pred, labels=labels)


def qwk(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Quadratic weighted kappa; regression outputs are rounded to the nearest grade."""
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        pred = y_pred.argmax(axis=1)
    else:
        lo, hi = np.min(y_true), np.max(y_true)
        pred = np.clip(np.rint(y_pred.reshape(-1)), lo, hi)
    return skm.cohen_kappa_score(
        np.asarray(y_true).astype(int), pred.astype(int), weights="quadratic"
    )


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_error(y_true.reshape(-1), y_pred.reshape(-1))))


METRICS = {
    "accuracy": (accuracy, True),
    "f1": (f1_macro, True),
    "roc_auc": (roc_auc, True),
    "log_loss": (log_loss, False),
    "qwk": (qwk, True),
    "rmse": (rmse, False),
}
