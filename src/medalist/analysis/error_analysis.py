"""What the model gets wrong, from the out-of-fold predictions: per-class scores against class
frequency, the most confused pairs, the top-loss images, and the suggestions they lead to.

Multiclass runs get everything; multilabel runs get the per-label table, precision-recall curves
and top-loss images (no confusion matrix: labels are not exclusive); regression runs get the
top-error images only.

Rules for suggestions (documented in docs/diagnosis.md):
- rare classes doing worse: a class is rare when it has fewer than RARE_RATIO (0.5) x the median
  class count; when the rare classes' mean F1 is more than RARE_F1_GAP (0.05) below the other
  classes', suggest focal loss, class-weighted cross-entropy, oversampling, more augmentation.
- fine detail lost: when the training images are at least DOWNSCALE_FACTOR (2x) larger than
  data.image_size, suggest a larger input size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.analysis.diagnosis import step

RARE_RATIO = 0.5
RARE_F1_GAP = 0.05
DOWNSCALE_FACTOR = 2.0
THRESHOLDS = {
    "rare_ratio": RARE_RATIO,
    "rare_f1_gap": RARE_F1_GAP,
    "downscale_factor": DOWNSCALE_FACTOR,
}


def load_oof(run_dir: Path, folds: list[int]) -> pd.DataFrame | None:
    """The out-of-fold predictions of the finished folds (oof.csv once the run is complete)."""
    merged = run_dir / "oof.csv"
    if merged.is_file():
        return pd.read_csv(merged)
    parts = [run_dir / f"fold_{k}" / "oof.csv" for k in folds]
    parts = [p for p in parts if p.is_file()]
    return pd.concat([pd.read_csv(p) for p in parts], ignore_index=True) if parts else None


def oof_arrays(oof: pd.DataFrame, kind: str, classes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(targets, predictions) in the task's representation, from the OOF table's columns."""
    if kind == "multiclass":
        return oof["target"].to_numpy(dtype=np.int64), oof[[f"pred_{c}" for c in classes]].to_numpy(
            dtype=np.float64
        )
    if kind == "multilabel":
        y = oof[[f"target_{c}" for c in classes]].to_numpy(dtype=np.float64)
        return y, oof[[f"pred_{c}" for c in classes]].to_numpy(dtype=np.float64)
    return oof["target"].to_numpy(dtype=np.float64), oof["pred"].to_numpy(dtype=np.float64)


