"""The competition's tables (train, test, sample submission) and their checks.

Every check fails with a UserError that names the file, the row or column, and how to fix it,
before anything is trained or written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from medalist.config.schema import Config
from medalist.data.hdf5_images import is_hdf5
from medalist.data.mask_files import is_file_sample, read_file_sample
from medalist.errors import UserError
from medalist.io import read_table_csv

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def read_csv(path: Path | None, what: str, key: str) -> pd.DataFrame:
    """Read a CSV named by config key `key`; a missing or unreadable file is a UserError."""
    if path is None:
        raise UserError(f"{key} is not set: name the {what} file in the config")
    if not path.is_file():
        raise UserError(f"{what} {path} not found: fix {key} in the config or add the file")
    return read_table_csv(path, f"{what} {path}")


def _require_columns(df: pd.DataFrame, columns: list[str], path: Path, key: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:8]))
        raise UserError(f"{path}: no column {missing[0]!r} (config {key}); the file has: {have}")


def _check_unique_ids(df: pd.DataFrame, id_col: str, path: Path) -> None:
    dup = df[id_col][df[id_col].duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]
        rows = (np.flatnonzero(df[id_col].to_numpy() == first) + 2).tolist()[:3]
        raise UserError(
            f"{path}: {dup.nunique()} duplicate id(s) in column {id_col!r}, first {first!r} "
            f"on lines {rows}; ids must be unique"
        )


@dataclass
class Tables:
    """The loaded train table (checked) and the test ids in submission order."""

    train: pd.DataFrame
    train_paths: list[Path]
    test: pd.DataFrame | None
    test_paths: list[Path] | None
    sample: pd.DataFrame | None


def load_train(cfg: Config) -> pd.DataFrame:
    """train.csv with id, targets and (optional) group column checked."""
    comp = cfg.competition
    if comp.task == "detect":  # one row per box: read into one row per image with its boxes
        from medalist.data.boxes import load_box_train

        return load_box_train(cfg)
    path = cfg.path(comp.train_csv)
    for key in ("mask_dir", "class_column"):
        if getattr(comp, key) is not None and comp.task != "segment":
            raise UserError(
                f"competition.{key} is set but competition.task is {comp.task!r}: masks are for "
                "competition.task: segment; set it, or remove the key"
            )
    df = read_csv(path, "train table", "competition.train_csv")
    if comp.pixel_columns is not None:  # images in the table: rows without ids are numbered
        from medalist.data.pixels import add_row_ids

        df = add_row_ids(df, comp.id_column)
    _require_columns(df, [comp.id_column], path, "competition.id_column")
    if comp.id_class_separator is not None:  # ids that join image and class
        from medalist.data.joined_ids import split_ids

        df = split_ids(cfg, df, path)
    if comp.groups_csv is not None:
        df = _join_groups(df, cfg)
    _require_columns(df, cfg.target_columns, path, "competition.target_column")
    if comp.group_column is not None:
        _require_columns(df, [comp.group_column], path, "competition.group_column")
    if comp.image_column is not None:
        _require_columns(df, [comp.image_column], path, "competition.image_column")
    if df.empty:
        raise UserError(f"{path}: the table has no rows")
    if comp.task == "segment" and comp.class_column is not None and comp.mask_dir is None:
        df = pivot_masks(cfg, df, path)  # (with a mask folder the sample has the class rows)
    check_sequence_columns(cfg, df, path)
    _check_unique_ids(df, comp.id_column, path)
    # An empty run-length cell is an image without the object, not a missing target.
    # So is an empty cell of joined labels (competition.label_separator): a row of no label.
    checked = comp.task != "segment" and comp.label_separator is None
    for col in cfg.target_columns if checked else []:
        bad = df[col].isna().to_numpy()
        if bad.any():
            rows = (np.flatnonzero(bad) + 2).tolist()[:3]
            raise UserError(
                f"{path}: {int(bad.sum())} missing (NaN) value(s) in target column {col!r}, "
                f"first on lines {rows}; fill or drop those rows"
            )
    return df.reset_index(drop=True)


def first_outside(values: pd.Series, allowed: Iterable[object]) -> int | None:
    """The position of the first value (as text) that is not in `allowed`; None if all are."""
    bad = ~values.astype(str).isin({str(a) for a in allowed})
    return int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else None


def mask_column(target: str, cls: object) -> str:
    """The train table's column of one class's run-length masks, after `pivot_masks`."""
    return f"{target}_{cls}"


def pivot_masks(cfg: Config, df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Segmentation with several classes, one row per image and class (Kaggle's long format),
    to one row per image with a run-length column per class (`mask_column`); an image and class
    without a row has an empty mask. The classes are `competition.classes`, else the sorted
    values; `df.attrs["mask_classes"]` lists them."""
    comp = cfg.competition
    id_col, cls_col, target = comp.id_column, comp.class_column, comp.target_column
    if not isinstance(target, str):
        raise UserError(
            "competition.class_column is set: competition.target_column names the one column "
            "of run-length masks (one row per image and class)"
        )
    _require_columns(df, [cls_col], path, "competition.class_column")
    pairs = df[id_col].astype(str) + "\x00" + df[cls_col].astype(str)
    dup = pairs.duplicated(keep=False).to_numpy()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        raise UserError(
            f"{path} line {first + 2}: image {df[id_col].iloc[first]!r} has class "
            f"{df[cls_col].iloc[first]!r} on several lines; give one mask per image and class"
        )
    values = df[cls_col].astype(str)
    found = sorted(values.unique())
    classes = [str(c) for c in comp.classes] if comp.classes is not None else found
    first = first_outside(values, classes)
    if first is not None:
        raise UserError(
            f"{path} line {first + 2}: class {values.iloc[first]!r} is not in "
            f"competition.classes ({', '.join(classes)}); add it or fix the row"
        )
    masks = dict(zip(pairs, df[target].where(df[target].notna(), ""), strict=True))
    others = [c for c in df.columns if c not in (cls_col, target)]
    wide = df[others].drop_duplicates(id_col, keep="first").reset_index(drop=True)
    ids = wide[id_col].astype(str)
    for c in classes:
        wide[mask_column(target, c)] = [masks.get(f"{i}\x00{c}", "") for i in ids]
    wide.attrs["mask_classes"] = classes
    return wide


