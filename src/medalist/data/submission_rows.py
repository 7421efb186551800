"""A submission row per group of images (a patient, a breast, a study), as Mayo Clinic STRIP AI
(a row per `patient_id`) and RSNA Screening Mammography (a row per `{patient_id}_{laterality}`)
score: `competition.submission_by` names the group, a column of the tables or a pattern of
their columns, and `competition.submission_reduce` how the images' predictions combine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from medalist.io import sample_id_column

if TYPE_CHECKING:
    from medalist.config.schema import Config


def is_pattern(spec: str) -> bool:
    """Whether `competition.submission_by` is a pattern of columns ("{patient_id}_{laterality}")
    rather than the name of one column."""
    return "{" in spec


def group_keys(table: pd.DataFrame, spec: str, table_name: str) -> pd.Series:
    """Each row's submission row: the column `spec` names, or the pattern filled in (text)."""
    from medalist.data.tables import pattern_columns, require_named_columns

    columns = pattern_columns(spec) if is_pattern(spec) else [spec]
    require_named_columns(
        table, columns, f"competition.submission_by {spec!r}", table_name,
        'name a column both tables hold, or a pattern of them such as "{patient_id}_{laterality}"',
    )  # fmt: skip
    if not is_pattern(spec):
        return table[spec].astype(str).reset_index(drop=True)
    rows = table[columns].astype(str).to_dict("records")
    return pd.Series([spec.format(**row) for row in rows], dtype=object)


def combine_rows(keys: pd.Series, values: np.ndarray, reduce: str) -> tuple[pd.Series, np.ndarray]:
    """(the distinct keys in their first order, each key's rows' values combined: their mean,
    or their max)."""
    codes, uniques = pd.factorize(keys.astype(str), sort=False)
    values = np.asarray(values, dtype=np.float64)
    shape = (len(uniques), *values.shape[1:])
    if reduce == "max":
        out = np.full(shape, -np.inf)
        np.maximum.at(out, codes, values)
    else:
        out = np.zeros(shape)
        np.add.at(out, codes, values)
        counts = np.bincount(codes, minlength=len(uniques)).astype(np.float64)
        out /= counts.reshape(-1, *([1] * (values.ndim - 1)))
    return pd.Series(uniques, dtype=object), out


def first_per_key(keys: pd.Series, values: np.ndarray) -> np.ndarray:
    """Each key's first row's value, in the keys' first order (a group's class label)."""
    codes, _ = pd.factorize(keys.astype(str), sort=False)
    _, first = np.unique(codes, return_index=True)  # codes count up in the keys' first order
    return np.asarray(values)[first]


def sample_key_column(cfg: Config, sample: pd.DataFrame) -> str:
    """The sample's id column: competition.id_column, or with submission_by the group's."""
    spec = cfg.competition.submission_by
    if spec is None:
        return cfg.competition.id_column
    if not is_pattern(spec) and spec in sample.columns:
        return spec
    return sample_id_column(sample)
