"""The error-analysis page of a segmentation run: its lowest-scoring out-of-fold images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from medalist.io import read_ids_csv
from medalist.plots import plot_image_grid
from medalist.runs import layout

if TYPE_CHECKING:
    from medalist.tasks.base import AnalysisPage
    from medalist.tasks.segment import SegmentTask

N_WORST = 16


def mask_error_analysis(task: SegmentTask, page: AnalysisPage) -> None:
    """The lowest-scoring images, drawn with the true mask in green and the prediction in red
    (overlap yellow)."""
    from medalist.data.images import load_resized

    cfg, oof, lookup, plot, table = page.cfg, page.oof, page.lookup, page.plot, page.table
    page.skipped["per-class, precision-recall and confusion plots"] = "masks: no classes"
    metric = oof.columns[-1]
    worst = oof.sort_values([metric, "id"], kind="stable").head(N_WORST)
    table("worst_predictions.csv", worst.reset_index(drop=True))
    size = cfg.data.image_size
    threshold = 0.5  # the threshold the per-image scores were computed at
    masks, rows = {}, {}
    for k in page.folds:
        folder = layout.fold_dir(page.run_dir, k)
        if (folder / layout.OOF_MASKS).is_file():
            masks[k] = np.load(folder / layout.OOF_MASKS, mmap_mode="r")
            ids = read_ids_csv(folder / layout.FOLD_OOF)["id"].astype(str)
            rows.update({(k, i): r for r, i in enumerate(ids)})
    train_masks = _train_masks(cfg, task, set(worst["id"].astype(str)))
    images, titles = [], []
    for i, fold, score in zip(worst["id"].astype(str), worst["fold"], worst[metric], strict=True):
        path = lookup.get(i)
        if path is None or (fold, i) not in rows:
            images.append(None)
        else:
            grey = load_resized(path, size, 3).astype(np.float32).mean(axis=2) * 0.6
            rgb = np.repeat(grey[:, :, None], 3, axis=2)
            truth = train_masks.get(i, np.zeros(cfg.data.height_width, np.uint8))
            truth, pred = task.drawn_masks(truth, masks[fold][rows[(fold, i)]])
            color = np.zeros_like(rgb)
            color[truth, 1], color[pred, 0] = 255, 255
            drawn = truth | pred
            rgb[drawn] = 0.4 * rgb[drawn] + 0.6 * color[drawn]
            images.append(rgb.clip(0, 255).astype(np.uint8))
        titles.append(f"{i}\n{metric} {score:.2f}")
    plot(
        "worst_predictions.png",
        plot_image_grid,
        images,
        titles,
        suptitle=f"lowest {metric} out of fold (truth green, prediction red, both yellow; "
        f"threshold {threshold:g})",
    )


def _train_masks(cfg: Any, task: SegmentTask, ids: set[str]) -> dict[str, np.ndarray]:
    """The true masks of the training images `ids` (only those are decoded)."""
    from medalist.data.tables import load_train

    train = load_train(cfg)
    train = train[train[cfg.competition.id_column].astype(str).isin(ids)]
    masks = type(task).from_state(cfg, task.state()).encode(train)
    return dict(zip(train[cfg.competition.id_column].astype(str), masks, strict=True))
