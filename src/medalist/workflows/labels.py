"""`medalist labels RUN`: the training rows whose given label the run's out-of-fold predictions
confidently contradict (confident learning, `medalist.analysis.labels`), written to
`analysis/label_issues.csv`, drawn in `plots/label_issues.png` and on the page
`analysis/label_issues.html` (each image beside its given and suggested label).

A row's out-of-fold prediction comes from a model that never saw it, which is what lets a
confident disagreement point at the label rather than at memorisation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.analysis import labels as cl
from medalist.errors import UserError
from medalist.io import write_csv, write_text
from medalist.runs.rundir import RunDir, open_run_dir

ISSUES_CSV = "analysis/label_issues.csv"
ISSUES_PAGE = "analysis/label_issues.html"
ISSUES_PLOT = "plots/label_issues.png"
THUMBNAIL = 128


@dataclass
class LabelReport:
    """What `medalist labels` found in one run."""

    run: RunDir
    kind: str
    examined: int  # rows, (row, label) pairs, images or (image, class) pairs
    unit: str
    table: pd.DataFrame  # the flagged ones, most suspicious first
    method: str
    thresholds: dict[str, float] = field(default_factory=dict)
    csv: Path | None = None
    plot: Path | None = None
    page: Path | None = None
    drawn: pd.DataFrame = field(default_factory=pd.DataFrame)  # the rows on the page


def find_label_issues(
    run_dir: str | Path,
    *,
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
    show: int = 32,
) -> LabelReport:
    """Rank a finished run's suspect labels and write the table, the plot and the page."""
    if filter_by not in cl.FILTERS:
        raise UserError(f"--filter-by {filter_by!r}: use one of {', '.join(cl.FILTERS)}")
    if rank_by not in cl.RANKINGS:
        raise UserError(f"--rank-by {rank_by!r}: use one of {', '.join(cl.RANKINGS)}")
    if show < 0:
        raise UserError(f"--show {show}: give 0 or more images to draw")
    run = open_run_dir(run_dir)
    if not run.file("task.json").is_file():
        raise UserError(f"{run.path}: no task.json; the run never started training")
    state = run.task_state()
    kind = state["kind"]
    if kind == "regression":
        raise UserError(
            f"run {run.name} predicts numbers (regression): there are no labels to contradict; "
            "medalist labels works on classification and segmentation runs"
        )
    cfg = run.config()
    if kind == "mask":
        report = _mask_issues(run, cfg, state)
    else:
        report = _class_issues(run, state, filter_by, rank_by)
    report.csv = write_csv(run.file(ISSUES_CSV), report.table)
    report.drawn = report.table.head(show)
    if kind == "mask":
        images = _mask_overlays(run, cfg, report)
    else:
        images = _thumbnails(cfg, report.drawn)
    if len(report.drawn):
        report.plot = _plot(run, report, images)
    else:  # a plot left by an earlier look would show rows that are no longer suspect
        run.file(ISSUES_PLOT).unlink(missing_ok=True)
    report.page = _page(run, report, images)
    return report


def _read_oof(run: RunDir) -> pd.DataFrame:
    path = run.file("oof.csv")
    if not path.is_file():
        raise UserError(
            f"run {run.name} has no oof.csv yet: finish every fold (medalist train --resume "
            f"{run.path}) before looking for label issues"
        )
    return pd.read_csv(path)


def _class_issues(run: RunDir, state: dict[str, Any], filter_by: str, rank_by: str) -> LabelReport:
    oof = _read_oof(run)
    classes = list(state["classes"])
    cols = [f"pred_{c}" for c in classes]
    missing = [c for c in cols if c not in oof.columns]
    if missing:
        raise UserError(
            f"{run.file('oof.csv')}: no column {missing[0]!r} for class {classes[0]!r}; the "
            "table does not match task.json (retrain the run)"
        )
    probs = oof[cols].to_numpy(dtype=np.float64)
    method = f"confident learning, {filter_by}, ranked by {rank_by}"
    if state["kind"] == "multilabel":
        targets = oof[[f"target_{c}" for c in classes]].to_numpy(dtype=np.float64)
        table, thresholds = cl.multilabel_issue_table(
            oof["id"], oof["fold"], targets, probs, classes, filter_by, rank_by
        )
        return LabelReport(
            run, "multilabel", probs.size, "row-label pairs", table, method, thresholds
        )
    labels = oof["target"].to_numpy(dtype=np.int64)
    table, found = cl.issue_table(
        oof["id"], oof["fold"], labels, probs, classes, filter_by, rank_by
    )
    thresholds = {str(c): float(t) for c, t in zip(classes, found.thresholds, strict=True)}
    return LabelReport(run, "multiclass", len(oof), "rows", table, method, thresholds)


