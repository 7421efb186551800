"""What the model gets wrong, from the out-of-fold predictions: per-class scores against class
frequency, the most confused pairs, the top-loss images, and the suggestions they lead to.

Multiclass runs get everything; multilabel runs get the per-label table, precision-recall curves
and top-loss images (no confusion matrix: labels are not exclusive); regression runs get the
top-error images only.

Rules for suggestions (documented in docs/diagnosis.md):
- rare classes doing worse: a class is rare when it has fewer than RARE_RATIO (0.5) x the median
  class count; when the rare classes' mean F1 is more than RARE_F1_GAP (0.05) below the other
  classes', suggest focal loss, class-weighted cross-entropy, oversampling, more augmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medalist.advice import step
from medalist.errors import UserError
from medalist.plots import (
    plot_confusion_matrix,
    plot_image_grid,
    plot_per_class,
    plot_pr_curves,
)

if TYPE_CHECKING:
    from medalist.tasks.base import AnalysisPage
    from medalist.tasks.classify import ClassifyTask

RARE_RATIO = 0.5
RARE_F1_GAP = 0.05
THRESHOLDS = {"rare_ratio": RARE_RATIO, "rare_f1_gap": RARE_F1_GAP}
N_WORST = 16
THUMBNAIL = 128


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


def _thumbnail(path: Path | None, channels: int) -> np.ndarray | None:

    if path is None:
        return None
    try:
        from medalist.data.images import eight_bit, open_image

        with open_image(path) as img:
            img = eight_bit(img).convert("L" if channels == 1 else "RGB")
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            arr = np.asarray(img)
    except (OSError, UserError):  # missing or unreadable: no thumbnail
        return None
    return arr[:, :, None] if arr.ndim == 2 else arr


def classify_error_analysis(task: ClassifyTask, page: AnalysisPage) -> None:
    """Per-class scores, precision-recall curves, the confusion matrix, the confused pairs and
    the highest-loss images of a classification run's OOF rows."""
    kind, classes, thresholds = task.kind, list(task.classes), task.thresholds or None
    cfg, oof, plot, table = page.cfg, page.oof, page.plot, page.table
    y, p = oof_arrays(oof, kind, classes)
    if kind in ("multiclass", "multilabel"):
        onehot = np.eye(len(classes), dtype=int)[y] if kind == "multiclass" else y.astype(int)
        per_class = per_class_table(y, p, kind, classes, thresholds)
        table("per_class.csv", per_class)
        plot("per_class.png", plot_per_class, per_class)
        plot("pr_curves.png", plot_pr_curves, onehot, p, classes)
        page.suggestions[:0] = rare_class_suggestions(per_class, kind, cfg.train.loss)
    else:
        page.skipped["per-class and precision-recall plots"] = f"{kind}: there are no classes"
    if kind == "multiclass":
        plot("confusion_matrix.png", plot_confusion_matrix, y, p.argmax(axis=1), classes)
        table("confused_pairs.csv", confused_pairs(y, p, classes))
    else:
        page.skipped["confusion matrix and confused pairs"] = (
            f"{kind}: {'labels are not exclusive' if kind == 'multilabel' else 'no classes'}"
        )
    worst = worst_predictions(oof, kind, classes, N_WORST, thresholds)
    table("worst_predictions.csv", worst)
    images = [
        _thumbnail(page.lookup.get(str(i)), cfg.image_channels) for i in worst["id"].astype(str)
    ]
    conf = [f" ({c:.2f})" if c == c else "" for c in worst["confidence"]]
    titles = [
        f"{i}\ntrue {t}\npred {pr}{c}"
        for i, t, pr, c in zip(worst["id"], worst["true"], worst["predicted"], conf, strict=True)
    ]
    wrong = worst["true"] != worst["predicted"]
    plot(
        "worst_predictions.png",
        plot_image_grid,
        images,
        titles,
        suptitle=f"highest-loss out-of-fold predictions ({len(oof)} rows, folds {page.folds})",
        colors=["tab:red" if w else "black" for w in wrong],
    )
