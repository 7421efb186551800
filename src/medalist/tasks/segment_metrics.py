"""Mask metrics: `y_true` is (n, H, W) (or (n, C, H, W)) of 0/1, `y_pred` probabilities."""

from __future__ import annotations

import numpy as np


def per_image_scores(
    y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5, kind: str = "dice"
) -> np.ndarray:
    """Dice or IoU of each image's mask at `threshold`; 1 when both masks are empty."""
    scores = np.empty(len(y_true), dtype=np.float64)
    for start in range(0, len(y_true), 256):  # chunks bound the boolean copies' memory
        t = y_true[start : start + 256].reshape(len(y_true[start : start + 256]), -1) > 0
        p = y_pred[start : start + 256].reshape(len(t), -1) >= threshold
        scores[start : start + len(t)] = overlap_scores(t, p, kind)
    return scores


def overlap_scores(t: np.ndarray, p: np.ndarray, kind: str) -> np.ndarray:
    """Dice or IoU of each row of two boolean (n, pixels) arrays; 1 when both rows are empty."""
    inter = np.logical_and(t, p).sum(axis=1).astype(np.float64)
    sums = t.sum(axis=1) + p.sum(axis=1).astype(np.float64)
    if kind == "dice":
        return np.where(sums > 0, 2 * inter / np.maximum(sums, 1), 1.0)
    union = sums - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


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


METRICS = {"dice": (mean_dice, True), "iou": (mean_iou, True)}
