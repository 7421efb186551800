"""Writing a classification submission in the sample submission's shape, and checking it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.tasks.metrics import ranked_k, scores_probabilities

if TYPE_CHECKING:
    from medalist.tasks.classify import ClassifyTask


def _label_values(task: ClassifyTask, preds: np.ndarray) -> np.ndarray:
    k = ranked_k(task.metric.name)
    if k is not None:
        return ranked_labels(task.classes, preds, k)
    return np.asarray(task.classes, dtype=object)[preds.argmax(axis=1)]


def ranked_token(label: object) -> str:
    """A class as one token of a ranked row: blanks inside its name become "_" ("The Eiffel
    Tower" -> "The_Eiffel_Tower"), since the row's labels are split at blanks."""
    return "_".join(str(label).split())


def ranked_labels(
    classes: Sequence[object], preds: np.ndarray, k: int, separator: str = " "
) -> np.ndarray:
    """For MAP@k: each row's k likeliest classes, best first, joined by `separator`."""
    token = ranked_token if separator.isspace() else str
    names = np.asarray([token(c) for c in classes], dtype=object)
    top = np.argsort(-preds, axis=1, kind="stable")[:, :k]
    return np.asarray([separator.join(row) for row in names[top]], dtype=object)


def format_classify_submission(
    task: ClassifyTask, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
) -> pd.DataFrame:
    id_col = task.id_column
    sub_cols = [c for c in sample.columns if c != id_col]
    if set(map(str, ids)) != set(map(str, sample[id_col])) or len(ids) != len(sample):
        raise UserError(
            f"the test ids ({len(ids)}) differ from sample_submission's ({len(sample)}); "
            "competition.test_csv and competition.sample_submission must list the same ids"
        )
    out = pd.DataFrame({id_col: ids.to_numpy()})
    probabilistic = scores_probabilities(task.metric.name)
    if task.kind == "multiclass":
        names = [str(c) for c in task.classes]
        if len(sub_cols) > 1 and set(sub_cols) <= set(names):
            for c in sub_cols:
                out[c] = preds[:, names.index(c)]
        elif len(sub_cols) == 1:
            if probabilistic and len(names) == 2:
                out[sub_cols[0]] = preds[:, 1]
            else:
                out[sub_cols[0]] = _label_values(task, preds)
        else:
            raise UserError(
                f"sample_submission columns {sub_cols} match neither one label column nor the "
                f"classes {names[:6]}; fix competition.sample_submission or competition.classes"
            )
    elif task.kind == "multilabel" and task.separator is not None:
        if len(sub_cols) != 1:
            raise UserError(
                f"sample_submission has {len(sub_cols)} value columns; labels joined by "
                f"{task.separator!r} (competition.label_separator) go in one"
            )
        from medalist.tasks.joined_labels import join_labels

        k = ranked_k(task.metric.name)
        out[sub_cols[0]] = (
            join_labels(
                preds, task.classes, task.thresholds, task.separator, never_empty=task.never_empty
            )
            if k is None
            else ranked_labels(task.classes, preds, k, task.separator)
        )
    elif task.kind == "multilabel":
        missing = [c for c in sub_cols if c not in task.classes]
        if missing:
            raise UserError(
                f"sample_submission column {missing[0]!r} is not a target column; "
                "set competition.target_column to the submission's columns"
            )
        for c in sub_cols:
            j = task.classes.index(c)
            p = preds[:, j]
            out[c] = p if probabilistic else (p >= task.thresholds[j]).astype(int)
    else:
        if len(sub_cols) != 1:
            raise UserError(
                f"sample_submission has {len(sub_cols)} value columns; regression needs 1"
            )
        out[sub_cols[0]] = preds.reshape(-1)
    # The sample's order is the order Kaggle expects.
    order = pd.Index(out[id_col].astype(str)).get_indexer(sample[id_col].astype(str))
    out = out.iloc[order].reset_index(drop=True)
    out[id_col] = sample[id_col].to_numpy()
    out = out[list(sample.columns)]  # the sample's column order too (its id need not be first)
    check_submission(task, out, sample)
    return out


def check_submission(task: ClassifyTask, sub: pd.DataFrame, sample: pd.DataFrame) -> None:
    """Same ids in the same order, same columns, no missing values, valid values."""
    id_col = task.id_column
    if list(sub.columns) != list(sample.columns):
        raise UserError(
            f"submission columns {list(sub.columns)} != sample's {list(sample.columns)}"
        )
    if not (sub[id_col].astype(str).to_numpy() == sample[id_col].astype(str).to_numpy()).all():
        raise UserError("submission ids are not in sample_submission's order")
    values = sub.drop(columns=[id_col])
    if values.isna().any().any():
        col = values.columns[values.isna().any()][0]
        raise UserError(f"submission column {col!r} has missing values; the model produced NaN")
    k = ranked_k(task.metric.name)
    for col in values.columns:
        v = values[col]
        text = not pd.api.types.is_numeric_dtype(v)  # object, or pandas' str dtype
        if not text and task.kind == "multilabel" and ((v < 0) | (v > 1)).any():
            raise UserError(f"submission column {col!r} has values outside [0, 1]")
        if task.kind == "multiclass" and text and k is not None:
            allowed = {ranked_token(c) for c in task.classes}
            for row in v.astype(str):
                labels = row.split()
                unknown = [x for x in labels if x not in allowed]
                if unknown or not labels or len(labels) > k:
                    raise UserError(
                        f"submission column {col!r} row {row!r}: "
                        + (f"unknown label {unknown[0]!r}" if unknown else f"not 1 to {k} labels")
                    )
        elif task.kind == "multiclass" and text:
            allowed = {str(c) for c in task.classes}
            bad = ~v.astype(str).isin(allowed)
            if bad.any():
                raise UserError(f"submission column {col!r} has unknown label {v[bad].iloc[0]!r}")
        if getattr(task, "separator", None) is not None:  # joined labels (classify)
            from medalist.tasks.joined_labels import split_labels

            allowed = {str(c) for c in task.classes}
            unknown = [
                x for row in split_labels(v, task.separator) for x in row if x not in allowed
            ]
            if unknown:
                raise UserError(f"submission column {col!r} has unknown label {unknown[0]!r}")
