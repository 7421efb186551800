"""Detection metrics on boxes per image.

Targets are (n, M, 5) arrays of x1 y1 x2 y2 class, predictions (n, K, 6) arrays of x1 y1 x2 y2
score class, each padded with NaN rows (`unpad` gives the boxes of each image).

- `map`, `map50`, `map75`: COCO mean average precision (over IoU 0.5:0.95, at 0.5, at 0.75)
  by torchmetrics' `MeanAveragePrecision` (the faster-coco-eval backend when installed).
- `wheat_ap` (Global Wheat): the mean over images of TP / (TP + FP + FN), averaged over IoU
  thresholds 0.5:0.05:0.75, counting the boxes at or above a score threshold. An image with
  no true box and no predicted box scores 1.
- `fbeta_iou` (the Great Barrier Reef's F2): TP, FP and FN pooled over the images at each IoU
  threshold 0.3:0.05:0.8, the F-beta (beta 2) of each, averaged.

A threshold metric called with two arguments scores at the best score threshold on its grid
(a fold's score); the run fits one threshold on the pooled out-of-fold boxes
(`best_threshold`), which predict uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

SCORE_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
WHEAT_IOUS = np.round(np.arange(0.5, 0.751, 0.05), 2)
REEF_IOUS = np.round(np.arange(0.3, 0.801, 0.05), 2)
THRESHOLD_METRICS = ("wheat_ap", "fbeta_iou")


def unpad(a: np.ndarray) -> list[np.ndarray]:
    """The boxes of each image of a NaN-padded (n, K, c) array."""
    return [row[~np.isnan(row[:, 0])] for row in np.asarray(a, dtype=np.float64)]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of x1 y1 x2 y2 boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def match_counts(gt: np.ndarray, pred: np.ndarray, ious: np.ndarray) -> np.ndarray:
    """(len(ious), 3) TP, FP, FN of one image: predictions by descending score each take the
    unmatched true box of their class with the highest IoU at or above the threshold."""
    out = np.zeros((len(ious), 3), dtype=np.int64)
    pred = pred[np.argsort(-pred[:, 4], kind="stable")]
    overlap = iou_matrix(pred[:, :4], gt[:, :4])
    if len(pred) and len(gt):
        overlap[pred[:, 5][:, None] != gt[:, 4][None, :]] = 0.0
    for t, thr in enumerate(ious):
        free = np.ones(len(gt), dtype=bool)
        tp = 0
        for i in range(len(pred)):
            cand = np.where(free, overlap[i], -1.0) if len(gt) else np.zeros(0)
            j = int(cand.argmax()) if len(cand) else -1
            if j >= 0 and cand[j] >= thr:
                free[j] = False
                tp += 1
        out[t] = (tp, len(pred) - tp, len(gt) - tp)
    return out


def boxes_memorised(y: np.ndarray, preds: np.ndarray, score: float) -> bool:
    """Whether the predictions at or above `score` match every true box of every image at IoU
    0.5, with no false box."""
    counts = _counts(y, preds, score, np.array([0.5]))
    return all(c[0, 1] == 0 and c[0, 2] == 0 for c in counts)


def _counts(
    y: np.ndarray, preds: np.ndarray, threshold: float, ious: np.ndarray
) -> list[np.ndarray]:
    """Per image, (len(ious), 3) TP FP FN of the predictions at or above `threshold`."""
    return [
        match_counts(g, p[p[:, 4] >= threshold], ious)
        for g, p in zip(unpad(y), unpad(preds), strict=True)
    ]


def wheat_image_scores(y: np.ndarray, preds: np.ndarray, threshold: float) -> np.ndarray:
    """Each image's TP / (TP + FP + FN) averaged over IoU 0.5:0.05:0.75 (1 when both empty)."""
    scores = []
    for c in _counts(y, preds, threshold, WHEAT_IOUS):
        total = c.sum(axis=1)
        scores.append(float(np.mean(np.where(total > 0, c[:, 0] / np.maximum(total, 1), 1.0))))
    return np.array(scores)