# ---- masks ----------------------------------------------------------------------------------
def _fold_masks(run: RunDir, cfg: Any) -> list[tuple[int, pd.Series, list[np.ndarray]]]:
    """Per fold: its number, the ids of its oof.csv, and the probability masks of each seed."""
    from medalist.tasks.segment import OOF_MASKS

    out = []
    for k in range(cfg.cv.n_splits):
        dirs = [
            run.file(f"fold_{k}" if i == 0 else f"fold_{k}_seed{i}") for i in range(cfg.train.seeds)
        ]
        for d in dirs:
            if not ((d / "oof.csv").is_file() and (d / OOF_MASKS).is_file()):
                raise UserError(
                    f"run {run.name}: {d.name} has no out-of-fold masks yet ({OOF_MASKS}); "
                    f"finish every fold (medalist train --resume {run.path})"
                )
        ids = pd.read_csv(dirs[0] / "oof.csv")["id"].astype(str)
        out.append((k, ids, [np.load(d / OOF_MASKS, mmap_mode="r") for d in dirs]))
    return out


def _mean_masks(masks: list[np.ndarray], rows: slice) -> np.ndarray:
    return np.mean([np.asarray(m[rows], dtype=np.float32) for m in masks], axis=0)


def _by_class(a: np.ndarray, classes: int) -> np.ndarray:
    return a[:, None] if classes == 1 else a


def _mask_issues(run: RunDir, cfg: Any, state: dict[str, Any]) -> LabelReport:
    from medalist.data.tables import load_train
    from medalist.tasks.segment import SegmentTask

    task = SegmentTask.from_state(cfg, state)
    folds = _fold_masks(run, cfg)
    train = load_train(cfg)
    wanted = set().union(*(set(ids) for _, ids, _ in folds))
    train = train[train[cfg.competition.id_column].astype(str).isin(wanted)]
    given = _by_class(task.encode(train), len(task.classes))
    where = {v: i for i, v in enumerate(train[cfg.competition.id_column].astype(str))}
    sums = [cl.MaskThresholds() for _ in task.classes]
    for _, ids, masks in folds:
        at = np.array([where[i] for i in ids])
        for rows in cl.chunks(len(ids)):
            probs = _by_class(_mean_masks(masks, rows), len(task.classes))
            for j, acc in enumerate(sums):
                acc.add(given[at[rows], j], probs[:, j])
    thresholds = [acc.values for acc in sums]
    parts = []
    for k, ids, masks in folds:
        at = np.array([where[i] for i in ids])
        for rows in cl.chunks(len(ids)):
            probs = _by_class(_mean_masks(masks, rows), len(task.classes))
            for j, name in enumerate(task.classes):
                scores = cl.mask_disagreement(given[at[rows], j], probs[:, j], thresholds[j])
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
    return LabelReport(run, "mask", examined, unit, table, method, named)


# ---- pictures -------------------------------------------------------------------------------
def _image_lookup(cfg: Any) -> dict[str, Path]:
    """id -> training image file; empty when the train table can no longer be read."""
    from medalist.data.tables import image_paths, load_train

    try:
        train = load_train(cfg)
    except UserError:
        return {}
    paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
    return dict(zip(train[cfg.competition.id_column].astype(str), paths, strict=True))


def _read_thumbnail(path: Path | None) -> np.ndarray | None:
    """The image as uint8 (H, W, 3), or (H, W, 1) for grey, at most THUMBNAIL px on a side."""
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img = img.convert("L" if img.mode in ("1", "L", "I;16", "I", "F") else "RGB")
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            arr = np.asarray(img)
    except OSError:
        return None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _thumbnails(cfg: Any, rows: pd.DataFrame) -> list[np.ndarray | None]:
    lookup = _image_lookup(cfg) if len(rows) else {}
    return [_read_thumbnail(lookup.get(str(i))) for i in rows["id"]]


