"""The error-analysis page of a detection run: AP by object size and by class, the recall of
small objects, the images with the most missed boxes (true boxes green, predictions red), and
the remedies for missed small objects as next commands: a larger input, an anchor-free
detector, more scale augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from medalist.advice import step
from medalist.plots import plot_image_grid
from medalist.runs import layout

if TYPE_CHECKING:
    from medalist.tasks.base import AnalysisPage
    from medalist.tasks.detect import DetectTask

N_WORST = 16
SMALL, MEDIUM = 32**2, 96**2  # COCO's object areas, in the image's own pixels
SCALE_AUGMENT = "{name: Affine, scale: [0.5, 1.5], p: 0.5}"


def size_table(
    task: DetectTask, y: np.ndarray, preds: np.ndarray, scales: np.ndarray
) -> pd.DataFrame:
    """AP and recall at IoU 0.5 (boxes at the score threshold) of small, medium and large
    objects, with their numbers, sizes counted in each image's own pixels."""
    from medalist.tasks.detect_metrics import coco_summary, iou_matrix, unpad

    summary = coco_summary(y, preds, scales)
    found = {"small": [0, 0], "medium": [0, 0], "large": [0, 0]}
    for g, p, s in zip(unpad(y), unpad(preds), scales, strict=True):
        p = p[p[:, 4] >= task.score_threshold]
        area = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) / (s * s)
        hit = (iou_matrix(g[:, :4], p[:, :4]) >= 0.5).any(axis=1) if len(p) else np.zeros(len(g))
        for a, h in zip(area, hit, strict=True):
            name = "small" if a < SMALL else "medium" if a < MEDIUM else "large"
            found[name][0] += 1
            found[name][1] += int(h)
    rows = [
        dict(
            size=name,
            boxes=n,
            ap=max(0.0, float(summary[f"map_{name}"])) if n else float("nan"),
            recall_50=hits / n if n else float("nan"),
        )
        for name, (n, hits) in found.items()
    ]
    return pd.DataFrame(rows)


def class_table(task: DetectTask, y: np.ndarray, preds: np.ndarray) -> pd.DataFrame:
    """Each class's AP (COCO's, over IoU 0.5:0.95) and its number of true boxes."""
    from medalist.tasks.detect_metrics import coco_summary, unpad

    summary = coco_summary(y, preds)
    ap = dict(
        zip(
            np.atleast_1d(summary["classes"]).tolist(),
            np.atleast_1d(summary["map_per_class"]),
            strict=True,
        )
    )
    counts = np.bincount(
        np.concatenate([g[:, 4] for g in unpad(y)] or [np.zeros(0)]).astype(int),
        minlength=len(task.classes),
    )
    return pd.DataFrame(
        dict(
            cls=task.classes,
            boxes=counts[: len(task.classes)],
            ap=[max(0.0, float(ap.get(i, -1.0))) for i in range(len(task.classes))],
        )
    )


def box_error_analysis(task: DetectTask, page: AnalysisPage) -> None:
    """Tables of AP by size and class, the most-missed images drawn, and what to try next."""
    from medalist.data.tables import load_train
    from medalist.tasks.detect import input_scales

    cfg, run_dir = page.cfg, page.run_dir
    page.skipped["per-class, precision-recall and confusion plots"] = "boxes: see ap_by_class"
    dirs = [[layout.fold_dir(run_dir, k, i) for i in range(cfg.train.seeds)] for k in page.folds]
    if not all((d[0] / layout.FOLD_OOF).is_file() for d in dirs):  # an ensemble keeps no boxes
        page.skipped["AP by size and class, most missed"] = "an ensemble: see its members' reports"
        return
    order, preds = task.oof_boxes(dirs)
    train = load_train(cfg)
    at = {v: i for i, v in enumerate(train[task.id_column].astype(str))}
    rows = [at[i] for i in order]
    y = task.encode(train)[rows]
    factors = input_scales(cfg, train["image_width"], train["image_height"])[rows]
    scales = np.sqrt(factors[:, 0] * factors[:, 1])
    sizes = size_table(task, y, preds, scales)
    page.table("ap_by_size.csv", sizes)
    page.table("ap_by_class.csv", class_table(task, y, preds))
    _suggest(task, page, sizes)
    _draw_most_missed(task, page, order, y, preds)


def _remedy(text: str, override: str, reason: str) -> dict:
    s = step(text, override)
    s["reason"] = reason
    return s


def _suggest(task: DetectTask, page: AnalysisPage, sizes: pd.DataFrame) -> None:
    """The remedies for missed objects, as next commands."""
    cfg = page.cfg
    small = sizes.set_index("size").loc["small"]
    if small["boxes"] and small["recall_50"] < 0.6:
        h, w = cfg.image_shape
        bigger = f"[{2 * h}, {2 * w}]" if h != w else str(2 * h)
        page.suggestions.append(
            _remedy(
                "a larger input keeps small objects",
                f"data.image_size={bigger}",
                f"{small['recall_50']:.0%} of the {int(small['boxes'])} small objects (under "
                "32x32 px in their image) are found at IoU 0.5",
            )
        )
    if cfg.model.detector != "fcos":
        page.suggestions.append(
            _remedy(
                "an anchor-free detector",
                "model.detector=fcos",
                f"{cfg.model.detector} places boxes from fixed anchors; FCOS misses fewer "
                "small and oddly shaped objects",
            )
        )
    if not any(
        s.get("name") in ("Affine", "RandomScale", "RandomSizedBBoxSafeCrop")
        for s in cfg.data.augment
    ):
        steps = ", ".join(
            "{" + ", ".join(f"{k}: {v}" for k, v in s.items()) + "}" for s in cfg.data.augment
        )
        page.suggestions.append(
            _remedy(
                "more scale augmentation",
                f"data.augment=[{steps + ', ' if steps else ''}{SCALE_AUGMENT}]",
                "no step of data.augment changes the objects' scale",
            )
        )


def _draw_most_missed(
    task: DetectTask, page: AnalysisPage, order: list[str], y: np.ndarray, preds: np.ndarray
) -> None:
    """The images with the most true boxes not matched at IoU 0.5, boxes drawn on the input."""
    from medalist.data.images import load_resized
    from medalist.tasks.detect import draw_boxes

    cfg, oof = page.cfg, page.oof
    missed = oof.assign(missed=oof["n_true"] - oof["matched_50"])
    worst = missed.sort_values(["missed", "id"], ascending=[False, True], kind="stable")
    worst = worst[worst["missed"] > 0].head(N_WORST)
    page.table("most_missed.csv", worst.reset_index(drop=True))
    where = {v: i for i, v in enumerate(order)}
    size = cfg.data.image_size
    size = size if isinstance(size, int) else tuple(cfg.image_shape)
    images, titles = [], []
    for i, n in zip(worst["id"].astype(str), worst["missed"], strict=True):
        path = page.lookup.get(i)
        if path is None or i not in where:
            images.append(None)
        else:
            pic = load_resized(path, size, 3, cfg.keep_aspect)
            p = preds[where[i]]
            p = p[~np.isnan(p[:, 0])]
            pic = draw_boxes(pic, p[p[:, 4] >= task.score_threshold], (255, 0, 0))
            images.append(draw_boxes(pic, y[where[i]], (0, 220, 0)))
        titles.append(f"{i}\n{int(n)} missed")
    page.plot(
        "most_missed.png",
        plot_image_grid,
        images,
        titles,
        suptitle=f"most missed boxes out of fold (truth green, prediction red at score >= "
        f"{task.score_threshold:g})",
    )
