"""Padded box arrays, and weighted boxes fusion of several predictions of the same images.

A prediction is an (n, K, 6) float32 array per image set: x1 y1 x2 y2 score class in the
input's pixels, NaN rows after the image's boxes. `ensemble_boxes.weighted_boxes_fusion` wants
coordinates normalised to [0, 1] and stops the process (`exit()`) on malformed input, so
`fuse_image` checks and clips before it calls it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medalist.errors import UserError


def pad_boxes(rows: Sequence[np.ndarray], width: int, columns: int = 6) -> np.ndarray:
    """Per-image (k, columns) arrays as one (n, width, columns) float32 array, NaN-padded; an
    image with more than `width` boxes keeps its first `width`."""
    out = np.full((len(rows), width, columns), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        r = np.asarray(r, dtype=np.float32).reshape(-1, columns)[:width]
        out[i, : len(r)] = r
    return out


def valid_rows(boxes: np.ndarray) -> np.ndarray:
    """The rows of one image's (k, 6) predictions that are finite boxes of positive size."""
    finite = np.isfinite(boxes).all(axis=1)
    return boxes[finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def fuse_image(
    parts: Sequence[np.ndarray],
    weights: Sequence[float],
    shape: tuple[int, int],
    iou_thr: float,
    skip_box_thr: float,
) -> np.ndarray:
    """One image's (k, 6) predictions from several models by weighted boxes fusion; `shape`
    (height, width) normalises the coordinates for `ensemble_boxes`."""
    from ensemble_boxes import weighted_boxes_fusion

    h, w = shape
    scale = np.array([w, h, w, h], dtype=np.float64)
    boxes, scores, labels, kept = [], [], [], []
    for p, wt in zip(parts, weights, strict=True):
        p = valid_rows(np.asarray(p, dtype=np.float64))
        boxes.append(np.clip(p[:, :4] / scale, 0.0, 1.0).tolist())
        scores.append(np.clip(p[:, 4], 0.0, 1.0).tolist())
        labels.append(p[:, 5].tolist())
        kept.append(float(wt))
    if not any(boxes):
        return np.zeros((0, 6), dtype=np.float32)
    b, s, lab = weighted_boxes_fusion(
        boxes, scores, labels, weights=kept, iou_thr=iou_thr, skip_box_thr=skip_box_thr
    )
    if not len(b):
        return np.zeros((0, 6), dtype=np.float32)
    out = np.concatenate(
        [np.asarray(b) * scale, np.asarray(s)[:, None], np.asarray(lab)[:, None]], 1
    )
    return out[np.argsort(-out[:, 4], kind="stable")].astype(np.float32)


def fuse(
    preds: Sequence[np.ndarray],
    weights: Sequence[float] | None,
    shape: tuple[int, int],
    iou_thr: float,
    skip_box_thr: float,
) -> np.ndarray:
    """Several (n, K, 6) predictions of the same images fused image by image; one prediction
    is returned as it is."""
    preds = [np.asarray(p, dtype=np.float32) for p in preds]
    if not preds:
        raise UserError("no fold weights to predict with")
    if len(preds) == 1:
        return preds[0]
    w = [1.0] * len(preds) if weights is None else [float(v) for v in weights]
    if len(w) != len(preds) or min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"weights {w} for {len(preds)} predictions")
    n, k = preds[0].shape[:2]
    if any(p.shape[0] != n for p in preds):
        raise ValueError("predictions of different image sets can't be fused")
    fused = [fuse_image([p[i] for p in preds], w, shape, iou_thr, skip_box_thr) for i in range(n)]
    return pad_boxes(fused, max(p.shape[1] for p in preds))
