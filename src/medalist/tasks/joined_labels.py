"""Several labels joined in one column ("clear primary", "0 5 25"): the multilabel target of
`competition.label_separator`, read into one 0/1 column per label and written back joined."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from medalist.errors import UserError

MAX_MEAN_LABELS = 6  # labels a cell on average, at most, for a column to read as joined labels


def split_labels(values: pd.Series, separator: str) -> list[list[str]]:
    """Each cell's labels (an empty or missing cell: none); blanks around labels dropped."""
    out: list[list[str]] = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append([])
            continue
        out.append([t.strip() for t in str(value).split(separator) if t.strip()])
    return out


def _order(label: str) -> tuple[int, float, str]:
    """Numbers in numeric order ("2" before "10"), then text."""
    try:
        return 0, float(label), label
    except ValueError:
        return 1, 0.0, label


def label_classes(values: pd.Series, separator: str) -> list[str]:
    """Every label that occurs in the column, numbers in numeric order, then text."""
    seen = {label for labels in split_labels(values, separator) for label in labels}
    return sorted(seen, key=_order)


def joined_classes(
    configured: Sequence[object] | None, values: pd.Series, separator: str
) -> list[str]:
    """The classes of a joined-labels target: `competition.classes` as text when given, else
    every label the column holds (label_classes)."""
    if configured is not None:
        return [str(c) for c in configured]
    return label_classes(values, separator)


def multi_hot(
    values: pd.Series, separator: str, classes: Sequence[object], where: str
) -> np.ndarray:
    """A row per cell, a 0/1 column per class; a label outside `classes` is a UserError."""
    index = {str(c): j for j, c in enumerate(classes)}
    y = np.zeros((len(values), len(index)), dtype=np.float32)
    for i, labels in enumerate(split_labels(values, separator)):
        for label in labels:
            if label not in index:
                raise UserError(
                    f"{where} line {i + 2}: label {label!r} is not among the classes "
                    f"({', '.join(list(index)[:8])}{', ...' if len(index) > 8 else ''}); fix the "
                    "row or competition.classes"
                )
            y[i, index[label]] = 1.0
    return y


def join_labels(
    probs: np.ndarray,
    classes: Sequence[object],
    thresholds: Sequence[float],
    separator: str,
    *,
    never_empty: bool,
) -> list[str]:
    """Each row's labels whose probability reaches its threshold, joined in class order; with
    `never_empty` (every training row had a label) the most probable one when none does."""
    probs = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    on = probs >= np.asarray(thresholds, dtype=np.float64)[None, :]
    if never_empty:
        empty = ~on.any(axis=1)
        on[np.flatnonzero(empty), probs[empty].argmax(axis=1)] = True
    names = [str(c) for c in classes]
    return [separator.join(n for n, keep in zip(names, row, strict=True) if keep) for row in on]


def looks_joined(values: pd.Series, separator: str = " ") -> bool:
    """True when a text column reads as labels joined by `separator`: at least a tenth of the
    cells hold several labels, a few a cell on average (MAX_MEAN_LABELS; free text has more),
    the labels repeat (each in two cells or more on the median, and at most half as many
    labels as cells; file names and free text do not), and they combine: labels found in two
    or more distinct sets of a cell make at least half the labels written. Class names with a
    space ("Ankle boot", "Common Chickweed") fail the last test: each name is always the same
    set of words, and a word two names share ("Common") is a small part of them."""
    text = values.dropna().astype(str)
    if text.empty or pd.api.types.is_numeric_dtype(values):
        return False
    labels = split_labels(text, separator)
    several = sum(len(row) > 1 for row in labels)
    if several < max(2, 0.1 * len(labels)):
        return False
    if np.mean([len(row) for row in labels]) > MAX_MEAN_LABELS:
        return False
    counts = pd.Series([label for row in labels for label in row]).value_counts()
    if len(counts) > 0.5 * len(text) or counts.median() < 2:
        return False
    sets = pd.Series([label for row in {frozenset(row) for row in labels} for label in row])
    combining = sets.value_counts()[lambda n: n >= 2].index
    return bool(counts[counts.index.isin(combining)].sum() >= 0.5 * counts.sum())
