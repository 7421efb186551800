"""Reading a box table for `medalist new`: the box layout and format from the column names and
values, the class column, the metric and the folds of a detection competition."""

from __future__ import annotations

import pandas as pd

from medalist.workflows.scaffold.found import Found

C = "competition."
CLASS_NAMES = (
    "class_name", "class", "cls", "class_id", "label", "category", "category_id", "source",
)  # fmt: skip
SIZE_COLUMNS = ("width", "height", "image_width", "image_height")


def _coordinates(train: pd.DataFrame) -> tuple[str, list[str]] | None:
    """(format, coordinate columns) of the first layout whose names the table has."""
    from medalist.data.boxes import NAMED_LAYOUTS

    if "bbox" in train.columns:
        return "xywh", ["bbox"]
    for fmt, names in NAMED_LAYOUTS:
        if all(n in train.columns for n in names):
            return fmt, list(names)
    return None


def _values(train: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Every coordinate of the table's first rows, as numbers."""
    from medalist.data.boxes import parse_bbox_text

    head = train.head(200)
    if columns == ["bbox"]:
        try:
            return pd.Series(parse_bbox_text(head["bbox"], "train.csv").ravel()).dropna()
        except Exception:  # noqa: BLE001 - a malformed cell is for `train` to name
            return pd.Series(dtype=float)
    return head[columns].apply(pd.to_numeric, errors="coerce").stack().dropna()


def infer_detect(found: Found, train: pd.DataFrame, id_col: str, group_col: str | None) -> None:
    """The detection keys of a box table (one row per box)."""
    layout = _coordinates(train)
    if layout is None:
        found.guess(
            C + "task",
            "detect",
            f"ids repeat in {id_col!r} but no box columns (bbox, x_min.., x_center..) were "
            "found: set competition.task and competition.box_columns",
        )
        return
    fmt, columns = layout
    found.ok(C + "task", "detect", f"box columns {', '.join(columns)}")
    found.ok(C + "box_format", fmt, f"from the column names {', '.join(columns)}")
    values = _values(train, columns)
    normalised = bool(len(values)) and bool(((values >= 0) & (values <= 1)).all())
    found.ok(C + "box_normalized", normalised, "every value in [0, 1]" if normalised else "pixels")
    skip = {id_col, *columns, *SIZE_COLUMNS, *([group_col] if group_col else [])}
    cls = next((c for c in CLASS_NAMES if c in train.columns and c not in skip), None)
    n = train[cls].nunique() if cls else 1
    found.ok(C + "class_column", cls if n > 1 else None, f"{n} classes" if cls else "one class")
    found.ok(C + "target_type", "auto", "not used for boxes")
    found.ok(C + "target_column", "label", "not used: the boxes are the target")
    found.guess(
        C + "metric",
        "map50",
        "detection: guessed COCO mAP@0.5; set competition.metric to the competition's "
        "(map, map50, map75, wheat_ap, fbeta_iou or module:function)",
    )
    found.ok("cv.scheme", "stratified_group" if group_col else "stratified", "by box count")
