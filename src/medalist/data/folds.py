"""Cross-validation folds: assign every training row a fold, summarise, save and load them.

`make_folds` turns a table into one fold number (0..n_splits-1) per row with the splitters
the field trusts; no splitting is written by hand:

- ``kfold``: scikit-learn ``KFold(shuffle=True, random_state=seed)``. Fold sizes differ by at
  most one row.
- ``stratified``: scikit-learn ``StratifiedKFold(shuffle=True, random_state=seed)`` on the one
  target column. A regression-like target (a float column with more than 10 distinct values)
  is stratified on its quantile bins instead: ``pd.qcut`` into up to 10 bins, fewer when the
  table is small, so that every bin holds at least ``n_splits`` rows. Class shares per fold
  stay within a few rows of the overall shares (the tests hold them to 0.05 absolute).
- ``group``: scikit-learn ``GroupKFold``; a group (patient, photographer, date) never spans
  two folds. Where the installed scikit-learn takes ``shuffle`` (1.6 and later) it runs with
  ``shuffle=True, random_state=seed`` so the seed matters; that variant deals out an equal
  *number of groups* per fold, so folds differ in rows when groups differ in size. Older
  scikit-learn balances rows per fold and ignores the seed.
- ``stratified_group``: scikit-learn ``StratifiedGroupKFold(shuffle=True,
  random_state=seed)``: groups stay whole and class shares are kept as well as whole groups
  allow. On a table of about 300 rows in 60 groups each class's share in every fold stays
  within 0.10 absolute of its overall share (the tolerance the tests hold it to).
- ``multilabel``: iterative-stratification's ``MultilabelStratifiedKFold(shuffle=True,
  random_state=seed)`` on two or more 0/1 target columns; each label's positive rate is kept
  in every fold.

Input that cannot make sound folds (missing or NaN group column, NaN targets, too many splits
for the rows, groups or smallest class, non-0/1 multilabel targets) raises `UserError` with
one line naming the file, the column or class, and the fix.

Folds are saved as ``<project>/folds/<folds_file_name(...)>``, a CSV with columns ``id,fold``
written atomically, and read back aligned to the training table with `read_folds`.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from medalist.errors import UserError
from medalist.io import read_user_csv, write_csv

SCHEMES = ("kfold", "stratified", "group", "stratified_group", "multilabel")
GROUP_SCHEMES = ("group", "stratified_group")
MAX_QUANTILE_BINS = 10
REGRESSION_MIN_UNIQUE = 10
MAX_CLASSES_SHOWN = 10


# ----------------------------------------------------------------------------- helpers


def _few(names: list[Any], n: int = 8) -> str:
    """Up to ``n`` names joined by commas, with a count of the rest."""
    shown = ", ".join(str(x) for x in names[:n])
    rest = len(names) - n
    return f"{shown}, ... ({rest} more)" if rest > 0 else shown


def _is_regression_like(col: pd.Series) -> bool:
    """A float column with more than ``REGRESSION_MIN_UNIQUE`` distinct values."""
    return bool(
        pd.api.types.is_float_dtype(col) and col.nunique(dropna=True) > REGRESSION_MIN_UNIQUE
    )


def _require_column(df: pd.DataFrame, column: str, key: str, where: str) -> pd.Series:
    if column not in df.columns:
        raise UserError(
            f"{where}: column '{column}' ({key}) is not in the table; available columns: "
            f"{_few(list(df.columns))}; set {key} to one of them"
        )
    return df[column]


def _no_nan(col: pd.Series, key: str, where: str, fix: str) -> None:
    missing = col.isna()
    if missing.any():
        first = col.index[missing.to_numpy()][0]
        raise UserError(
            f"{where}: column '{col.name}' ({key}) has {int(missing.sum())} empty value(s) "
            f"(first at row {first}); {fix}"
        )


def _single_target(target_columns: list[str], scheme: str) -> str:
    if not target_columns:
        raise UserError(
            f"cv.scheme {scheme} needs a target column to stratify on; set "
            "competition.target_column, or use cv.scheme: kfold"
        )
    if len(target_columns) > 1:
        raise UserError(
            f"cv.scheme {scheme} stratifies on one target column but competition.target_column "
            f"lists {len(target_columns)} ({_few(target_columns)}); use cv.scheme: multilabel "
            "for 0/1 label columns"
        )
    return target_columns[0]


def _quantile_bins(col: pd.Series, n_splits: int) -> pd.Series:
    """Quantile bins of a regression-like target, each (where possible) >= ``n_splits`` rows."""
    q = min(MAX_QUANTILE_BINS, len(col) // n_splits)
    while q >= 2:
        bins = pd.qcut(col, q=q, labels=False, duplicates="drop")
        if bins.value_counts().min() >= n_splits:
            return bins.astype(int)
        q -= 1
    return pd.Series(0, index=col.index)


def _strata(df: pd.DataFrame, target: str, n_splits: int, scheme: str, where: str) -> np.ndarray:
    """Integer class codes to stratify on, after checking NaNs and the smallest class."""
    col = _require_column(df, target, "competition.target_column", where)
    _no_nan(
        col,
        "competition.target_column",
        where,
        f"fill or drop those rows, or use cv.scheme: {'group' if 'group' in scheme else 'kfold'}",
    )
    if _is_regression_like(col):
        col = _quantile_bins(col, n_splits)
    counts = col.value_counts()
    smallest, n_smallest = counts.index[-1], int(counts.iloc[-1])
    if n_smallest < n_splits:
        other = "group" if scheme == "stratified_group" else "kfold"
        rare = int((counts < n_splits).sum())
        others = f" ({rare} classes have fewer)" if rare > 1 else ""
        fix = (
            f"lower cv.n_splits to {n_smallest}"
            if n_smallest >= 2
            else "drop or merge the rows of classes seen once"
        )
        raise UserError(
            f"{where}: class '{smallest}' of column '{target}' has only {n_smallest} row(s), "
            f"fewer than cv.n_splits={n_splits}{others}; {fix}, or use cv.scheme: {other}"
        )
    codes, _ = pd.factorize(col)
    return codes


def _groups(
    df: pd.DataFrame, group_column: str | None, n_splits: int, scheme: str, where: str
) -> np.ndarray:
    """Integer group codes, after checking the column is set, present, complete and big enough."""
    if group_column is None:
        raise UserError(
            f"cv.scheme {scheme} needs competition.group_column (e.g. a patient or "
            f"photographer column of {where}); set it, or use cv.scheme: "
            f"{'stratified' if scheme == 'stratified_group' else 'kfold'}"
        )
    col = _require_column(df, group_column, "competition.group_column", where)
    _no_nan(
        col,
        "competition.group_column",
        where,
        "fill them (e.g. one new group per row) or drop those rows",
    )
    codes, uniques = pd.factorize(col)
    if n_splits > len(uniques):
        raise UserError(
            f"{where}: column '{group_column}' (competition.group_column) has only "
            f"{len(uniques)} distinct group(s), fewer than cv.n_splits={n_splits}; lower "
            f"cv.n_splits to {max(len(uniques), 2)} or use cv.scheme: kfold"
        )
    return codes


def _multilabel_matrix(df: pd.DataFrame, target_columns: list[str], where: str) -> np.ndarray:
    if len(target_columns) < 2:
        raise UserError(
            "cv.scheme multilabel needs two or more 0/1 target columns but "
            f"competition.target_column names {len(target_columns)} "
            f"({_few(target_columns) or 'none'}); list the label columns, or use "
            "cv.scheme: stratified for one target"
        )
    for name in target_columns:
        col = _require_column(df, name, "competition.target_column", where)
        _no_nan(col, "competition.target_column", where, "fill them with 0 or 1")
        bad = ~col.isin([0, 1])
        if bad.any():
            raise UserError(
                f"{where}: target column '{name}' holds '{col[bad].iloc[0]}' (row "
                f"{col.index[bad.to_numpy()][0]}) but cv.scheme "
                "multilabel needs 0/1 values; encode it as 0/1, or use cv.scheme: stratified "
                "for a single multi-class target"
            )
    return df[target_columns].to_numpy(dtype=np.int8)


def _group_kfold(n_splits: int, seed: int) -> Any:
    from sklearn.model_selection import GroupKFold

    if "shuffle" in inspect.signature(GroupKFold).parameters:
        return GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return GroupKFold(n_splits=n_splits)  # scikit-learn < 1.6: balanced by rows, seedless


# ----------------------------------------------------------------------------- folds


def make_folds(
    df: pd.DataFrame,
    *,
    scheme: str,
    n_splits: int,
    seed: int,
    target_columns: list[str],
    group_column: str | None,
    where: str = "train.csv",
) -> np.ndarray:
    """Assign each row of ``df`` a fold number in ``0..n_splits-1``.

    Args:
        df: the training table, one row per sample.
        scheme: ``kfold``, ``stratified``, ``group``, ``stratified_group`` or ``multilabel``.
        n_splits: number of folds (``cv.n_splits``).
        seed: random seed (``cv.seed``); the same seed gives the same folds.
        target_columns: target column(s) (``competition.target_column``); used by the
            stratified schemes and multilabel.
        group_column: group column (``competition.group_column``); needed by group schemes.
        where: the file the table came from, for error messages.

    Returns:
        An int64 array of length ``len(df)``.

    Raises:
        UserError: when the table cannot make sound folds under this scheme.
    """
    from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold

    if scheme not in SCHEMES:
        raise UserError(f"cv.scheme '{scheme}' is not known; use one of {', '.join(SCHEMES)}")
    if n_splits < 2:
        raise UserError(f"cv.n_splits={n_splits} is too small; use 2 or more (5 is usual)")
    n_rows = len(df)
    if n_splits > n_rows:
        raise UserError(
            f"{where}: cv.n_splits={n_splits} is larger than the {n_rows} row(s) of the table; "
            f"lower cv.n_splits to at most {n_rows}, or check that {where} is complete"
        )

    x = np.zeros((n_rows, 1))
    y: np.ndarray | None = None
    groups: np.ndarray | None = None
    if scheme == "kfold":
        splitter: Any = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    elif scheme == "stratified":
        y = _strata(df, _single_target(target_columns, scheme), n_splits, scheme, where)
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    elif scheme == "group":
        groups = _groups(df, group_column, n_splits, scheme, where)
        splitter = _group_kfold(n_splits, seed)
    elif scheme == "stratified_group":
        groups = _groups(df, group_column, n_splits, scheme, where)
        y = _strata(df, _single_target(target_columns, scheme), n_splits, scheme, where)
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        y = _multilabel_matrix(df, target_columns, where)
        splitter = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)

    folds = np.full(n_rows, -1, dtype=np.int64)
    for fold, (_, valid) in enumerate(splitter.split(x, y, groups)):
        folds[valid] = fold
    if (folds < 0).any():  # a splitter that leaves rows out would be a bug of ours
        raise RuntimeError(f"{scheme} folds left {(folds < 0).sum()} row(s) without a fold")
    return folds


def fold_summary(
    df: pd.DataFrame,
    folds: np.ndarray,
    target_columns: list[str],
    group_column: str | None,
) -> pd.DataFrame:
    """One row per fold: what each fold validates on.

    Columns: ``fold``, ``n_train``, ``n_valid``; then, for one classification target, the
    share of each class among the fold's validation rows (``share:<class>``, the 10 most
    common classes overall, the rest summed into ``share:other``); for a regression-like
    target its validation mean (``mean:<column>``); for several (multilabel) targets each
    label's positive rate in validation (``pos:<label>``, the 10 most common labels); and
    ``groups``, the number of distinct groups in validation, when ``group_column`` is given.
    """
    folds = np.asarray(folds)
    targets = [c for c in target_columns if c in df.columns]
    rows: list[dict[str, Any]] = []

    classify = len(targets) == 1 and not _is_regression_like(df[targets[0]])
    shown: list[Any] = []
    has_other = False
    if classify:
        counts = df[targets[0]].value_counts(dropna=False)
        shown = list(counts.index[:MAX_CLASSES_SHOWN])
        has_other = len(counts) > len(shown)
    labels: list[str] = []
    if len(targets) > 1:
        numeric = [c for c in targets if pd.api.types.is_numeric_dtype(df[c])]
        rates = df[numeric].astype(float).mean().sort_values(ascending=False, kind="stable")
        labels = list(rates.index[:MAX_CLASSES_SHOWN])
    has_groups = group_column is not None and group_column in df.columns

    for fold in np.unique(folds):
        valid = folds == fold
        row: dict[str, Any] = {
            "fold": int(fold),
            "n_train": int((~valid).sum()),
            "n_valid": int(valid.sum()),
        }
        if classify:
            part = df[targets[0]][valid]
            n = max(len(part), 1)
            for cls in shown:
                hits = part.isna() if pd.isna(cls) else part == cls
                row[f"share:{cls}"] = float(hits.sum()) / n
            if has_other:
                row["share:other"] = float((~part.isin(shown)).sum()) / n
        elif len(targets) == 1:
            row[f"mean:{targets[0]}"] = float(df[targets[0]][valid].mean())
        for label in labels:
            row[f"pos:{label}"] = float(df[label][valid].astype(float).mean())
        if has_groups:
            row["groups"] = int(df[group_column][valid].nunique(dropna=False))
        rows.append(row)
    return pd.DataFrame(rows)


def render_fold_table(summary: pd.DataFrame) -> Table:
    """A rich table of `fold_summary`, shares and positive rates as percentages."""
    table = Table(title="Folds")
    for name in summary.columns:
        table.add_column(str(name), justify="right")
    for _, row in summary.iterrows():
        cells = []
        for name in summary.columns:
            value = row[name]
            if str(name).startswith(("share:", "pos:")):
                cells.append(f"{100 * float(value):.1f}%")
            elif str(name).startswith("mean:"):
                cells.append(f"{float(value):.4g}")
            else:
                cells.append(str(int(value)) if pd.notna(value) else "")
        table.add_row(*cells)
    return table


# ----------------------------------------------------------------------------- files


def folds_file_name(scheme: str, n_splits: int, seed: int, group_column: str | None) -> str:
    """File name of a fold assignment in ``<project>/folds/``, e.g. ``stratified-k5-s42.csv``.

    Group schemes include the group column: ``group-patient_id-k5-s42.csv``.
    """
    parts = [scheme]
    if scheme in GROUP_SCHEMES and group_column:
        parts.append(re.sub(r"[^A-Za-z0-9_.]+", "_", group_column).strip("_.") or "group")
    parts += [f"k{n_splits}", f"s{seed}"]
    return "-".join(parts) + ".csv"


def write_folds(path: Path, ids: pd.Series, folds: np.ndarray) -> None:
    """Write ``id,fold`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    if len(ids) != len(folds):
        raise ValueError(f"{len(ids)} ids but {len(folds)} folds")
    frame = pd.DataFrame({"id": np.asarray(ids), "fold": np.asarray(folds, dtype=np.int64)})
    write_csv(path, frame)


def read_folds(path: Path, ids: pd.Series, id_column_name: str) -> np.ndarray:
    """Read a folds file back, aligned to ``ids`` (the training table's id column).

    Raises:
        UserError: the file is missing or malformed, or its ids do not match ``ids``
            (how many are missing and extra), with the advice to rerun ``medalist folds``.
    """
    path = Path(path)
    rerun = "rerun `medalist folds CONFIG` to make them again"
    if not path.is_file():
        raise UserError(f"{path}: folds file not found; {rerun}")
    frame = read_user_csv(path, f"folds file {path}", rerun, dtype=str, keep_default_na=False)
    id_col = "id" if "id" in frame.columns else id_column_name
    if id_col not in frame.columns or "fold" not in frame.columns:
        raise UserError(
            f"{path}: needs columns 'id' and 'fold', has {_few(list(frame.columns))}; {rerun}"
        )
    fold_values = pd.to_numeric(frame["fold"], errors="coerce")
    if fold_values.isna().any() or (fold_values < 0).any() or (fold_values % 1 != 0).any():
        raise UserError(f"{path}: column 'fold' must hold whole numbers 0, 1, ...; {rerun}")
    frame = frame.assign(fold=fold_values.astype(np.int64))
    per_id = frame.drop_duplicates([id_col, "fold"])
    clash = per_id[id_col].duplicated()
    if clash.any():
        raise UserError(
            f"{path}: id {per_id[id_col][clash].iloc[0]!r} has two different folds; {rerun}"
        )
    mapping = dict(zip(per_id[id_col], per_id["fold"], strict=True))

    wanted = ids.astype(str)
    wanted_set = set(wanted)
    missing = sorted(wanted_set - mapping.keys())
    extra = sorted(mapping.keys() - wanted_set)
    if missing or extra:
        example = f"missing e.g. {missing[0]!r}" if missing else f"extra e.g. {extra[0]!r}"
        raise UserError(
            f"{path}: folds do not match column '{id_column_name}' of the training table: "
            f"{len(missing)} id(s) missing from the folds file, {len(extra)} extra "
            f"({example}); the data changed since the folds were made; {rerun}"
        )
    return wanted.map(mapping).to_numpy(dtype=np.int64)