def check_sequence_columns(cfg: Config, df: pd.DataFrame, path: Path) -> None:
    """Video frames: both columns named, present, and frame numbers numeric and present."""
    comp = cfg.competition
    seq, frame = comp.sequence_column, comp.frame_column
    if seq is None and frame is None:
        return
    if seq is None or frame is None:
        raise UserError(
            "set both competition.sequence_column and competition.frame_column (video frames), "
            "or neither"
        )
    _require_columns(df, [seq], path, "competition.sequence_column")
    _require_columns(df, [frame], path, "competition.frame_column")
    numbers = pd.to_numeric(df[frame], errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        rows = (np.flatnonzero(bad) + 2).tolist()[:3]
        raise UserError(
            f"{path}: frame column {frame!r} needs a number on every row; "
            f"{int(bad.sum())} are missing or not numbers, first on lines {rows}"
        )


def _join_groups(df: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Add the columns of `competition.groups_csv` (e.g. leak/dup_groups.csv) to train by id."""
    comp = cfg.competition
    path = cfg.path(comp.groups_csv)
    extra = read_csv(path, "groups table", "competition.groups_csv")
    _require_columns(extra, [comp.id_column], path, "competition.id_column")
    extra = extra.drop_duplicates(comp.id_column)
    clash = [c for c in extra.columns if c != comp.id_column and c in df.columns]
    out = df.merge(extra.drop(columns=clash), on=comp.id_column, how="left", validate="1:1")
    added = [c for c in extra.columns if c != comp.id_column and c not in clash]
    missing = out[added].isna().any(axis=1) if added else pd.Series(False, index=out.index)
    if missing.any():
        first = out[comp.id_column][missing].iloc[0]
        raise UserError(
            f"{path}: {int(missing.sum())} training id(s) have no row, first {first!r}; "
            "rerun the command that wrote it (e.g. medalist leak CONFIG)"
        )
    return out


PATTERN_FIELD = re.compile(r"^([^\[\].!:]+)((?:\[\d+\])*)$")  # column, or column[0][1]


def pattern_fields(pattern: str) -> list[str]:
    """The fields in braces of `competition.image_pattern`, as written: a column
    ("{patient_id}") or a character of one ("{id[0]}": Google Landmarks' train/a/b/c/abc..jpg);
    a malformed pattern (an unclosed brace, "{}", "{id.x}") names none."""
    import string

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError:
        return []
    return fields if fields and all(PATTERN_FIELD.match(f) for f in fields) else []


def pattern_columns(pattern: str) -> list[str]:
    """The columns `competition.image_pattern` reads, each once, in order."""
    columns = [m.group(1) for f in pattern_fields(pattern) if (m := PATTERN_FIELD.match(f))]
    return list(dict.fromkeys(columns))


def require_named_columns(
    df: pd.DataFrame, columns: list[str], what: str, table: str, fix: str
) -> None:
    """UserError naming the first of `columns` that `df` (called `table`) lacks: `what` (a
    config key and its value) names it, `fix` says what to do."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:8]))
        raise UserError(
            f"{what} names column {missing[0]!r}, which {table} lacks (it has: {have}); {fix}"
        )


def pattern_names(pattern: str, df: pd.DataFrame) -> pd.Series:
    """`competition.image_pattern` filled in from each row's columns (as text)."""
    columns = pattern_columns(pattern)
    require_named_columns(
        df, columns, f"competition.image_pattern {pattern!r}", "this table",
        "fix the pattern, or set competition.test_csv to a test table that has the column",
    )  # fmt: skip
    names = []
    for row in df[columns].astype(str).to_dict("records"):
        try:
            names.append(pattern.format(**row))
        except IndexError:  # "{id[2]}" of the id "ab"
            raise UserError(
                f"competition.image_pattern {pattern!r} takes a character past the end of "
                f"{row}: fix the pattern or the row"
            ) from None
    return pd.Series(names, index=df.index, dtype=object)


N_FOREIGN = 5  # how many absolute names of another machine are tried for the folders to drop
WINDOWS_ROOT = re.compile(r"^[A-Za-z]:[\\/]")


def _name_parts(name: str) -> tuple[str, ...] | None:
    """The folders and file of an absolute path (POSIX or Windows); None for a relative one."""
    if WINDOWS_ROOT.match(name) or name.startswith("\\\\"):
        return PureWindowsPath(name).parts[1:]
    if name.startswith("/"):
        return PurePosixPath(name).parts[1:]
    return None


def local_names(names: pd.Series, image_dir: Path) -> pd.Series:
    """The image column's names as written, except absolute paths of another machine (a table
    made in a Kaggle notebook: /kaggle/input/<slug>/train/x.jpg; C:\\data\\train\\x.jpg) that do
    not exist here. Those lose the leading folders that exist nowhere here, and the rest is read
    under `image_dir`: the folders to drop come from the first such names whose rest is a file
    there, and are dropped from every name that starts with them."""
    windows = names.str.contains("\\", regex=False) & ~names.str.contains("/", regex=False)
    if windows.any():  # a table written on Windows: train\\x.jpg
        names = names.where(~windows, names.str.replace("\\", "/", regex=False))
    parts = names.map(_name_parts)
    foreign = parts.notna()
    if not foreign.any():
        return names
    drop: tuple[str, ...] | None = None
    for name, p in list(zip(names[foreign], parts[foreign], strict=True))[:N_FOREIGN]:
        if Path(name).exists():
            return names  # this machine's own absolute paths
        k = next((k for k in range(1, len(p)) if image_dir.joinpath(*p[k:]).is_file()), None)
        if k is not None:
            drop = p[:k]
            break
    if drop is None:
        return names
    prefix = drop

    def local(name: str, p: tuple[str, ...] | None) -> str:
        if p is None or p[: len(prefix)] != prefix:
            return name
        return "/".join(p[len(prefix) :])

    return pd.Series([local(n, p) for n, p in zip(names, parts, strict=True)], index=names.index)


def image_paths(cfg: Config, df: pd.DataFrame, image_dir: Path | None) -> list[Path]:
    """The image file of each row: the image column, the image pattern filled in from the row,
    else (also a test table without the training table's image column: the sample's ids) the id
    plus `competition.image_ext`."""
    comp = cfg.competition
    if comp.pixel_columns is not None:  # images in the table, written out as files once
        from medalist.data.pixels import pixel_files

        train = set(cfg.target_columns) <= set(df.columns)
        where = comp.train_csv if train else comp.test_csv or "the test table"
        return pixel_files(cfg, df, where)
    if is_hdf5(image_dir):  # images in one HDF5 file, a dataset per id: written out once
        from medalist.data.hdf5_images import hdf5_files

        by_column = comp.image_column is not None and comp.image_column in df.columns
        names = df[comp.image_column if by_column else comp.id_column].astype(str).tolist()
        train = image_dir == cfg.path(comp.image_dir)
        return hdf5_files(cfg, image_dir, names, f"competition.{'' if train else 'test_'}image_dir")
    if comp.image_pattern is not None:
        names = pattern_names(comp.image_pattern, df)
    elif comp.image_column is not None and comp.image_column in df.columns:
        names = local_names(df[comp.image_column].astype(str), image_dir)
        if comp.image_column == comp.id_column:  # train ids cat.0.jpg, test ids 1, 2, ...
            names = with_ext(names, comp.image_ext)
    else:
        names = with_ext(df[comp.id_column].astype(str), comp.image_ext)
    if image_dir is None:
        raise UserError(
            "competition.test_image_dir is not set: name the folder of test images in the config"
        )
    return [image_dir / n for n in names]


def with_ext(names: pd.Series, ext: str) -> pd.Series:
    """The names, `ext` added to those without an image extension."""
    return names.where(names.str.lower().str.endswith(IMAGE_EXTS), names + ext)


def check_images_exist(paths: list[Path], what: str, key: str) -> None:
    """All listed images exist; else name the first few missing and the count."""
    folder_ok = paths and paths[0].parent.exists()
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return
    shown = ", ".join(p.name for p in missing[:3])
    where = missing[0].parent
    hint = f"check {key}" if not folder_ok else f"add them to {where} or drop their rows"
    raise UserError(
        f"{len(missing)} of {len(paths)} {what} images are missing in {where} "
        f"(first: {shown}); {hint}"
    )


def load_sample_submission(cfg: Config) -> pd.DataFrame | None:
    comp = cfg.competition
    if comp.sample_submission is None:
        return None
    path = cfg.path(comp.sample_submission)
    if comp.task == "segment" and is_file_sample(path):  # a folder or zip of mask files
        return read_file_sample(path, comp.id_column)
    df = read_csv(path, "sample submission", "competition.sample_submission")
    if comp.submission_by is not None:  # a row per group of images, not per image
        from medalist.data.submission_rows import sample_key_column

        _check_unique_ids(df, sample_key_column(cfg, df), path)
        return df
    _require_columns(df, [comp.id_column], path, "competition.id_column")
    if comp.task == "segment" and comp.class_column is not None and not comp.id_class_separator:
        # Long format: one row per test image and class.
        _require_columns(df, [comp.class_column], path, "competition.class_column")
        pairs = df[comp.id_column].astype(str) + " / " + df[comp.class_column].astype(str)
        _check_unique_ids(pairs.to_frame("image / class"), "image / class", path)
    else:
        _check_unique_ids(df, comp.id_column, path)
    return df


def load_test(cfg: Config, sample: pd.DataFrame | None) -> pd.DataFrame | None:
    """The test ids in submission order: test.csv, else the sample submission's ids."""
    comp = cfg.competition
    if comp.test_csv is not None and cfg.path(comp.test_csv).is_file():
        path = cfg.path(comp.test_csv)
        df = read_csv(path, "test table", "competition.test_csv")
        if comp.pixel_columns is not None:  # images in the table: ids from the sample's rows
            from medalist.data.pixels import ids_from_sample

            df = ids_from_sample(df, sample, comp.id_column, path)
        _require_columns(df, [comp.id_column], path, "competition.id_column")
        _check_unique_ids(df, comp.id_column, path)
        return df.reset_index(drop=True)
    if sample is not None and comp.submission_by is not None:
        raise UserError(
            f"competition.submission_by is {comp.submission_by!r} but competition.test_csv "
            f"({comp.test_csv}) is not a file: the test table names each image and its group; "
            "set competition.test_csv"
        )
    if sample is not None:  # (in the long format an image has a row per class)
        from medalist.data.joined_ids import split_ids

        ids = split_ids(cfg, sample, cfg.path(comp.sample_submission))[[comp.id_column]]
        return ids.drop_duplicates().reset_index(drop=True)
    return None


def check_classes(cfg: Config, train: pd.DataFrame, sample: pd.DataFrame | None) -> None:
    """Target values must be among the classes the competition scores."""
    comp = cfg.competition
    if comp.task in ("segment", "detect"):
        return  # masks and boxes, not classes of images
    classes = comp.classes
    if classes is None and sample is not None and isinstance(comp.target_column, str):
        from medalist.data.submission_rows import sample_key_column

        per_class = [c for c in sample.columns if c != sample_key_column(cfg, sample)]
        values = set(train[comp.target_column].astype(str))
        if len(per_class) > 1 and len(values & set(per_class)) > 0:
            classes = per_class
    if classes is None:
        return
    allowed = {str(c) for c in classes}
    single = isinstance(comp.target_column, str) and comp.label_separator is None
    for col in cfg.target_columns if single else []:  # joined labels: the task checks each
        values = train[col].astype(str)
        first = first_outside(values, allowed)
        if first is not None:
            raise UserError(
                f"{cfg.path(comp.train_csv)} line {first + 2}: target {values.iloc[first]!r} "
                f"is not one of the competition's classes ({', '.join(sorted(allowed))[:80]}); "
                "fix the row or competition.classes"
            )


def load_tables(cfg: Config, *, need_test: bool = False, check_files: bool = True) -> Tables:
    """Load and check every table the config names."""
    comp = cfg.competition
    train = load_train(cfg)
    train_paths = image_paths(cfg, train, cfg.path(comp.image_dir))
    if check_files:
        check_images_exist(train_paths, "training", "competition.image_dir")
    sample = load_sample_submission(cfg)
    check_classes(cfg, train, sample)
    test = load_test(cfg, sample)
    if comp.submission_by is not None:  # the groups are read from both tables: fail early
        from medalist.data.submission_rows import group_keys

        group_keys(train, comp.submission_by, str(cfg.path(comp.train_csv)))
        if test is not None:
            group_keys(test, comp.submission_by, str(cfg.path(comp.test_csv)))
    test_paths = None
    if test is not None and (comp.test_image_dir is not None or comp.pixel_columns is not None):
        test_paths = image_paths(cfg, test, cfg.path(comp.test_image_dir))
        if need_test and check_files:
            check_images_exist(test_paths, "test", "competition.test_image_dir")
    if need_test and (test is None or test_paths is None):
        raise UserError(
            "no test set: set competition.test_csv (or sample_submission) and "
            "competition.test_image_dir"
        )
    return Tables(train, train_paths, test, test_paths, sample)