def wheat_at(y: np.ndarray, preds: np.ndarray, threshold: float) -> float:
    """Global Wheat's score of the boxes at or above `threshold`."""
    return float(wheat_image_scores(y, preds, threshold).mean())


def fbeta_at(y: np.ndarray, preds: np.ndarray, threshold: float, beta: float = 2.0) -> float:
    """The F-beta of pooled TP, FP, FN at each IoU 0.3:0.05:0.8, averaged."""
    c = np.sum(_counts(y, preds, threshold, REEF_IOUS), axis=0)  # (ious, 3)
    tp, fp, fn = c[:, 0].astype(float), c[:, 1], c[:, 2]
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return float(np.mean(np.where(denom > 0, (1 + b2) * tp / np.maximum(denom, 1e-12), 1.0)))


AT_THRESHOLD: dict[str, Callable[[np.ndarray, np.ndarray, float], float]] = {
    "wheat_ap": wheat_at,
    "fbeta_iou": fbeta_at,
}


def best_threshold(name: str, y: np.ndarray, preds: np.ndarray) -> tuple[float, float]:
    """(score threshold, score) of a threshold metric's best threshold on the grid (ties to the
    one nearest 0.5)."""
    fn = AT_THRESHOLD[name]
    scores = np.array([fn(y, preds, float(t)) for t in SCORE_GRID])
    best = int(np.lexsort((-np.abs(SCORE_GRID - 0.5), scores))[-1])
    return float(SCORE_GRID[best]), float(scores[best])


def coco_summary(
    y: np.ndarray, preds: np.ndarray, scales: np.ndarray | None = None
) -> dict[str, object]:
    """torchmetrics' COCO summary: map, map_50, map_75, map_small/medium/large, map_per_class,
    classes. `scales` (n,) divides each image's boxes first, so object sizes are counted in
    the image's own pixels."""
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    try:
        import faster_coco_eval  # noqa: F401

        backend = "faster_coco_eval"
    except ImportError:
        backend = "pycocotools"
    metric = MeanAveragePrecision(iou_type="bbox", class_metrics=True, backend=backend)
    s = np.ones(len(y)) if scales is None else np.asarray(scales, dtype=np.float64)
    targets, detections = [], []
    for g, p, k in zip(unpad(y), unpad(preds), s, strict=True):
        targets.append(
            dict(boxes=torch.tensor(g[:, :4] / k).float(), labels=torch.tensor(g[:, 4]).long())
        )
        detections.append(
            dict(
                boxes=torch.tensor(p[:, :4] / k).float(),
                scores=torch.tensor(p[:, 4]).float(),
                labels=torch.tensor(p[:, 5]).long(),
            )
        )
    metric.update(detections, targets)
    out = metric.compute()
    return {k: v.numpy() if v.ndim else float(v) for k, v in out.items()}


def _coco_value(key: str, y: np.ndarray, preds: np.ndarray) -> float:
    if not any(len(g) for g in unpad(y)):
        return 0.0  # no true box in these images: COCO's AP is undefined
    return max(0.0, float(coco_summary(y, preds)[key]))


def _map_key(key: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """COCO's `key` as a metric function (a partial, so DDP's spawned processes can pickle it)."""
    return functools.partial(_coco_value, key)


def _best_value(name: str, y: np.ndarray, preds: np.ndarray) -> float:
    return best_threshold(name, y, preds)[1]


def _best(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """A threshold metric at its best score threshold (a picklable partial)."""
    return functools.partial(_best_value, name)


METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    "map": (_map_key("map"), True),
    "map50": (_map_key("map_50"), True),
    "map75": (_map_key("map_75"), True),
    "wheat_ap": (_best("wheat_ap"), True),
    "fbeta_iou": (_best("fbeta_iou"), True),
}