def _mask_overlays(run: RunDir, cfg: Any, report: LabelReport) -> list[np.ndarray | None]:
    """Each drawn image at data.image_size with its given mask in green and the model's
    confident prediction in red (both: yellow)."""
    from medalist.data.images import load_resized
    from medalist.data.tables import image_paths, load_train
    from medalist.tasks.segment import SegmentTask

    rows = report.drawn
    if rows.empty:
        return []
    task = SegmentTask.from_state(cfg, run.task_state())
    id_col = cfg.competition.id_column
    train = load_train(cfg)
    train = train[train[id_col].astype(str).isin(set(rows["id"].astype(str)))]
    ids = train[id_col].astype(str).tolist()
    given = dict(zip(ids, _by_class(task.encode(train), len(task.classes)), strict=True))
    paths = dict(
        zip(ids, image_paths(cfg, train, cfg.path(cfg.competition.image_dir)), strict=True)
    )
    folds = {k: (dict(zip(i, range(len(i)), strict=True)), m) for k, i, m in _fold_masks(run, cfg)}
    names = rows["class"] if "class" in rows.columns else [task.classes[0]] * len(rows)
    size, out = cfg.data.image_size, []
    for image_id, fold, name in zip(rows["id"].astype(str), rows["fold"], names, strict=True):
        j = task.classes.index(name)
        position, masks = folds[int(fold)]
        row = position[image_id]
        p = _by_class(_mean_masks(masks, slice(row, row + 1)), len(task.classes))[0, j]
        t = report.thresholds
        _, predicted = cl.confident_pixels(p, (t[f"{name} object"], t[f"{name} background"]))
        truth = given[image_id][j] > 0
        grey = load_resized(paths[image_id], size, 3).astype(np.float32).mean(axis=2) * 0.6
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        color = np.zeros_like(rgb)
        color[truth, 1], color[predicted, 0] = 255, 255
        drawn = truth | predicted
        rgb[drawn] = 0.4 * rgb[drawn] + 0.6 * color[drawn]
        out.append(rgb.clip(0, 255).astype(np.uint8))
    return out


def _captions(report: LabelReport) -> list[str]:
    rows = report.drawn
    if report.kind == "mask":
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
    label = [f"{x}: " for x in rows["label"]] if "label" in rows.columns else [""] * len(rows)
    return [
        f"{i}\n{lb}given {g}\nsuggested {s} ({c:.2f})"
        for i, lb, g, s, c in zip(
            rows["id"],
            label,
            rows["given_label"],
            rows["suggested_label"],
            rows["suggested_confidence"],
            strict=True,
        )
    ]


def _plot(run: RunDir, report: LabelReport, images: list[np.ndarray | None]) -> Path:
    from medalist.analysis.plots import plot_image_grid

    what = "masks" if report.kind == "mask" else "labels"
    return plot_image_grid(
        images,
        _captions(report),
        run.file(ISSUES_PLOT),
        suptitle=f"{len(report.table)} suspect {what} of {report.examined} {report.unit}, "
        f"most suspicious first ({report.method})",
    )


def _png_uri(image: np.ndarray) -> str:
    from PIL import Image

    from medalist.analysis.report import png_data_uri

    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format="PNG")
    return png_data_uri(buf.getvalue())


def _page(run: RunDir, report: LabelReport, images: list[np.ndarray | None]) -> Path:
    """A self-contained HTML page: every drawn row with its image (a data URI) and labels."""
    from datetime import datetime

    import jinja2

    from medalist.analysis.report import fmt

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medalist.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    rows = report.drawn
    columns = [c for c in rows.columns if c != "score"]
    cards = [
        {
            "image": _png_uri(img) if img is not None else None,
            "cells": [(c, fmt(v, 3)) for c, v in zip(columns, row, strict=True)],
        }
        for img, row in zip(images, rows[columns].itertuples(index=False), strict=True)
    ]
    html = env.get_template("label_issues.html.j2").render(
        run=run.name,
        kind=report.kind,
        suspected=len(report.table),
        examined=report.examined,
        unit=report.unit,
        method=report.method,
        thresholds=[(k, fmt(v, 3)) for k, v in report.thresholds.items()],
        cards=cards,
        csv=ISSUES_CSV,
        generated=datetime.now().strftime("%Y-%m-%d %H:%M"),
    )
    return write_text(run.file(ISSUES_PAGE), html)
