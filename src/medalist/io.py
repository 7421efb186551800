"""Atomic file writes: a temp file in the same folder, then a rename, so a killed process never
leaves half a file behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd


def atomic_write(path: Path, write: Callable[[IO[Any]], None], mode: str = "w") -> Path:
    """Call `write(file)` on a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text))


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    return atomic_write(path, lambda f: df.to_csv(f, index=False))


def read_json(path: Path) -> Any:
    """The file's JSON; a damaged file (edited by hand, cut short) is a UserError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        from medalist.errors import UserError

        where = f" (line {exc.lineno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise UserError(
            f"{path} is not valid JSON{where}: restore it from a copy, or redo the step that "
            "wrote it"
        ) from None


def read_user_csv(path: Path, label: str, fix: str = "", **read_csv_kwargs: Any) -> pd.DataFrame:
    """`pd.read_csv(path, **read_csv_kwargs)` of a file the user gave; one that pandas can't parse
    (empty, ragged rows, not text) is a one-line UserError: "<label>: not a readable CSV
    (<pandas' first line>)" and then "; <fix>" when a fix is given."""
    try:
        return pd.read_csv(path, **read_csv_kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        from medalist.errors import UserError

        reason = str(exc).splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        advice = f"; {fix}" if fix else ""
        raise UserError(f"{label}: not a readable CSV ({reason}){advice}") from None


PADDED = r"^\s*[+-]?0\d"  # a number's text with a leading zero: "00123", "007"


OTHER_SEPARATORS = (";", "\t", "|")


def csv_separator(path: Path) -> str:
    """A table's separator: a comma, unless its header line holds none and a semicolon, tab or
    bar instead (a table saved by a spreadsheet where the comma is the decimal mark; a .tsv)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            header = f.readline()
    except OSError:
        return ","
    if "," in header:
        return ","
    return next((sep for sep in OTHER_SEPARATORS if sep in header), ",")


def drop_written_index(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` without its first column when that column has no name and holds distinct whole
    numbers: the row index pandas (`to_csv` with its default index=True, of a whole frame or of
    a subset) or R (`write.csv`) wrote, which would otherwise be read as the id column."""
    if len(frame.columns) < 2 or not str(frame.columns[0]).startswith("Unnamed: 0"):
        return frame
    first = frame.iloc[:, 0]
    if first.empty or not pd.api.types.is_integer_dtype(first) or not first.is_unique:
        return frame
    return frame.drop(columns=frame.columns[0])


def sample_id_column(sample: pd.DataFrame) -> str:
    """The id column of a sample submission: its first column, unless that one repeats (a
    placeholder prediction such as `0` written first) and a later one names each row once."""
    first = str(sample.columns[0])
    if len(sample) > 1 and sample[first].duplicated().any():
        distinct = [str(c) for c in sample.columns[1:] if not sample[c].duplicated().any()]
        if distinct:
            return distinct[0]
    return first


def read_table_csv(path: Path, label: str, fix: str = "", nrows: int | None = None) -> pd.DataFrame:
    """`read_user_csv` of a competition's table, with every column of whole numbers whose text
    is zero-padded ("00123") kept as that text: pandas reads it as 123, and an id read so names
    no image ("123.jpg" for "00123.jpg") and no row of the sample submission. A table separated
    by semicolons or tabs is read so (`csv_separator`), and a row index written into the file is
    dropped (`drop_written_index`)."""
    sep = csv_separator(path)
    frame = drop_written_index(read_user_csv(path, label, fix, nrows=nrows, sep=sep))
    whole = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])]
    if not whole:
        return frame
    text = pd.read_csv(path, usecols=whole, dtype=str, nrows=nrows, keep_default_na=False, sep=sep)
    for column in whole:
        if text[column].str.match(PADDED).any():
            frame[column] = text[column].to_numpy()
    return frame


def read_ids_csv(path: Path) -> pd.DataFrame:
    """One of medalist's own tables (oof.csv, folds.csv), its "id" column read back as the text
    it was written as, so that an id like "00123" stays the id of its image and row."""
    return pd.read_csv(path, dtype={"id": str})


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
