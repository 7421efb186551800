"""`medalist train CONFIG --exclude FILE`: train without the rows a CSV lists (by its `id`
column), e.g. the suspect labels of `medalist labels` (`RUN/analysis/label_issues.csv`).

The rows leave the train table before the run starts, so they are in no fold's training or
validation set, in neither oof.csv nor folds.csv. The other rows keep the folds they have in the
project's folds file, so the run's folds are the original run's minus the excluded rows. The
ids are recorded in the run as `excluded.csv`, which `--resume` reads back: a resumed run keeps
its exclusion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from medalist.errors import UserError
from medalist.io import read_user_csv, write_csv

EXCLUDED_FILE = "excluded.csv"


def read_excluded_ids(path: Path, train_ids: pd.Series, id_column: str) -> list[str]:
    """The distinct ids (as text) of the `id` (or `id_column`) column of `path`, each checked to
    be a row of the train table."""
    path = Path(path)
    fix = "give a CSV with an 'id' column, e.g. runs/<name>/analysis/label_issues.csv"
    if not path.is_file():
        raise UserError(f"--exclude {path}: file not found; {fix}")
    table = read_user_csv(path, f"--exclude {path}", fix, dtype=str, keep_default_na=False)
    column = "id" if "id" in table.columns else id_column
    if column not in table.columns:
        have = ", ".join(map(str, table.columns[:8])) or "none"
        raise UserError(f"--exclude {path}: no 'id' column (its columns: {have}); {fix}")
    ids = list(dict.fromkeys(table[column]))
    if not ids:
        raise UserError(f"--exclude {path}: it lists no ids, so there is nothing to exclude")
    known = set(train_ids.astype(str))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UserError(
            f"--exclude {path}: {len(unknown)} of its {len(ids)} ids are not in the train table, "
            f"first {unknown[0]!r}; is it from another competition?"
        )
    return ids


def exclude_rows(cfg: Any, prepared: Any, exclude: Path | None, run: Any | None) -> list[str]:
    """Drop from the prepared train table, its image paths and folds the rows listed in
    `exclude` (a new run) or recorded in `run` (a resumed one); return the ids dropped."""
    from medalist.console import console
    from medalist.data.folds import write_folds
    from medalist.workflows.train import folds_path

    if run is not None:
        if exclude is not None:
            raise UserError(
                "--resume keeps the exclusion the run started with; drop --exclude (or start a "
                "new run with it)"
            )
        recorded = run.file(EXCLUDED_FILE)
        if not recorded.is_file():
            return []
        exclude = recorded
    if exclude is None:
        return []
    id_column = cfg.competition.id_column
    train = prepared.tables.train
    ids = read_excluded_ids(exclude, train[id_column], id_column)
    keep = ~train[id_column].astype(str).isin(set(ids)).to_numpy()
    if not keep.any():
        raise UserError(f"--exclude {exclude}: it lists every training row; nothing would be left")
    empty = sorted(set(range(cfg.cv.n_splits)) - set(prepared.folds[keep].tolist()))
    if empty:
        raise UserError(
            f"--exclude {exclude}: fold {empty[0]} would have no rows left to validate on; "
            "exclude fewer rows"
        )
    # The project's folds file is written with every row, as a run without --exclude writes it.
    if not folds_path(cfg).is_file():
        write_folds(folds_path(cfg), train[id_column], prepared.folds)
    prepared.tables.train = train[keep].reset_index(drop=True)
    paths = prepared.tables.train_paths
    prepared.tables.train_paths = [p for p, k in zip(paths, keep, strict=True) if k]
    prepared.folds = prepared.folds[keep]
    console.print(f"excluding {len(ids)} training rows listed in {exclude}")
    return ids


def record_exclusion(run: Any, ids: list[str]) -> None:
    """Write the excluded ids into the run (`excluded.csv`), for --resume and for the record."""
    if ids:
        write_csv(run.file(EXCLUDED_FILE), pd.DataFrame({"id": ids}))
