"""Images in subfolders named by other columns of the table: train_images/<patient_id>/
<image_id>.dcm (RSNA's mammograms, scans by study and series), or by the id's first characters:
train/a/b/c/abc123.jpg (Google Landmarks). `medalist new` finds the first
id's file below a top folder, reads which columns name the folders on its way, and writes
`competition.image_pattern` ("{patient_id}/{image_id}.dcm") once the first rows all resolve."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medalist.workflows.scaffold.images import IMAGE_EXTS, N_CHECK

MAX_DEPTH = 4  # folders below the top folder that the search walks into
MAX_ENTRIES = 50_000  # files and folders the search looks at, at most, per top folder


@dataclass
class Nested:
    folder: Path  # the top folder (competition.image_dir)
    pattern: str  # competition.image_pattern
    ext: str  # the files' suffix, as spelt on disk


def _find_stem(top: Path, stem: str) -> Path | None:
    """The first image file below `top` (not directly in it) whose stem is `stem`."""
    seen = 0
    for root, dirs, files in os.walk(top):
        depth = len(Path(root).relative_to(top).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        seen += len(files) + len(dirs)
        if depth > 0:
            for name in files:
                path = Path(name)
                if path.stem == stem and path.suffix.lower() in IMAGE_EXTS:
                    return Path(root) / name
        if seen > MAX_ENTRIES:
            return None
    return None


def _pattern(table: pd.DataFrame, id_col: str, parts: Sequence[str], ext: str) -> str | None:
    """The pattern whose folders are the first row's values of other columns, if every folder
    on the way is one."""
    first = {str(c): str(v) for c, v in table.iloc[0].items()}
    image_id = first[id_col]
    names = []
    for k, part in enumerate(parts):
        column = next((c for c, v in first.items() if v == part and c != id_col), None)
        if column is not None:
            names.append("{" + column + "}")
        elif len(part) == 1 and k < len(image_id) and image_id[k] == part:
            names.append("{" + id_col + f"[{k}]" + "}")  # train/a/b/c/abc..jpg
        else:
            return None
    return "/".join([*names, "{" + id_col + "}" + ext])


def resolves(folder: Path, pattern: str, table: pd.DataFrame) -> bool:
    """Whether the first rows of `table` name files under `folder` through `pattern`."""
    from medalist.data.tables import pattern_names
    from medalist.errors import UserError

    try:
        names = pattern_names(pattern, table.head(N_CHECK))
    except (UserError, ValueError, IndexError):  # a column the table lacks, a bad format
        return False
    return not names.empty and all((folder / n).is_file() for n in names)


def find_nested(tops: Sequence[Path], table: pd.DataFrame, id_col: str) -> Nested | None:
    """The top folder and pattern of images kept in subfolders named by columns, if any."""
    if table.empty or id_col not in table.columns:
        return None
    stem = str(table[id_col].iloc[0])
    for top in tops:
        if not top.is_dir():
            continue
        hit = _find_stem(top, stem)
        if hit is None:
            continue
        parts = hit.parent.relative_to(top).parts
        pattern = _pattern(table, id_col, parts, hit.suffix)
        if pattern is not None and resolves(top, pattern, table):
            return Nested(top, pattern, hit.suffix)
    return None
