"""A detection submission: one string per test image in the sample's order, each box written
by `competition.prediction_format` in the image's own pixels, `competition.empty_prediction`
for an image without a box; and its check against the sample."""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.tasks.detect_metrics import AT_THRESHOLD, unpad

if TYPE_CHECKING:
    from medalist.tasks.detect import DetectTask

FIELDS = {"score", "x", "y", "w", "h", "x1", "y1", "x2", "y2", "label", "class_index"}
ONE_CLASS_FORMAT = "{score} {x} {y} {w} {h}"
SEVERAL_CLASSES_FORMAT = "{label} {score} {x1} {y1} {x2} {y2}"


def check_format(template: str) -> None:
    """A `competition.prediction_format` that names only known fields, else a UserError."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise UserError(f"competition.prediction_format = {template!r}: {exc}") from None
    unknown = sorted(n for n in names if n not in FIELDS)
    if unknown or not names:
        raise UserError(
            f"competition.prediction_format = {template!r}: unknown field {unknown[:1]}; use "
            f"{{{'}, {'.join(sorted(FIELDS))}}}"
        )


def string_column(task: DetectTask, sample: pd.DataFrame) -> str:
    """The sample's column of box strings: `PredictionString`, else the one after the id."""
    rest = [c for c in sample.columns if c != task.id_column]
    if not rest:
        raise UserError(
            f"{task.cfg.competition.sample_submission}: only the id column; a detection "
            "submission needs a column of box strings (e.g. PredictionString)"
        )
    return "PredictionString" if "PredictionString" in rest else rest[0]


def box_text(task: DetectTask, boxes: np.ndarray) -> str:
    """One image's (k, 6) boxes (its own pixels) written by the template, space-separated."""
    if not len(boxes):
        return task.cfg.competition.empty_prediction
    template = task._format(task.cfg, len(task.classes))
    parts = []
    for x1, y1, x2, y2, score, label in boxes:
        k = int(label)
        x1, y1, x2, y2 = (round(float(v), 1) for v in (x1, y1, x2, y2))
        parts.append(
            template.format(
                score=round(float(score), 4),
                x=x1,
                y=y1,
                w=round(x2 - x1, 1),
                h=round(y2 - y1, 1),
                x1=x1,
                y1=y1,
                x2=x2,
                y2=y2,
                label=task.classes[k] if 0 <= k < len(task.classes) else k,
                class_index=k,
            )
        )
    return " ".join(parts)


def image_boxes(task: DetectTask, ids: pd.Series, preds: np.ndarray) -> list[np.ndarray]:
    """Each test image's boxes in its own pixels, clipped to it, above the fitted score
    threshold when the metric counts boxes at one."""
    from medalist.data.images import image_size
    from medalist.data.tables import image_paths
    from medalist.tasks.detect_fusion import input_scales

    cfg = task.cfg
    frame = pd.DataFrame({task.id_column: ids.to_numpy()})
    paths = image_paths(cfg, frame, cfg.path(cfg.competition.test_image_dir))
    sizes = np.array([image_size(p) for p in paths], dtype=float).reshape(-1, 2)
    scales = input_scales(cfg, sizes[:, 0], sizes[:, 1])
    cut = task.score_threshold if task.metric.name in AT_THRESHOLD else -np.inf
    out = []
    for boxes, (sx, sy), (w, h) in zip(unpad(preds), scales, sizes, strict=True):
        b = boxes[boxes[:, 4] >= cut].copy()
        b[:, :4] /= [sx, sy, sx, sy]
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        out.append(b[keep][np.argsort(-b[keep][:, 4], kind="stable")])
    return out


def format_detect_submission(
    task: DetectTask, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
) -> pd.DataFrame:
    """The sample with its box-string column filled in, checked."""
    col = string_column(task, sample)
    boxes = image_boxes(task, ids, preds)
    texts = dict(zip(ids.astype(str), (box_text(task, b) for b in boxes), strict=True))
    image = sample[task.id_column].astype(str)
    missing = ~image.isin(texts)
    if missing.any():
        first = sample[task.id_column][missing].iloc[0]
        raise UserError(f"sample_submission id {first!r} is not among the test images")
    sub = sample.copy()
    sub[col] = [texts[i] for i in image]
    task.check_submission(sub, sample)
    return sub


def check_detect_submission(task: DetectTask, sub: pd.DataFrame, sample: pd.DataFrame) -> None:
    """The sample's columns and ids in its order, and every string a whole number of boxes."""
    if list(sub.columns) != list(sample.columns):
        raise UserError(
            f"submission columns {list(sub.columns)} != sample's {list(sample.columns)}"
        )
    ids = task.id_column
    if not (sub[ids].astype(str).to_numpy() == sample[ids].astype(str).to_numpy()).all():
        raise UserError("submission ids are not in sample_submission's order")
    col = string_column(task, sample)
    per_box = len(task._format(task.cfg, len(task.classes)).split())
    empty = task.cfg.competition.empty_prediction
    for i, text in enumerate(sub[col]):
        if not isinstance(text, str):
            if pd.isna(text) and empty == "":
                continue
            raise UserError(f"submission row {i + 2}: {col} is {text!r}, not text")
        if text == empty:
            continue
        if len(text.split()) % per_box:
            raise UserError(
                f"submission row {i + 2}: {col} has {len(text.split())} fields, not a multiple "
                f"of the {per_box} of competition.prediction_format"
            )
