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


def map_at_k(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Mean average precision at k (Kaggle's MAP@k): the classes ranked by probability, a row
    scoring 1/rank for its true class among the first k; multi-label rows average the precision
    at each true label found, over min(true labels, k)."""
    if y_pred.ndim != 2 or y_pred.shape[1] < 2:
        raise ValueError("map@k ranks classes: it needs class probabilities, not one value a row")
    top = np.argsort(-y_pred, axis=1, kind="stable")[:, :k]
    ranks = np.arange(1, top.shape[1] + 1)
    if _is_multilabel(y_true):
        hits = np.take_along_axis(y_true.astype(bool), top, axis=1)
        precision = np.cumsum(hits, axis=1) / ranks
        wanted = np.minimum(y_true.astype(bool).sum(axis=1), k)
        ap = (precision * hits).sum(axis=1) / np.maximum(wanted, 1)
        return float(ap.mean())
    hits = top == np.asarray(y_true).astype(int)[:, None]
    return float((hits / ranks).sum(axis=1).mean())


def partial_auc(y_true: np.ndarray, y_pred: np.ndarray, min_tpr: float) -> float:
    """The area under the ROC curve above a true-positive rate of `min_tpr` (ISIC 2024's
    pAUC above 80% TPR: 0 to 1 - min_tpr), from the positive class's probability; computed
    as Kaggle's metric does, by sklearn's partial AUC of the flipped problem, unstandardised."""
    score = y_pred[:, 1] if y_pred.ndim == 2 and y_pred.shape[1] == 2 else y_pred.reshape(-1)
    if y_pred.ndim == 2 and y_pred.shape[1] > 2:
        raise ValueError("partial AUC scores a binary target: two classes")
    max_fpr = 1.0 - min_tpr
    flipped = skm.roc_auc_score(1 - np.asarray(y_true).astype(int), -score, max_fpr=max_fpr)
    return float(0.5 * max_fpr**2 + (max_fpr - 0.5 * max_fpr**2) / 0.5 * (flipped - 0.5))


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
