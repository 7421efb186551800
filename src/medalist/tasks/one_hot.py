"""Classes given as one 0/1 column each (healthy, multiple_diseases, rust, scab): one class a
row, trained as `competition.target_type: multiclass` (a softmax over the columns) and submitted
as each column's probability."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from medalist.errors import UserError

FOLD_COLUMN = "class"  # the one column stratified folds balance (another name when taken)


def _zero_one(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray | None:
    """The columns as a float array when every value is 0 or 1 (True/False), else None."""
    try:
        values = frame[list(columns)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return values if np.isin(values, (0.0, 1.0)).all() else None


def is_one_hot(frame: pd.DataFrame, columns: Sequence[str]) -> bool:
    """Whether several 0/1 columns hold exactly one 1 in every row."""
    if len(columns) < 2 or not set(columns) <= set(frame.columns) or frame.empty:
        return False
    values = _zero_one(frame, columns)
    return values is not None and bool((values.sum(axis=1) == 1).all())


def class_index(frame: pd.DataFrame, columns: Sequence[str], where: str) -> np.ndarray:
    """Each row's class: the position of its one 1; a row with none or several, or a value
    other than 0/1, is a UserError naming its line."""
    cols = list(columns)
    values = _zero_one(frame, cols)
    if values is None:
        raw = frame[cols].astype(str)
        bad = ~raw.isin(["0", "1", "0.0", "1.0", "True", "False"])
        row, col = np.argwhere(bad.to_numpy())[0]
        raise UserError(
            f"{where} line {row + 2}: class column {cols[col]!r} holds {raw.iat[row, col]!r}; "
            "one-hot class columns (competition.target_type: multiclass) hold 0 or 1"
        )
    ones = values.sum(axis=1)
    wrong = np.flatnonzero(ones != 1)
    if len(wrong):
        row = int(wrong[0])
        raise UserError(
            f"{where} line {row + 2}: the class columns ({', '.join(cols[:4])}"
            f"{', ...' if len(cols) > 4 else ''}) hold {int(ones[row])} ones; one-hot classes "
            "need exactly one a row: set competition.target_type: multilabel if a row may have "
            "several labels, or fix the row"
        )
    return values.argmax(axis=1).astype(np.int64)


def fold_column(
    frame: pd.DataFrame, columns: Sequence[str], where: str
) -> tuple[pd.DataFrame, str]:
    """The table with one column of class names for stratified folds, and that column's name."""
    name = FOLD_COLUMN
    while name in frame.columns:
        name = f"_{name}"
    names = np.asarray(list(columns), dtype=object)[class_index(frame, columns, where)]
    return frame.assign(**{name: names}), name
