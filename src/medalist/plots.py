"""The plots of a run, drawn with matplotlib's Agg canvas (no pyplot, no global backend switch).

Every function takes the numbers to draw and a path, and writes one PNG atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.io import atomic_write

TRAIN_STYLE = {"linestyle": "--", "alpha": 0.9}


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_figure(fig: Any, path: Path) -> Path:
    """Write the figure as a PNG, atomically."""
    data = figure_png(fig)
    return atomic_write(path, lambda f: f.write(data), mode="wb")


def _mean_curve(histories: Mapping[int, pd.DataFrame], column: str) -> pd.Series:
    frames = [h.set_index("epoch")[column] for h in histories.values() if column in h]
    return pd.concat(frames, axis=1).mean(axis=1) if frames else pd.Series(dtype=float)


def plot_learning_curves(
    histories: Mapping[int, pd.DataFrame],
    metric: str | None,
    path: Path,
    higher_is_better: bool = True,
) -> Path:
    """Train and validation loss, and the metric, per fold (thin) and averaged (thick)."""
    fig = new_figure(12, 4.5)
    ax_loss, ax_metric = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(histories))]
    for color, (fold, h) in zip(colors, sorted(histories.items()), strict=True):
        ax_loss.plot(h["epoch"], h["train_loss"], color=color, lw=1, **TRAIN_STYLE)
        ax_loss.plot(h["epoch"], h["val_loss"], color=color, lw=1, label=f"fold {fold}")
        if metric and metric in h:
            ax_metric.plot(h["epoch"], h[metric], color=color, lw=1, label=f"fold {fold}")
            values = h[metric]
            if values.notna().any():
                best = values.idxmax() if higher_is_better else values.idxmin()
                ax_metric.plot(h.loc[best, "epoch"], values[best], "o", color=color, ms=5)
    if len(histories) > 1:
        for col, style in (("train_loss", TRAIN_STYLE), ("val_loss", {})):
            mean = _mean_curve(histories, col)
            ax_loss.plot(mean.index, mean.values, color="black", lw=2.5, **style)
        if metric:
            mean = _mean_curve(histories, metric)
            ax_metric.plot(mean.index, mean.values, color="black", lw=2.5, label="mean")
    ax_loss.plot([], [], color="gray", **TRAIN_STYLE, label="train (dashed)")
    ax_loss.plot([], [], color="gray", label="validation (solid)")
    if len(histories) > 1:
        ax_loss.plot([], [], color="black", lw=2.5, label="mean of folds")
    ax_loss.set(title="loss", xlabel="epoch", ylabel="loss")
    ax_metric.set(title=f"validation {metric or 'metric'} (dot: best epoch)", xlabel="epoch")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return save_figure(fig, path)


def plot_confusion_matrix(
    y: np.ndarray, pred: np.ndarray, classes: Sequence[Any], path: Path
) -> Path:
    """The confusion matrix, each row normalised by the true class count, classes named."""
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(classes)
    side = min(24.0, max(5.0, 0.5 * k + 3))
    fig = new_figure(side, side * 0.85)
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y,
        pred,
        labels=np.arange(k),
        display_labels=[str(c) for c in classes],
        normalize="true",
        include_values=k <= 25,
        values_format=".2f",
        cmap="Blues",
        xticks_rotation=45 if k > 6 else "horizontal",
        ax=ax,
        colorbar=True,
    )
    ax.set_title("confusion matrix (rows: true class, normalised)")
    return save_figure(fig, path)


def plot_pr_curves(y_onehot: np.ndarray, p: np.ndarray, classes: Sequence[Any], path: Path) -> Path:
    """One precision-recall curve per class (one-vs-rest), with its average precision."""
    from sklearn.metrics import PrecisionRecallDisplay

    fig = new_figure(8, 6)
    ax = fig.subplots()
    for j, c in enumerate(classes):
        if 0 < y_onehot[:, j].sum() < len(y_onehot):
            PrecisionRecallDisplay.from_predictions(
                y_onehot[:, j], p[:, j], name=str(c), ax=ax, curve_kwargs={"color": f"C{j % 10}"}
            )
    ax.set(
        title="precision-recall per class (one vs rest)",
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1.01),
        ylim=(0, 1.02),
    )
    ax.grid(alpha=0.3)
    if len(classes) > 15 and ax.get_legend() is not None:
        ax.get_legend().remove()
    elif ax.get_legend() is not None:
        ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)


def plot_per_class(table: pd.DataFrame, path: Path) -> Path:
    """Per-class F1 and recall against class frequency (rare classes on the left)."""
    fig = new_figure(8, 5)
    ax = fig.subplots()
    ax.scatter(table["count"], table["f1"], s=40, label="F1", zorder=3)
    ax.scatter(table["count"], table["recall"], s=15, marker="x", label="recall", zorder=3)
    for name, count, f1 in zip(table["class"], table["count"], table["f1"], strict=True):
        ax.annotate(str(name), (count, f1), fontsize=8, xytext=(4, 3), textcoords="offset points")
    ax.axhline(table["f1"].mean(), color="gray", ls=":", label=f"mean F1 {table['f1'].mean():.3f}")
    if table["count"].max() > 10 * max(1, table["count"].min()):
        ax.set_xscale("log")
    elif table["count"].nunique() <= 8:
        ax.set_xticks(sorted(table["count"].unique()))
    ax.set(
        title="per-class score against class frequency",
        xlabel="examples of the class (out-of-fold)",
        ylabel="score",
        ylim=(-0.03, 1.05),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray | None],
    titles: Sequence[str],
    path: Path,
    suptitle: str,
    colors: Sequence[str] | None = None,
) -> Path:
    """Images in a grid with a caption each; a None image is drawn as "image missing"."""
    n = max(1, len(images))
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig = new_figure(cols * 1.9, rows * 2.2 + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= len(images):
            continue
        img = images[i]
        if img is None:
            ax.text(0.5, 0.5, "image missing", ha="center", va="center", fontsize=8)
        elif img.ndim == 3 and img.shape[2] == 1:
            ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(
                img[:, :, :3] if img.ndim == 3 else img,
                cmap="gray" if img.ndim == 2 else None,
                interpolation="nearest",
            )
        color = colors[i] if colors else "black"
        ax.set_title(titles[i], fontsize=8, color=color)
    fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path)


def compare_curves_png(runs: Mapping[str, Mapping[int, pd.DataFrame]], metric: str | None) -> bytes:
    """Validation loss and metric averaged over folds, one line per run, overlaid (PNG bytes)."""
    fig = new_figure(12, 4.5)
    ax_loss, ax_metric = fig.subplots(1, 2)
    for i, (name, histories) in enumerate(runs.items()):
        color = f"C{i % 10}"
        for col, style in (("train_loss", TRAIN_STYLE), ("val_loss", {})):
            mean = _mean_curve(histories, col)
            label = name if col == "val_loss" else None
            ax_loss.plot(mean.index, mean.values, color=color, lw=1.8, label=label, **style)
        if metric:
            mean = _mean_curve(histories, metric)
            ax_metric.plot(mean.index, mean.values, color=color, lw=1.8, label=name)
    ax_loss.set(title="loss, mean of folds (dashed: train)", xlabel="epoch")
    ax_metric.set(title=f"validation {metric or 'metric'}, mean of folds", xlabel="epoch")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return figure_png(fig)
