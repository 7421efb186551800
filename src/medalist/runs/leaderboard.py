"""The leaderboard ledger: public and private LB scores of runs' submissions.

One CSV in the project, ``<project>/leaderboard.csv`` (columns in `COLUMNS`), one row per run,
rewritten atomically on every change. Scores come from `record_score` (typed by hand) or from
`import_submissions`, which reads the CSV that ``kaggle competitions submissions -v`` writes
(columns fileName, date, description, status, publicScore, privateScore) and matches each row
to the run whose name appears in its description.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from medalist.errors import UserError
from medalist.io import read_user_csv, write_csv

LEADERBOARD_FILE = "leaderboard.csv"
COLUMNS = ["run", "public", "private", "date", "comment", "source"]
KAGGLE_COLUMNS = ["fileName", "date", "description", "status", "publicScore", "privateScore"]


def leaderboard_path(project: Path) -> Path:
    return Path(project) / LEADERBOARD_FILE


def run_names(project: Path) -> list[str]:
    """Names of the run directories of a project (those holding config.yaml)."""
    runs = Path(project) / "runs"
    return sorted(p.parent.name for p in runs.glob("*/config.yaml")) if runs.is_dir() else []


def read_leaderboard(project: Path) -> pd.DataFrame:
    """The ledger (empty with the right columns when there is none yet)."""
    path = leaderboard_path(project)
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    text = {"run": str, "comment": str, "source": str, "date": str}
    df = read_user_csv(path, f"ledger {path}", "fix or remove the file", dtype=text)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r}; the ledger needs {', '.join(COLUMNS)}")
    df[["comment", "source", "date"]] = df[["comment", "source", "date"]].fillna("")
    return df[COLUMNS]


def _check_score(value: float, what: str) -> float:
    if value is None or not math.isfinite(float(value)):
        raise UserError(f"{what} {value!r}: give the score as a finite number, e.g. 0.8123")
    return float(value)


def _upsert(
    board: pd.DataFrame,
    run: str,
    public: float | None,
    private: float | None,
    date: str,
    comment: str | None,
    source: str,
) -> pd.DataFrame:
    board = board.copy()
    hit = board.index[board["run"] == run]
    if len(hit) == 0:
        row = {"run": run, "public": public, "private": private, "date": date}
        row.update({"comment": comment or "", "source": source})
        return pd.concat([board, pd.DataFrame([row])], ignore_index=True)[COLUMNS]
    i = hit[0]
    if public is not None:
        board.loc[i, "public"] = public
    if private is not None:
        board.loc[i, "private"] = private
    board.loc[i, "date"] = date
    board.loc[i, "source"] = source
    if comment:
        board.loc[i, "comment"] = comment
    return board


def record_score(
    project: Path,
    run: str,
    score: float,
    *,
    private: bool = False,
    comment: str | None = None,
) -> pd.DataFrame:
    """Record a public (or, with `private`, a private) LB score for `run`; returns the ledger."""
    names = run_names(project)
    if run not in names:
        import difflib

        near = difflib.get_close_matches(run, names, n=1)
        hint = f"did you mean {near[0]}?" if near else "see medalist runs"
        raise UserError(f"run {run!r} is not under {Path(project) / 'runs'}: {hint}")
    score = _check_score(score, "SCORE")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    board = _upsert(
        read_leaderboard(project),
        run,
        None if private else score,
        score if private else None,
        now,
        comment,
        "manual",
    )
    write_csv(leaderboard_path(project), board)
    return board


def match_run(description: str, names: list[str]) -> str | None:
    """The longest run name that appears in `description` as a whole word, if any."""
    text = str(description or "")
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"(?<![A-Za-z0-9._-]){re.escape(name)}(?![A-Za-z0-9._-])", text):
            return name
    return None


@dataclass
class ImportResult:
    """Rows of a Kaggle submissions CSV: which matched a run, which did not and why."""

    matched: list[tuple[str, str]] = field(default_factory=list)  # (run, description)
    unmatched: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (description, status)
    board: pd.DataFrame | None = None


def _score_or_none(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def import_submissions(project: Path, csv_path: Path) -> ImportResult:
    """Read `kaggle competitions submissions -v` output and record each run's latest scores."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(f"--import {csv_path}: file not found")
    subs = read_user_csv(
        csv_path,
        f"--import {csv_path}",
        "give the CSV of `kaggle competitions submissions -v`",
        dtype=str,
        keep_default_na=False,
    )
    need = ["description", "publicScore"]
    missing = [c for c in need if c not in subs.columns]
    if missing:
        raise UserError(
            f"--import {csv_path}: no column {missing[0]!r}; expected the CSV of "
            f"`kaggle competitions submissions -v` ({', '.join(KAGGLE_COLUMNS)})"
        )
    names = run_names(project)
    result = ImportResult()
    board = read_leaderboard(project)
    subs = subs.assign(_when=pd.to_datetime(subs.get("date", ""), errors="coerce", utc=True))
    subs = subs.sort_values("_when", kind="stable", na_position="first")
    for row in subs.itertuples(index=False):
        desc, status = str(row.description), str(getattr(row, "status", "") or "")
        if status and "complete" not in status.lower():
            result.skipped.append((desc, status))
            continue
        run = match_run(desc, names)
        if run is None:
            result.unmatched.append(desc)
            continue
        public = _score_or_none(row.publicScore)
        private = _score_or_none(getattr(row, "privateScore", None))
        if public is None and private is None:
            result.skipped.append((desc, "no score"))
            continue
        when = str(getattr(row, "date", "") or "")
        board = _upsert(board, run, public, private, when, desc, "kaggle")
        result.matched.append((run, desc))
    write_csv(leaderboard_path(project), board)
    result.board = board
    return result
