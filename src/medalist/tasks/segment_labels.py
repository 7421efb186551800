"""Label issues of a segmentation run: the images (and classes) whose given mask its confident
out-of-fold pixels contradict most (1 - Dice on the confident pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import read_ids_csv
from medalist.runs import layout
from medalist.tasks import label_issues as cl
from medalist.tasks.label_issues import LabelIssues

if TYPE_CHECKING:
    from medalist.tasks.segment import SegmentTask


def _fold_masks(run_dir: Path, cfg: Any) -> list[tuple[int, pd.Series, list[np.ndarray]]]:
    """Per fold: its number, the ids of its oof.csv, and the probability masks of each seed."""
    out = []
    for k in range(cfg.cv.n_splits):
        dirs = [layout.fold_dir(run_dir, k, i) for i in range(cfg.train.seeds)]
        for d in dirs:
            if not ((d / layout.FOLD_OOF).is_file() and (d / layout.OOF_MASKS).is_file()):
                raise UserError(
                    f"run {Path(run_dir).name}: {d.name} has no out-of-fold masks yet "
                    f"({layout.OOF_MASKS}); finish every fold (medalist train --resume {run_dir})"
                )
        ids = read_ids_csv(dirs[0] / layout.FOLD_OOF)["id"].astype(str)
        out.append((k, ids, [np.load(d / layout.OOF_MASKS, mmap_mode="r") for d in dirs]))
    return out


def _mean_masks(masks: list[np.ndarray], rows: slice) -> np.ndarray:
    return np.mean([np.asarray(m[rows], dtype=np.float32) for m in masks], axis=0)


def _by_class(a: np.ndarray, classes: int) -> np.ndarray:
    return a[:, None] if classes == 1 else a


def mask_issues(task: SegmentTask, run_dir: Path, cfg: Any) -> LabelIssues:
    """The suspect images (or image-class pairs) of a segmentation run."""
    from medalist.data.tables import load_train

    folds = _fold_masks(run_dir, cfg)
    train = load_train(cfg)
    wanted = set().union(*(set(ids) for _, ids, _ in folds))
    train = train[train[cfg.competition.id_column].astype(str).isin(wanted)]
    given = task.encode(train)
    where = {v: i for i, v in enumerate(train[cfg.competition.id_column].astype(str))}
    sums = [cl.MaskThresholds() for _ in task.classes]
    for _, ids, masks in folds:
        at = np.array([where[i] for i in ids])
        for rows in cl.chunks(len(ids)):
            probs = _by_class(_mean_masks(masks, rows), len(task.classes))
            for j, acc in enumerate(sums):
                truth, valid = task.class_truth(given[at[rows]], j)
                acc.add(truth, probs[:, j], valid)
    thresholds = [acc.values for acc in sums]
    parts = []
    for k, ids, masks in folds:
        at = np.array([where[i] for i in ids])
        for rows in cl.chunks(len(ids)):
            probs = _by_class(_mean_masks(masks, rows), len(task.classes))
            for j, name in enumerate(task.classes):
                truth, valid = task.class_truth(given[at[rows]], j)
                scores = cl.mask_disagreement(truth, probs[:, j], thresholds[j], valid)
                parts.append(scores.assign(id=ids[rows].to_numpy(), fold=k, **{"class": name}))
    table = cl.rank_masks(pd.concat(parts, ignore_index=True))
    lead = ["id", "fold"] + (["class"] if len(task.classes) > 1 else [])
    table = table[lead + [c for c in table.columns if c not in ("id", "fold", "class")]]
    named = {}
    for name, (obj, bg) in zip(task.classes, thresholds, strict=True):
        named[f"{name} object"], named[f"{name} background"] = obj, bg
    unit = "images" if len(task.classes) == 1 else "image-class pairs"
    method = (
        f"1 - Dice on the confident pixels, flagged at >= {cl.MASK_FLAG:g}; a pixel is confident "
        "when its probability reaches the average self-confidence of its class"
    )
    examined = sum(len(ids) for _, ids, _ in folds) * len(task.classes)
    return LabelIssues(examined, unit, table, method, named, noun="masks")


def mask_overlays(
    task: SegmentTask, run_dir: Path, cfg: Any, found: LabelIssues, rows: pd.DataFrame
) -> list[np.ndarray | None]:
    """Each drawn image at data.image_size with its given mask in green and the model's
    confident prediction in red (both: yellow)."""
    from medalist.data.images import load_resized
    from medalist.data.tables import image_paths, load_train

    if rows.empty:
        return []
    id_col = cfg.competition.id_column
    train = load_train(cfg)
    train = train[train[id_col].astype(str).isin(set(rows["id"].astype(str)))]
    ids = train[id_col].astype(str).tolist()
    given = dict(zip(ids, task.encode(train), strict=True))
    paths = dict(
        zip(ids, image_paths(cfg, train, cfg.path(cfg.competition.image_dir)), strict=True)
    )
    folds = {
        k: (dict(zip(i, range(len(i)), strict=True)), m) for k, i, m in _fold_masks(run_dir, cfg)
    }
    names = rows["class"] if "class" in rows.columns else [task.classes[0]] * len(rows)
    size, out = cfg.data.image_size, []
    for image_id, fold, name in zip(rows["id"].astype(str), rows["fold"], names, strict=True):
        j = task.classes.index(name)
        position, masks = folds[int(fold)]
        row = position[image_id]
        p = _by_class(_mean_masks(masks, slice(row, row + 1)), len(task.classes))[0, j]
        t = found.thresholds
        _, predicted = cl.confident_pixels(p, (t[f"{name} object"], t[f"{name} background"]))
        truth = task.class_truth(given[image_id][None], j)[0][0] > 0
        grey = load_resized(paths[image_id], size, 3).astype(np.float32).mean(axis=2) * 0.6
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        color = np.zeros_like(rgb)
        color[truth, 1], color[predicted, 0] = 255, 255
        drawn = truth | predicted
        rgb[drawn] = 0.4 * rgb[drawn] + 0.6 * color[drawn]
        out.append(rgb.clip(0, 255).astype(np.uint8))
    return out


def captions(rows: pd.DataFrame) -> list[str]:
    """Each suspect image's id, disagreement and the given and predicted areas."""
    return [
        f"{i}\n1 - Dice {d:.2f}\ngiven {g:.0%} / model {s:.0%}"
        for i, d, g, s in zip(
            rows["id"],
            rows["disagreement"],
            rows["given_area"],
            rows["suggested_area"],
            strict=True,
        )
    ]
