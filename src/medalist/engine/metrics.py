"""Competition metrics by name, with their direction.

A metric takes `(y_true, y_pred)` in the task's representation: for single-label
classification `y_true` holds class indices and `y_pred` class probabilities (n, K); for
multi-label both are (n, L) with `y_pred` probabilities; for regression both are (n,); for
masks (`dice`, `iou`) `y_true` is (n, H, W) of 0/1 and `y_pred` (n, H, W) probabilities.
A competition's own metric is given as "module:function" and takes the same arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from medalist.errors import UserError

MetricFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    higher_is_better: bool

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(y_pred)))

    def better(self, a: float, b: float) -> bool:
        """True when score `a` beats score `b`."""
        return a > b if self.higher_is_better else a < b

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"


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


def per_image_scores(
    y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5, kind: str = "dice"
) -> np.ndarray:
    """Dice or IoU of each image's mask at `threshold`; 1 when both masks are empty."""
    scores = np.empty(len(y_true), dtype=np.float64)
    for start in range(0, len(y_true), 256):  # chunks bound the boolean copies' memory
        t = y_true[start : start + 256].reshape(len(y_true[start : start + 256]), -1) > 0
        p = y_pred[start : start + 256].reshape(len(t), -1) >= threshold
        inter = np.logical_and(t, p).sum(axis=1).astype(np.float64)
        sums = t.sum(axis=1) + p.sum(axis=1).astype(np.float64)
        if kind == "dice":
            s = np.where(sums > 0, 2 * inter / np.maximum(sums, 1), 1.0)
        else:
            union = sums - inter
            s = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        scores[start : start + len(t)] = s
    return scores


def _mask_pairs(a: np.ndarray) -> np.ndarray:
    """(n, C, H, W) masks as n*C single masks, one per image and class."""
    return a.reshape(-1, *a.shape[-2:]) if a.ndim == 4 else a


def mean_dice(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean Dice of masks thresholded at 0.5 over images (and classes, when (n, C, H, W));
    empty against empty scores 1."""
    return float(per_image_scores(_mask_pairs(y_true), _mask_pairs(y_pred), 0.5, "dice").mean())


def mean_iou(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean IoU (Jaccard) at 0.5 over images (and classes); empty against empty scores 1."""
    return float(per_image_scores(_mask_pairs(y_true), _mask_pairs(y_pred), 0.5, "iou").mean())


BUILTIN: dict[str, tuple[MetricFn, bool]] = {
    "accuracy": (accuracy, True),
    "f1": (f1_macro, True),
    "roc_auc": (roc_auc, True),
    "log_loss": (log_loss, False),
    "qwk": (qwk, True),
    "rmse": (rmse, False),
    "dice": (mean_dice, True),
    "iou": (mean_iou, True),
}


def get_metric(name: str, direction: str | None = None) -> Metric:
    """A built-in metric by name, or "module:function" with `direction` maximize|minimize."""
    if name in BUILTIN:
        fn, higher = BUILTIN[name]
        if direction is not None:
            higher = direction == "maximize"
        return Metric(name, fn, higher)
    if ":" not in name:
        raise UserError(
            f"competition.metric = {name!r}: unknown metric; use one of "
            f"{', '.join(BUILTIN)} or 'module:function' for your own"
        )
    module_name, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(
            f"competition.metric = {name!r}: cannot import it ({exc}); put the module on "
            "PYTHONPATH or in the project folder"
        ) from None
    if direction is None:
        direction = "maximize" if getattr(fn, "greater_is_better", True) else "minimize"
    return Metric(name, fn, direction == "maximize")
