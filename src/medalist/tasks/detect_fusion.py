"""Box arrays: padding, the input's scale, drawing, and weighted boxes fusion of several
predictions of the same images.

A prediction is an (n, K, 6) float32 array per image set: x1 y1 x2 y2 score class in the
input's pixels, NaN rows after the image's boxes. `ensemble_boxes.weighted_boxes_fusion` wants
coordinates normalised to [0, 1] and stops the process (`exit()`) on malformed input, so
`fuse_image` checks and clips before it calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medalist.errors import UserError
from medalist.tasks.detect_metrics import unpad

if TYPE_CHECKING:
    from medalist.config.schema import Config


def pad_boxes(rows: Sequence[np.ndarray], width: int, columns: int = 6) -> np.ndarray:
    """Per-image (k, columns) arrays as one (n, width, columns) float32 array, NaN-padded; an
    image with more than `width` boxes keeps its first `width`."""
    out = np.full((len(rows), width, columns), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        r = np.asarray(r, dtype=np.float32).reshape(-1, columns)[:width]
        out[i, : len(r)] = r
    return out


def detection_rows(out: Sequence[dict[str, Any]], k: int, offset: int) -> Any:
    """torchvision's detections (a dict per image) as an (N, k, 6) NaN-padded tensor of x1 y1
    x2 y2 score class (`offset`: the detector's index of the first class)."""
    import torch

    rows = torch.full((len(out), k, 6), float("nan"))
    for i, d in enumerate(out):
        n = min(k, len(d["boxes"]))
        rows[i, :n, :4] = d["boxes"][:n].float().cpu()
        rows[i, :n, 4] = d["scores"][:n].float().cpu()
        rows[i, :n, 5] = (d["labels"][:n] - offset).float().cpu()
    return rows


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
    if min(w) == 0:  # a weight of 0 leaves the prediction out (WBF would divide by 0)
        preds, w = [p for p, v in zip(preds, w, strict=True) if v > 0], [v for v in w if v > 0]
        if len(preds) == 1:
            return preds[0]
    n, k = preds[0].shape[:2]
    if any(p.shape[0] != n for p in preds):
        raise ValueError("predictions of different image sets can't be fused")
    fused = [fuse_image([p[i] for p in preds], w, shape, iou_thr, skip_box_thr) for i in range(n)]
    return pad_boxes(fused, max(p.shape[1] for p in preds))


def input_scales(cfg: Config, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """(n, 2) x and y factors from each image's pixels to the input's (the letterbox keeps one
    factor; a stretch has two)."""
    h, w = cfg.image_shape
    width, height = np.asarray(width, float), np.asarray(height, float)
    if cfg.keep_aspect:
        s = np.minimum(h / height, w / width)
        return np.stack([s, s], axis=1)
    return np.stack([w / width, h / height], axis=1)


def draw_boxes(picture: np.ndarray, boxes: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """Rectangles of the rows of `boxes` (x1 y1 x2 y2 ..., NaN rows skipped) on a copy."""
    import cv2

    pic = np.repeat(picture[:, :, :1], 3, axis=2) if picture.shape[2] == 1 else picture.copy()
    pic = np.ascontiguousarray(pic)
    for b in boxes[~np.isnan(boxes[:, 0])] if len(boxes) else []:
        x1, y1, x2, y2 = (int(round(v)) for v in b[:4])
        cv2.rectangle(pic, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, 1)
    return pic


def box_transform(augment: list[dict[str, Any]], shape: tuple[int, int], *, train: bool) -> Any:
    """`data.augment`'s steps (train only) with the boxes moved along (a box mostly cut away
    is dropped, the rest clipped), `LongestMaxSize` and `PadIfNeeded` back to the input
    (height, width) `shape`, then a uint8 tensor."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    from medalist.data.dataset import create_transform

    steps = list(create_transform(augment, train=train).transforms)[:-1]  # without ToTensor
    h, w = shape
    fit = [
        A.LongestMaxSize(max_size_hw=(h, w), p=1.0),
        A.PadIfNeeded(h, w, position="top_left", border_mode=0, fill=0, p=1.0),
    ]
    params = A.BboxParams(
        format="pascal_voc", label_fields=["labels"], min_visibility=0.3, clip=True
    )
    return A.Compose([*steps, *fit, ToTensorV2()], bbox_params=params, seed=0)


def transform_boxes(
    transform: Any, image: np.ndarray, target: np.ndarray | None
) -> tuple[Any, Any]:
    """The augmented image and its (M, 5) boxes, padded again to the target's rows."""
    import torch

    if target is None:
        out = transform(image=image, bboxes=np.zeros((0, 4)), labels=[])
        return out["image"], torch.tensor(0)
    boxes = target[~np.isnan(target[:, 0])]
    out = transform(image=image, bboxes=boxes[:, :4], labels=boxes[:, 4].tolist())
    moved = np.concatenate(
        [np.asarray(out["bboxes"]).reshape(-1, 4), np.asarray(out["labels"]).reshape(-1, 1)],
        axis=1,
    )
    return out["image"], torch.from_numpy(pad_boxes([moved], len(target), 5)[0])


def save_boxes(path: Path, preds: np.ndarray) -> None:
    """(n, K, 6) padded boxes as a compact .npz: all rows one after another, and the counts."""
    from medalist.io import atomic_write

    rows = unpad(preds)
    boxes = np.concatenate(rows or [np.zeros((0, 6))]).astype(np.float32)
    counts = np.array([len(r) for r in rows], dtype=np.int32)
    atomic_write(path, lambda f: np.savez_compressed(f, boxes=boxes, counts=counts), "wb")


def load_boxes(path: Path, width: int) -> np.ndarray:
    """The padded boxes `save_boxes` wrote, at least `width` rows per image."""
    with np.load(path) as z:
        boxes, counts = z["boxes"], z["counts"]
    parts = np.split(boxes, np.cumsum(counts)[:-1]) if len(counts) else []
    return pad_boxes(parts, max(width, int(counts.max(initial=1))))
