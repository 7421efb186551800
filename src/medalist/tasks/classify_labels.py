"""Label issues of a classification run: the rows whose given label its out-of-fold
probabilities confidently contradict (confident learning, `medalist.tasks.label_issues`)."""

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
    from medalist.tasks.classify import ClassifyTask

THUMBNAIL = 128


def _read_oof(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / layout.OOF
    if not path.is_file():
        raise UserError(
            f"run {Path(run_dir).name} has no oof.csv yet: finish every fold (medalist train "
            f"--resume {run_dir}) before looking for label issues"
        )
    return read_ids_csv(path)


def class_issues(task: ClassifyTask, run_dir: Path, filter_by: str, rank_by: str) -> LabelIssues:
    """The suspect rows (multiclass) or row-label pairs (multilabel) of a classification run."""
    if task.kind == "regression":
        raise UserError(
            f"run {Path(run_dir).name} predicts numbers (regression): there are no labels to "
            "contradict; medalist labels works on classification and segmentation runs"
        )
    oof = _read_oof(run_dir)
    classes = list(task.classes)
    cols = [f"pred_{c}" for c in classes]
    missing = [c for c in cols if c not in oof.columns]
    if missing:
        raise UserError(
            f"{Path(run_dir) / layout.OOF}: no column {missing[0]!r} for class {classes[0]!r}; the "
            "table does not match task.json (retrain the run)"
        )
    probs = oof[cols].to_numpy(dtype=np.float64)
    method = f"confident learning, {filter_by}, ranked by {rank_by}"
    if task.kind == "multilabel":
        targets = oof[[f"target_{c}" for c in classes]].to_numpy(dtype=np.float64)
        table, thresholds = cl.multilabel_issue_table(
            oof["id"], oof["fold"], targets, probs, classes, filter_by, rank_by
        )
        return LabelIssues(probs.size, "row-label pairs", table, method, thresholds)
    labels = oof["target"].to_numpy(dtype=np.int64)
    table, found = cl.issue_table(
        oof["id"], oof["fold"], labels, probs, classes, filter_by, rank_by
    )
    thresholds = {str(c): float(t) for c, t in zip(classes, found.thresholds, strict=True)}
    return LabelIssues(len(oof), "rows", table, method, thresholds)


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

    if path is None:
        return None
    try:
        from medalist.data.images import WIDE_MODES, eight_bit, open_image

        with open_image(path) as img:
            img = eight_bit(img).convert("L" if img.mode in ("1", "L", *WIDE_MODES) else "RGB")
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            arr = np.asarray(img)
    except (OSError, UserError):  # missing or unreadable: no thumbnail
        return None
    return arr[:, :, None] if arr.ndim == 2 else arr


def thumbnails(cfg: Any, rows: pd.DataFrame) -> list[np.ndarray | None]:
    """Each row's training image, at most THUMBNAIL px on a side."""
    lookup = _image_lookup(cfg) if len(rows) else {}
    return [_read_thumbnail(lookup.get(str(i))) for i in rows["id"]]


def captions(rows: pd.DataFrame) -> list[str]:
    """Each suspect's id, (label,) given and suggested label with its probability."""
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
