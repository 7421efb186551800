"""Reading a competition's tables: which column is the id, the image, the target, the group;
the task, target type, metric and fold scheme they imply. Each finding goes into a `Found`,
with its reason or, for a guess, the sentence the report asks the user to check."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medalist.data.pixels import find_prefix
from medalist.errors import UserError
from medalist.io import read_table_csv, sample_id_column
from medalist.workflows.scaffold.found import DataPath, Found, rel
from medalist.workflows.scaffold.images import first_values, image_suffix, infer_images
from medalist.workflows.scaffold.pixels import pixel_images, without_pixels
from medalist.workflows.scaffold.render import batch_for
from medalist.workflows.scaffold.tables import MASK_DIRS, Tables, find_tables
from medalist.workflows.scaffold.video import infer_video

# Column names, in order of preference, compared without case, "_", "-" or spaces.
ID_NAMES = (
    "id", "image_id", "image", "filename", "file", "name", "image_name",
    "file_name", "img", "img_id", "image_path", "filepath", "path",
)  # fmt: skip
TARGET_NAMES = (
    "label", "labels", "target", "targets", "class", "class_id", "class_name",
    "y", "category", "diagnosis",
)  # fmt: skip
GROUP_NAMES = (
    "patient_id", "patient", "group", "group_id", "subject", "subject_id",
    "user", "user_id", "site", "date", "photographer",
)  # fmt: skip
SEGMENT_NAMES = ("encoded_pixels", "rle", "rle_mask", "mask", "segmentation")
DETECT_NAMES = (
    "bbox", "bboxes", "boxes", "xmin", "ymin", "xmax", "ymax", "x_min", "y_min", "x_center",
)  # fmt: skip
CLASS_NAMES = ("class", "class_id", "classid", "class_name", "label", "category", "organ")

N_SAMPLE = 20  # how many values decide "these are file names"
RARE = 0.2  # a binary target whose rarer class is under this share is seldom scored by accuracy
JOINED_SEPARATORS = (" ", "|", ";")  # between the labels of one row, in order of trial
C = "competition."


def infer(data_dir: Path, tables: Tables | None = None) -> Found:
    """Everything `medalist new` can read from the competition folder `data_dir` (whose
    tables are `tables`, found in it when not given)."""
    tables = tables or find_tables(data_dir)
    found = Found(
        train_name=tables.train,
        test_name=tables.test or "test.csv",
        sub_name=tables.sub or "sample_submission.csv",
    )
    train, test, sub = _read_tables(found, data_dir, tables)
    pixels = find_prefix(train.columns)
    shape = None
    if pixels is not None:  # images in the table: its other columns are read as usual
        train, shape = without_pixels(found, train, sub, pixels)
    columns = list(train.columns)
    id_col = _id_column(found, columns, sub)
    by = _submission_groups(found, train, test, sub)
    by_group = None
    if by is not None:
        id_col, by, by_group = by
    if _named_like(columns, SEGMENT_NAMES) is not None:  # masks: ids may join image and class
        from medalist.workflows.scaffold.masks import split_joined_ids

        train, sub = split_joined_ids(found, [train, sub], id_col, data_dir)
        columns = list(train.columns)
    image_col, value_ext = _image_column(found, train, id_col)
    reserved = {id_col, *([image_col] if image_col else []), *([by_group] if by_group else [])}
    targets, classes = _target_columns(found, train, sub, reserved)
    group_col = _group_column(found, columns, reserved, targets)
    if by_group is not None:  # a group's images in one fold, as its submission row is scored
        why = "the submission's rows: folds keep their images together"
        found.ok(C + "group_column", by_group, why)
        group_col = by_group
    group_col = infer_video(found, train, _named_like, {*reserved, *targets}, group_col)
    if not targets:
        targets = _guess_target(found, columns, reserved, group_col)
    if classes is None:
        found.ok(C + "classes", None)
    _target_type(found, train, targets, group_col, _fraction(sub), _fraction(sub, targets))
    _ranked_metric(found, train, sub, id_col, targets)
    _task(found, data_dir, train, id_col, group_col, sub)
    if pixels is not None:
        pixel_images(found, test, pixels, shape)
    else:
        infer_images(found, data_dir, train, test, sub, id_col, image_col, value_ext)
    size = found.values.get("data.image_size", 32)
    if (
        found.values.get(C + "task") == "segment"
        and min(size if isinstance(size, list) else [size]) < 32
    ):
        found.ok("data.image_size", 32, "a U-Net takes multiples of 32")
    if pixels is None:  # (groups are searched among image files)
        found.ok_groups(data_dir, train, test if test is not None else sub)
    found.ok("train.batch_size", *batch_for(_image_count(train, id_col)))
    return found


def _image_count(train: pd.DataFrame, id_col: str | None) -> int:
    """Training images: distinct ids (a row per box or per class repeats an image)."""
    return int(train[id_col].nunique()) if id_col in train.columns else len(train)


def read_csv(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """A CSV with text column names; UserError when it can't be parsed."""
    frame = read_table_csv(path, str(path), "check the file", nrows=nrows)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_tables(
    found: Found, data_dir: Path, tables: Tables
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """The training table (which must have rows), and the test table and sample submission
    if present."""
    if tables.frame is not None:  # class folders: the table new writes into the project
        train = tables.frame
    else:
        train_path = data_dir / tables.train
        train = read_csv(train_path)
        if train.empty or not len(train.columns):
            raise UserError(
                f"{train_path} has no rows: check the file (one row per training image)"
            )

    sub = read_csv(data_dir / tables.sub, nrows=200) if tables.sub else None
    test = read_csv(data_dir / tables.test, nrows=200) if tables.test else None

    if tables.frame is not None:
        found.folder_table = tables.frame
        why = f"written by medalist new from {tables.folder}/: a row per image, {tables.how}"
        found.ok(C + "train_csv", tables.train, why)  # in the project, not in data/
    else:
        found.ok(
            C + "train_csv",
            DataPath(tables.train),
            _found_as(tables.train, "train.csv", "the training table"),
        )
    if test is not None:
        found.ok(
            C + "test_csv",
            DataPath(tables.test),
            _found_as(tables.test, "test.csv", "the test table"),
        )
    else:
        why = f"no test.csv: {found.sub_name} lists the test ids" if sub is not None else ""
        found.ok(C + "test_csv", None, why or "no test.csv")
    masks = _mask_file_sample(data_dir) if sub is None else None
    if sub is not None:
        found.ok(
            C + "sample_submission",
            DataPath(tables.sub),
            _found_as(tables.sub, "sample_submission.csv", "the sample submission"),
        )
    elif masks is not None:
        why = "a folder or zip of PNG masks: the submission is PNG masks (predict.mask_format)"
        found.ok(C + "sample_submission", DataPath(masks), why)
    else:
        found.guess(
            C + "sample_submission",
            None,
            "no sample_submission.csv in the data folder: medalist predict shapes the "
            "submission on it (its ids, columns and order); set competition.sample_submission "
            "to the competition's sample file",
        )
    return train, test, sub


def _found_as(name: str | None, usual: str, role: str) -> str:
    """ "found", or for a table under another name than Kaggle's usual one, what it was taken as."""
    return "found" if name == usual else f"taken as {role}"


def _mask_file_sample(data_dir: Path) -> str | None:
    """`sample_submission/` or `sample_submission.zip` when it holds PNG masks."""
    from medalist.data.mask_files import read_file_sample
    from medalist.errors import UserError

    for name in ("sample_submission", "sample_submission.zip"):
        if (data_dir / name).exists():
            try:
                read_file_sample(data_dir / name, "id")
            except UserError:
                continue
            return name
    return None


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _named_like(
    columns: Iterable[str], names: Sequence[str], exclude: Iterable[str] = ()
) -> str | None:
    """The first column (by the preference order of `names`) whose name is one of `names`."""
    skip = set(exclude)
    by_norm: dict[str, str] = {}
    for col in columns:
        if col not in skip:
            by_norm.setdefault(_norm(col), col)
    for wanted in names:
        if _norm(wanted) in by_norm:
            return by_norm[_norm(wanted)]
    return None


def _sample_id(sub: pd.DataFrame | None) -> tuple[str | None, str]:
    """The sample submission's id column (`sample_id_column`) and why it is that one."""
    if sub is None or not len(sub.columns):
        return None, ""
    sub_id = sample_id_column(sub)
    if sub_id == sub.columns[0]:
        return sub_id, "first column of {}"
    return sub_id, f"the column of distinct values in {{}} (its first, {sub.columns[0]!r}, repeats)"


def _id_column(found: Found, columns: list[str], sub: pd.DataFrame | None) -> str:
    """The sample submission's id column (its first, unless that one repeats and another does
    not), else one named like an id, else the first."""
    sub_id, why = _sample_id(sub)
    named_id = _named_like(columns, ID_NAMES)
    if sub_id is not None and sub_id in columns:
        found.ok(C + "id_column", sub_id, why.format(found.sub_name))
        return sub_id
    if named_id is not None and sub_id is not None and named_id != sub_id:
        found.guess(
            C + "id_column",
            named_id,
            f"{found.sub_name} names its ids {sub_id!r}, a column {found.train_name} lacks; "
            f"took {named_id!r} (named like an id): the tables must share the id column's name, "
            f"so rename one of them (or set competition.id_column)",
        )
        return named_id
    if named_id is not None:
        found.ok(C + "id_column", named_id, "named like an id")
        return named_id
    id_col = columns[0]
    found.guess(
        C + "id_column",
        id_col,
        f"no column of {found.train_name} is named like an id (id, image_id, filename, ...) "
        f"or matches {found.sub_name}; guessed {id_col!r}, the first column: set "
        "competition.id_column to the column that names each image",
    )
    return id_col


def _submission_groups(
    found: Found, train: pd.DataFrame, test: pd.DataFrame | None, sub: pd.DataFrame | None
) -> tuple[str, str, str] | None:
    """(the image id column, competition.submission_by, the group column) when the sample has
    a row per group of test images: its ids repeat in the test table, another column both
    tables share names each image once, and the group is a column of both (Mayo Clinic STRIP
    AI's `patient_id`) or joins two of them (RSNA Mammography's `prediction_id`,
    "{patient_id}_{laterality}")."""
    if sub is None or test is None or not len(sub.columns):
        return None
    sub_id = sample_id_column(sub)
    if sub_id not in test.columns or sub[sub_id].duplicated().any():
        return None
    groups = test[sub_id].astype(str)
    if not groups.duplicated().any() or set(sub[sub_id].astype(str)) != set(groups):
        return None
    shared = [c for c in test.columns if c != sub_id and c in train.columns]
    unique = [c for c in shared if not (test[c].duplicated().any() or train[c].duplicated().any())]
    spec = sub_id if sub_id in train.columns else _group_pattern(test, groups, shared)
    if not unique or spec is None:
        return None
    image_id = _named_like(unique, ID_NAMES) or unique[0]
    group_col = sub_id if spec == sub_id else spec[1 : spec.index("}")]
    found.ok(C + "id_column", image_id, f"names each image of {found.test_name} once")
    joined = "" if spec == sub_id else f", {sub_id} joining {spec}"
    found.ok(
        C + "submission_by",
        spec,
        f"{found.sub_name} has a row per {sub_id} ({len(sub)}{joined}), {found.test_name} a "
        f"row per image ({len(test)}): the images' predictions are averaged per row",
    )
    return image_id, spec, group_col


def _group_pattern(test: pd.DataFrame, groups: pd.Series, shared: list[str]) -> str | None:
    """The pattern of two shared columns that spells every test row's group, if one does."""
    candidates = [c for c in shared[:12] if test[c].duplicated().any()]
    for a in candidates:
        for b in candidates:
            if a == b:
                continue
            for sep in ("_", "-", ".", "/", ""):
                if (test[a].astype(str) + sep + test[b].astype(str)).equals(groups):
                    return f"{{{a}}}{sep}{{{b}}}"
    return None


def _image_column(found: Found, train: pd.DataFrame, id_col: str) -> tuple[str | None, str | None]:
    """The column of image file names (None: ids without extension) and their extension."""
    value_ext = image_suffix(first_values(train, id_col, N_SAMPLE))
    if value_ext is not None:
        found.ok(C + "image_column", id_col, "the ids are image file names")
        return id_col, value_ext
    for col in train.columns:
        if col == id_col:
            continue
        ext = image_suffix(first_values(train, col, N_SAMPLE))
        if ext is not None:
            found.ok(C + "image_column", col, "its values are image file names")
            return col, ext
    found.ok(C + "image_column", None, "the ids name the images without an extension")
    return None, None


def _label_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _native(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _per_class_column(
    train: pd.DataFrame, sub_cols: Sequence[str], exclude: Iterable[str]
) -> tuple[str, list[Any]] | None:
    """A train column whose distinct values are exactly the sample submission's columns."""
    if len(sub_cols) < 2:
        return None
    wanted = set(sub_cols)
    skip = set(exclude)
    for col in train.columns:
        if col in skip:
            continue
        values = train[col].dropna().unique()
        if len(values) != len(wanted):
            continue
        by_name = {_label_name(_native(v)): _native(v) for v in values}
        if set(by_name) == wanted:
            return col, [by_name[c] for c in sub_cols]
    return None


def _target_columns(
    found: Found, train: pd.DataFrame, sub: pd.DataFrame | None, reserved: set[str]
) -> tuple[list[str], list[Any] | None]:
    """The target column(s) and, when the sample has a column per class, the classes."""
    columns = list(train.columns)
    sub_cols = [col for col in (sub.columns[1:] if sub is not None else [])]
    if sub_cols and all(col in columns and col not in reserved for col in sub_cols):
        targets = list(sub_cols)
        why = f"the {found.sub_name} column" + ("s" if len(targets) > 1 else "")
        found.ok(C + "target_column", targets[0] if len(targets) == 1 else targets, why)
        return targets, None
    if (match := _per_class_column(train, sub_cols, reserved)) is not None:
        found.ok(C + "target_column", match[0], f"its values are the {found.sub_name} columns")
        found.ok(C + "classes", match[1], f"one {found.sub_name} column per class")
        return [match[0]], match[1]
    if (named := _named_like(columns, TARGET_NAMES, reserved)) is not None:
        found.ok(C + "target_column", named, "named like a target")
        return [named], None
    return [], None


def _group_column(
    found: Found, columns: list[str], reserved: set[str], targets: list[str]
) -> str | None:
    """A column named like a group (patient, subject...), whose rows folds keep together."""
    group_col = _named_like(columns, GROUP_NAMES, {*reserved, *targets})
    if group_col is None:
        loose = [_norm(col) for col in columns if col not in reserved and col not in targets]
        hits = [i for i, n in enumerate(loose) if "patient" in n or "subject" in n]
        rest = [col for col in columns if col not in reserved and col not in targets]
        group_col = rest[hits[0]] if hits else None
    found.ok(
        C + "group_column", group_col, "named like a group" if group_col else "none named like one"
    )
    return group_col


def _guess_target(
    found: Found, columns: list[str], reserved: set[str], group_col: str | None
) -> list[str]:
    """No target found: guess the last free column and ask the user to check it."""
    rest = [col for col in columns if col not in reserved and col != group_col]
    guess = rest[-1] if rest else "label"
    where = f"guessed {guess!r}, the last column" if rest else f"guessed {guess!r}"
    found.guess(
        C + "target_column",
        guess,
        f"no {found.sub_name} column is in {found.train_name} and no {found.train_name} "
        "column is "
        f"named like a target (label, target, class, ...); {where}: set "
        "competition.target_column to the column to predict",
    )
    return [guess] if rest else []


def _fraction(sub: pd.DataFrame | None, columns: list[str] | None = None) -> float | None:
    """A value of the sample submission's columns (or of those of `columns` it has) that is not
    a whole number (0.5: it holds probabilities or scores); None when there is none."""
    if sub is None:
        return None
    for column in [c for c in sub.columns[1:] if columns is None or c in columns]:
        values = sub[column]
        if pd.api.types.is_float_dtype(values):
            values = values.dropna()
            fractional = values[(values % 1) != 0]
            if len(fractional):
                return float(fractional.iloc[0])
    return None


MAX_RANKED = 20  # labels a sample row lists, at most, to read as a ranked (MAP@k) submission


def ranked_count(sub: pd.DataFrame | None, id_col: str | None) -> int | None:
    """k when the sample's one value column (beside `id_col`) lists k labels a row, the same k
    in every row (Humpback Whale's "new_whale w_23a388d ..."; Happywhale's `predictions`;
    Quick, Draw!'s three words): a MAP@k submission. Numbers alone (run-length masks, "1 1")
    are not labels."""
    value_cols = [] if sub is None else [c for c in sub.columns if c != id_col]
    if sub is None or len(value_cols) != 1 or len(sub.columns) != 2:
        return None
    values = sub[value_cols[0]]
    if len(values) == 0 or not pd.api.types.is_string_dtype(values):
        return None
    rows = [str(v).split() for v in values.dropna()]
    counts = {len(row) for row in rows}
    if len(rows) != len(values) or len(counts) != 1 or not 2 <= min(counts) <= MAX_RANKED:
        return None
    tokens = {t for row in rows[:200] for t in row}
    if all(pd.to_numeric(pd.Series(sorted(tokens)), errors="coerce").notna()):
        return None
    return counts.pop()


def _ranked_metric(
    found: Found,
    train: pd.DataFrame,
    sub: pd.DataFrame | None,
    id_col: str | None,
    targets: list[str],
) -> None:
    """A sample listing k labels a row, for a single-label target: guessed MAP@k (to check).
    A row that is itself a training label ("Round dot", "Loose Silky-bent") is one class whose
    name has blanks, not k guesses."""
    k = ranked_count(sub, id_col)
    if k is None or len(targets) != 1 or targets[0] not in train:
        return
    known = set(train[targets[0]].dropna().astype(str).str.strip())
    value_col = next(c for c in sub.columns if c != id_col)
    if sub[value_col].astype(str).str.strip().isin(known).any():
        return
    if found.values.get(C + "target_type") not in ("auto", "multiclass"):
        return
    if C + "label_separator" in found.values:
        return  # labels joined in the training table too: multilabel, thresholded
    found.guess(
        C + "metric",
        f"map@{k}",
        f"{found.sub_name} lists {k} labels a row: guessed mean average precision at {k} (the "
        f"submission writes the {k} likeliest classes, best first); set competition.metric to "
        "the competition's",
    )


def _probability_metric(found: Found, fraction: float) -> None:
    """A sample of probabilities: a metric that scores them, to check (roc_auc or log_loss)."""
    found.guess(
        C + "metric",
        "roc_auc",
        f"{found.sub_name} holds probabilities ({fraction:g}), so the submission writes them; "
        "guessed roc_auc: set competition.metric to the competition's (roc_auc, log_loss or "
        "module:function)",
    )


def _target_type(
    found: Found,
    train: pd.DataFrame,
    targets: list[str],
    group_col: str | None,
    fraction: float | None = None,
    own_fraction: float | None = None,
) -> None:
    """Target type, metric and fold scheme: multilabel, one-hot classes, regression or classes
    (`fraction`: a value of the sample that is not a whole number, if any; `own_fraction`: one
    in the sample's column of the target itself, which makes whole numbers a score)."""
    from medalist.tasks.one_hot import is_one_hot

    sep = _joined_separator(train[targets[0]]) if len(targets) == 1 else None
    if sep is not None:
        from medalist.tasks.joined_labels import label_classes

        n = len(label_classes(train[targets[0]], sep))
        found.ok(C + "label_separator", sep, f"{targets[0]!r} holds several of {n} labels a row")
        found.ok(C + "target_type", "multilabel", "labels joined in one column")
        found.ok(C + "metric", "f1", "macro F1 for multilabel")
        found.ok("cv.scheme", "multilabel", "every label balanced over the folds")
        return
    if len(targets) > 1 and is_one_hot(train, targets):
        why = f"one 0/1 column per class ({len(targets)}), exactly one 1 a row"
        found.ok(C + "target_type", "multiclass", why)
        if fraction is not None:
            _probability_metric(found, fraction)
        else:
            found.ok(C + "metric", "accuracy", "classification")
        scheme = "stratified_group" if group_col else "stratified"
        found.ok("cv.scheme", scheme, "group column found" if group_col else "")
        return
    if len(targets) > 1:
        found.ok(C + "target_type", "multilabel", "several target columns")
        if fraction is not None:
            _probability_metric(found, fraction)
        else:
            found.ok(C + "metric", "f1", "macro F1 for multilabel")
        found.ok("cv.scheme", "multilabel", "group column found" if group_col else "")
        return
    series = train[targets[0]].dropna() if targets else pd.Series(dtype=object)
    regression = pd.api.types.is_float_dtype(series) and bool(((series % 1) != 0).any())
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    scored = numeric and own_fraction is not None and series.nunique() > 2
    n_values = series.nunique()
    # Over ten whole numbers, some too rare for 5 stratified folds, filling most of their range
    # (Pawpularity's 1-100): a score far likelier than classes, which could not be folded.
    rare = numeric and n_values > 10 and int(series.value_counts().min()) < 5
    dense = rare and n_values >= 0.5 * (float(series.max()) - float(series.min()) + 1)
    if dense and not (regression or scored):
        found.guess(
            C + "target_type",
            "regression",
            f"the target {targets[0]!r} takes {n_values} whole numbers from {series.min():g} to "
            f"{series.max():g}, some in fewer than 5 rows: guessed a score (regression, rmse, "
            "k-fold); set competition.target_type to multiclass (and cv.scheme, "
            "competition.metric) if they are classes",
        )
        found.ok(C + "metric", "rmse", "regression")
        found.ok("cv.scheme", "group" if group_col else "kfold", "")
        return
    if regression or scored:
        target_type, metric = "regression", "rmse"
        scheme = "group" if group_col else "kfold"
        why = (
            "the target is a non-integer number"
            if regression
            else f"whole numbers in {found.train_name}, fractions ({own_fraction:g}) in "
            f"{found.sub_name}: a score, not a class"
        )
        found.ok(C + "target_type", target_type, why)
    else:
        target_type, metric = "auto", "accuracy"
        scheme = "stratified_group" if group_col else "stratified"
        # Many whole numbers, or over ten with some too rare for 5 stratified folds: a score?
        if numeric and (n_values > 50 or rare):
            found.guess(
                C + "target_type",
                target_type,
                f"the target {targets[0]!r} takes {n_values} integer values, which auto "
                "reads as that many classes: set competition.target_type to regression "
                "(and competition.metric to rmse) if it is a score",
            )
        else:
            why = f"{n_values} class{'es' if n_values != 1 else ''}"
            found.ok(C + "target_type", target_type, why)
        if fraction is not None:
            _probability_metric(found, fraction)
        elif n_values == 2 and (share := float(series.value_counts(normalize=True).min())) < RARE:
            found.guess(
                C + "metric",
                "roc_auc",
                f"two classes, the rarer in {share:.0%} of the rows: accuracy would reward "
                "always predicting the common one, so guessed roc_auc (the submission then "
                "writes probabilities): set competition.metric to the competition's (roc_auc, "
                "log_loss, f1 or accuracy)",
            )
        elif numeric and is_ordinal(targets[0], series):
            found.guess(
                C + "metric",
                "qwk",
                f"the target {targets[0]!r} grades {series.min():g} to {series.max():g}: "
                "ordered classes, guessed quadratic weighted kappa (qwk), as grading "
                "competitions score; set competition.metric to the competition's",
            )
    if C + "metric" not in found.values:
        found.ok(C + "metric", metric, "regression" if regression else "classification")
    found.ok("cv.scheme", scheme, "group column found" if group_col else "")


ORDINAL_WORDS = ("grade", "severity", "stage", "level", "diagnosis", "rating")


def is_ordinal(column: str, values: pd.Series) -> bool:
    """A grade (APTOS's `diagnosis` 0-4, PANDA's `isup_grade` 0-5, retinopathy `level`): a
    column named like one holding 3 to 10 consecutive whole numbers from 0 or 1."""
    name = _norm(column)
    if not any(word in name for word in ORDINAL_WORDS):
        return False
    grades = sorted({float(v) for v in values.unique()})
    if not 3 <= len(grades) <= 10 or any(g % 1 for g in grades):
        return False
    return grades[0] in (0.0, 1.0) and grades == [grades[0] + i for i in range(len(grades))]


def _joined_separator(values: pd.Series) -> str | None:
    """The separator when a target column holds several labels a row ("clear primary")."""
    from medalist.tasks.joined_labels import looks_joined

    return next((sep for sep in JOINED_SEPARATORS if looks_joined(values, sep)), None)


def _task(
    found: Found,
    data_dir: Path,
    train: pd.DataFrame,
    id_col: str,
    group_col: str | None,
    sub: pd.DataFrame | None = None,
) -> None:
    """The task: classification unless the table looks like masks or boxes."""
    columns = list(train.columns)
    seg_col = _named_like(columns, SEGMENT_NAMES)
    mask_dir = next((d for d in MASK_DIRS if (data_dir / d).is_dir()), None)
    det_col = _named_like(columns, DETECT_NAMES)
    if seg_col or mask_dir:
        _segment(found, data_dir, train, id_col, group_col, seg_col, mask_dir, sub)
    elif det_col or train[id_col].duplicated().any():
        from medalist.workflows.scaffold.detect import infer_detect

        infer_detect(found, train, id_col, group_col)
    else:
        found.ok(C + "task", "classify", "one row per image")


def _segment(
    found: Found,
    data_dir: Path,
    train: pd.DataFrame,
    id_col: str,
    group_col: str | None,
    seg_col: str | None,
    mask_dir: str | None,
    sub: pd.DataFrame | None = None,
) -> None:
    """Masks: a folder of mask files (one class, index masks, or a file per image and
    class), or a run-length column (a row per image and class)."""
    what = f"column {seg_col!r}" if seg_col else f"folder {mask_dir}/"
    found.ok(C + "task", "segment", f"masks: {what}")
    found.ok(C + "target_type", "auto", "not used for masks")
    found.ok(C + "metric", "dice", "masks: mean Dice per image")
    found.ok("cv.scheme", "stratified_group" if group_col else "stratified", "by mask area")
    if mask_dir:
        found.ok(C + "mask_dir", rel(data_dir / mask_dir, data_dir), "a folder of masks")
        unused = found.values.get(C + "target_column", "label")
        found.ok(C + "target_column", unused, "not used: the masks are files")
        from medalist.workflows.scaffold.masks import infer_mask_folder

        infer_mask_folder(found, data_dir / mask_dir, train, sub, id_col, CLASS_NAMES)
        return
    found.ok(C + "target_column", seg_col, "run-length masks")
    if train[id_col].duplicated().any():  # a row per image and class
        cls_col = _named_like(list(train.columns), CLASS_NAMES, {id_col, seg_col})
        if cls_col is not None:
            found.ok(C + "class_column", cls_col, "ids repeat: a row per image and class")
        else:
            found.guess(
                C + "class_column",
                None,
                f"ids repeat in {id_col!r} but no column is named like a class: set "
                "competition.class_column to the column that names each mask's class",
            )
    found.guess(
        C + "rle_order",
        "column",
        f"the masks in {seg_col!r} are run-length text: check on the competition's "
        "data page whether pixels are counted top to bottom, then left to right "
        "(competition.rle_order: column) or along rows (row)",
    )
