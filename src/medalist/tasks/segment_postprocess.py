"""Post-processing of predicted masks, fitted on the pooled out-of-fold masks of a run.

Per class, after its probability threshold:
- `min_area`: connected components smaller than this many pixels (at the training size) are
  emptied (noise blobs);
- `min_total_area`: an image whose remaining mask is smaller than this is predicted empty (an
  image-level empty / non-empty decision, the usual trick for defect and cloud masks).

Each is chosen over a grid as the value with the best pooled score, then kept only when it beats
no post-processing beyond noise: the per-fold differences judged with `medalist compare`'s rule
(`medalist.noise`). A step that does not is set to 0 (off), so a run never ships a fit to noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medalist.noise import judge, paired_test

FRACTIONS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1)  # of the image's pixels


@dataclass
class ImageStats:
    """Per image, for every min_area candidate: the intersection with the truth and the
    predicted area after emptying smaller components; and the true area."""

    inter: np.ndarray  # (n, candidates)
    pred: np.ndarray  # (n, candidates)
    true: np.ndarray  # (n,)


def area_grid(pixels: int) -> list[int]:
    """0 (off) and a few fractions of the image, in pixels."""
    return sorted({0, *(max(1, round(f * pixels)) for f in FRACTIONS)})


def keep_components(binary: np.ndarray, min_area: int) -> np.ndarray:
    """`binary` without its connected components (8-connected) smaller than `min_area`."""
    import cv2

    if min_area <= 0 or not binary.any():
        return binary
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # the background
    return keep[labels]


def image_stats(
    truth: np.ndarray, binary: np.ndarray, candidates: list[int], valid: np.ndarray | None = None
) -> ImageStats:
    """The statistics of each image (n, H, W) for each min_area candidate; with `valid`
    (n, H, W), the components are found on the whole predicted mask but only valid pixels
    are counted (index masks' void pixels are scored for no class)."""
    n = len(truth)
    inter = np.zeros((n, len(candidates)))
    pred = np.zeros((n, len(candidates)))
    true = truth.reshape(n, -1).sum(axis=1).astype(np.float64)
    for i in range(n):
        t = truth[i] > 0
        for c, area in enumerate(candidates):
            kept = keep_components(binary[i], area)
            if valid is not None:
                kept = kept & valid[i]
            inter[i, c] = np.logical_and(t, kept).sum()
            pred[i, c] = kept.sum()
    return ImageStats(inter, pred, true)


def scores_of(inter: np.ndarray, pred: np.ndarray, true: np.ndarray, kind: str) -> np.ndarray:
    """Dice or IoU per image from its counts; empty against empty scores 1."""
    sums = pred + true
    if kind == "dice":
        return np.where(sums > 0, 2 * inter / np.maximum(sums, 1), 1.0)
    union = sums - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _verdict(scores: np.ndarray, base: np.ndarray, folds: np.ndarray) -> tuple[str, float, float]:
    """compare's verdict on per-fold mean differences of `scores` against `base`."""
    diffs = np.array([(scores[folds == k] - base[folds == k]).mean() for k in np.unique(folds)])
    mean_diff, _, p_value = paired_test(diffs)
    verdict, _ = judge(mean_diff, p_value, None)
    return verdict, float(mean_diff), float(p_value)


def fit_class(
    truth: np.ndarray,
    binary: np.ndarray,
    folds: np.ndarray,
    kind: str,
    steps: list[str],
    valid: np.ndarray | None = None,
) -> dict[str, float | str]:
    """min_area and min_total_area for one class, each kept only when it beats noise (`valid`:
    the scored pixels, see `image_stats`)."""
    pixels = int(np.prod(truth.shape[1:]))
    candidates = area_grid(pixels) if "min_area" in steps else [0]
    stats = image_stats(truth, binary, candidates, valid)
    by_area = scores_of(stats.inter, stats.pred, stats.true[:, None], kind)  # (n, candidates)
    base = by_area[:, 0]
    out: dict[str, float | str] = {"before": float(base.mean())}
    best = int(np.argmax(by_area.mean(axis=0)))  # ties to the smallest area (argmax: first)
    verdict, diff, p = _verdict(by_area[:, best], base, folds) if best else ("off", 0.0, 1.0)
    chosen = best if verdict == "better" else 0
    out.update(min_area=candidates[chosen], min_area_verdict=verdict, min_area_gain=diff)
    scores = by_area[:, chosen]
    inter, pred = stats.inter[:, chosen], stats.pred[:, chosen]
    totals = area_grid(pixels) if "min_total_area" in steps else [0]
    empty = scores_of(np.zeros_like(inter), np.zeros_like(pred), stats.true, kind)
    by_total = np.stack([np.where(pred < t, empty, scores) for t in totals], axis=1)
    best_t = int(np.argmax(by_total.mean(axis=0)))
    verdict_t, diff_t, _ = (
        _verdict(by_total[:, best_t], scores, folds) if best_t else ("off", 0.0, 1.0)
    )
    chosen_t = best_t if verdict_t == "better" else 0
    out.update(
        min_total_area=totals[chosen_t],
        min_total_area_verdict=verdict_t,
        min_total_area_gain=diff_t,
        after=float(by_total[:, chosen_t].mean()),
    )
    return out


def apply(prob: np.ndarray, threshold: float, min_area: int, min_total_area: int) -> np.ndarray:
    """A probability mask with its dropped components (and a too-small whole mask) zeroed;
    unchanged when both steps are off."""
    if min_area <= 0 and min_total_area <= 0:
        return prob
    kept = keep_components(prob >= threshold, min_area)
    if kept.sum() < min_total_area:
        return np.zeros_like(prob)
    return np.where(kept, prob, 0).astype(prob.dtype)


def apply_labels(
    label: np.ndarray, min_areas: list[int], min_total_areas: list[int], background: int = 0
) -> np.ndarray:
    """A class-index map (H, W) with, per class, its components smaller than its `min_areas`
    (and the whole class where what remains is under its `min_total_areas`) set to
    `background`; the same array when every step is off."""
    if not any(min_areas) and not any(min_total_areas):
        return label
    out = label.copy()
    for k, (area, total) in enumerate(zip(min_areas, min_total_areas, strict=True)):
        if k == background or (area <= 0 and total <= 0):
            continue
        on = label == k
        kept = keep_components(on, area)
        if kept.sum() < total:
            kept = np.zeros_like(on)
        out[on & ~kept] = background
    return out
