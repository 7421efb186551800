"""Ids that join image and class in one column (Severstal's `ImageId_ClassId`,
`competition.id_class_separator`): split into the image id (kept in `competition.id_column`)
and `competition.class_column` when read, joined again in the submission, as the sample has
them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medalist.config.schema import Config
from medalist.errors import UserError


def split_ids(cfg: Config, df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """`df` with its joined ids split at the last separator: the image id in the id column and
    the class in a new class column after it; `df` itself when no separator is set."""
    comp = cfg.competition
    sep, id_col, cls_col = comp.id_class_separator, comp.id_column, comp.class_column
    if sep is None or comp.task != "segment":
        return df
    if cls_col in df.columns:
        raise UserError(
            f"{path}: has a column {cls_col!r} already, and competition.id_class_separator "
            f"splits the ids into one of that name; rename competition.class_column"
        )
    values = df[id_col].astype(str)
    parts = values.str.rpartition(sep)
    bad = (parts[0] == "") | (parts[2] == "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"{path} line {row + 2}: id {values.iloc[row]!r} is not an image id and a class "
            f"joined by {sep!r} (competition.id_class_separator); fix the row, or the key"
        )
    out = df.assign(**{id_col: parts[0].to_numpy()})
    out.insert(list(out.columns).index(id_col) + 1, cls_col, parts[2].to_numpy())
    return out


def join_ids(cfg: Config, sub: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """A submission filled on the split sample, with its ids joined again in the sample's
    columns; `sub` itself when no separator is set."""
    comp = cfg.competition
    if comp.id_class_separator is None or comp.task != "segment":
        return sub
    joined = sub[comp.id_column].astype(str) + comp.id_class_separator
    out = sub.assign(**{comp.id_column: joined + sub[comp.class_column].astype(str)})
    return out[list(sample.columns)]