def per_class_table(
    y: np.ndarray,
    p: np.ndarray,
    kind: str,
    classes: list[Any],
    thresholds: list[float] | None = None,
) -> pd.DataFrame:
    """Per class (or label): count, frequency, precision, recall, F1, average precision.

    Multilabel predictions are cut at the run's fitted per-label `thresholds` (else 0.5)."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support

    k = len(classes)
    if kind == "multiclass":
        onehot = np.eye(k, dtype=int)[y]
        pred = p.argmax(axis=1)
        prec, rec, f1, _ = precision_recall_fscore_support(
            y, pred, labels=np.arange(k), zero_division=0
        )
    else:
        onehot = y.astype(int)
        prec, rec, f1, _ = precision_recall_fscore_support(
            onehot, (p >= _cuts(thresholds, k)).astype(int), zero_division=0
        )
    counts = onehot.sum(axis=0)
    ap = [
        float(average_precision_score(onehot[:, j], p[:, j])) if 0 < counts[j] < len(y) else np.nan
        for j in range(k)
    ]
    return pd.DataFrame(
        {
            "class": [str(c) for c in classes],
            "count": counts.astype(int),
            "frequency": counts / max(len(y), 1),
            "precision": prec,
            "recall": rec,
            "f1": f1,
            "average_precision": ap,
        }
    )


def confused_pairs(y: np.ndarray, p: np.ndarray, classes: list[Any]) -> pd.DataFrame:
    """Off-diagonal (true, predicted) pairs, most frequent first, with their share of the true."""
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    cm = confusion_matrix(y, p.argmax(axis=1), labels=np.arange(k))
    totals = cm.sum(axis=1)
    rows = [
        {
            "true": str(classes[i]),
            "predicted": str(classes[j]),
            "count": int(cm[i, j]),
            "share_of_true": float(cm[i, j] / totals[i]) if totals[i] else 0.0,
        }
        for i in range(k)
        for j in range(k)
        if i != j and cm[i, j] > 0
    ]
    df = pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true"])
    return df.sort_values(["count", "share_of_true"], ascending=False).reset_index(drop=True)


def _cuts(thresholds: list[float] | None, k: int) -> np.ndarray:
    return np.asarray(thresholds if thresholds and len(thresholds) == k else [0.5] * k)


def _label_names(row: np.ndarray, classes: list[Any], cuts: np.ndarray) -> str:
    names = [str(c) for c, v, t in zip(classes, row, cuts, strict=True) if v >= t]
    return ",".join(names) or "(none)"


def worst_predictions(
    oof: pd.DataFrame,
    kind: str,
    classes: list[Any],
    n: int = 16,
    thresholds: list[float] | None = None,
) -> pd.DataFrame:
    """The `n` out-of-fold rows with the highest loss: id, fold, true, predicted, confidence."""
    y, p = oof_arrays(oof, kind, classes)
    eps = 1e-7
    if kind == "multiclass":
        loss = -np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0))
        pred = p.argmax(axis=1)
        true_s = [str(classes[i]) for i in y]
        pred_s = [str(classes[i]) for i in pred]
        conf = p.max(axis=1)
    elif kind == "multilabel":
        q = np.clip(p, eps, 1 - eps)
        loss = -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean(axis=1)
        cuts = _cuts(thresholds, len(classes))
        true_s = [_label_names(r, classes, np.full(len(classes), 0.5)) for r in y]
        pred_s = [_label_names(r, classes, cuts) for r in p]
        conf = np.abs(p - 0.5).mean(axis=1) * 2  # how sure, 0 (all 0.5) to 1
    else:
        loss = np.abs(p - y)
        true_s = [f"{v:.4g}" for v in y]
        pred_s = [f"{v:.4g}" for v in p]
        conf = np.full(len(y), np.nan)
    df = pd.DataFrame(
        {
            "id": oof["id"].to_numpy(),
            "fold": oof["fold"].to_numpy(),
            "true": true_s,
            "predicted": pred_s,
            "confidence": conf,
            "loss": loss,
        }
    )
    return df.sort_values("loss", ascending=False).head(n).reset_index(drop=True)


def rare_class_suggestions(table: pd.DataFrame, kind: str, loss: str) -> list[dict[str, Any]]:
    """Focal loss, class weights, oversampling, augmentation, when rare classes do worse."""
    if len(table) < 2:
        return []
    median = float(table["count"].median())
    rare = table["count"] < RARE_RATIO * median
    if not rare.any() or rare.all():
        return []
    f1_rare, f1_rest = float(table.loc[rare, "f1"].mean()), float(table.loc[~rare, "f1"].mean())
    if f1_rest - f1_rare <= RARE_F1_GAP:
        return []
    names = ", ".join(table.loc[rare, "class"].head(5))
    reason = (
        f"rare classes do worse: {names} (fewer than {RARE_RATIO:g}x the median count of "
        f"{median:g}) have mean F1 {f1_rare:.3f} against {f1_rest:.3f} for the others"
    )
    out = []
    if loss != "focal":
        out.append(step("focal loss: down-weights the easy, frequent examples", "train.loss=focal"))
    if kind == "multiclass" and loss != "weighted_ce":
        out.append(
            step(
                "class-weighted cross-entropy (weights 1/frequency)",
                "train.loss=weighted_ce",
            )
        )
    out.append(step("oversample the rare classes (repeat their rows in the training folds)"))
    out.append(step("more augmentation, so the rare classes' few images go further"))
    for s in out:
        s["reason"] = reason
    return out


def image_size_suggestion(
    paths: list[Path], image_size: int, sample: int = 20
) -> list[dict[str, Any]]:
    """A larger input when the images are much larger than what the model sees."""
    from PIL import Image

    sizes = []
    for p in paths[:sample]:
        try:
            with Image.open(p) as img:
                sizes.append(min(img.size))
        except OSError:
            continue
    if not sizes:
        return []
    typical = int(np.median(sizes))
    if typical < DOWNSCALE_FACTOR * image_size:
        return []
    bigger = min(typical, image_size * 2)
    s = step(
        "a larger input size keeps small objects and fine detail",
        f"data.image_size={bigger}",
    )
    s["reason"] = (
        f"the images are about {typical}px on their short side and the model sees "
        f"{image_size}px: detail {typical / image_size:.1f}x finer than that is lost"
    )
    return [s]
