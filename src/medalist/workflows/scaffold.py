"""`medalist new DIR --data DATA_DIR [--layout script|notebook|hybrid]`: a project folder, its
layout (the seminar's three: scripts, notebooks, or both) and a baseline config read from the data.

The competition folder follows the Kaggle layout (train.csv, a folder of training images,
test.csv or a test folder, sample_submission.csv). What can be read from it is written into
`configs/baseline.yaml`; what can't is written as a best guess marked
`# TODO: medalist could not infer this; check it` and listed in the report.

Nothing is written before every check has passed, nothing that exists is overwritten, and a
failure half-way removes what this call made. The project becomes a git repository (`git init`,
no commit: the first commit is the user's).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from medalist.config.load import validate_config
from medalist.errors import UserError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm")
TODO = "# TODO: medalist could not infer this; check it"
GROUP_COMMENT = "# patient, photographer, date...: kept in one fold"
CONFIG_NAME = "baseline.yaml"

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
DETECT_NAMES = ("bbox", "bboxes", "boxes", "xmin", "ymin", "xmax", "ymax", "x_min", "y_min")
TRAIN_DIRS = ("train", "train_images", "images", "train/images")
TEST_DIRS = ("test", "test_images", "test/images")
MASK_DIRS = ("masks", "train_masks", "train/masks")
CLASS_NAMES = ("class", "class_id", "classid", "class_name", "label", "category", "organ")

N_CHECK = 5  # how many of the first ids must resolve to files
N_SAMPLE = 20  # how many values decide "these are file names"
MAX_IMAGE_SIZE = 224
PROJECT_DIRS = ("configs", "models", "runs", "folds")  # and the layout's (layout_dirs)
KEY_ORDER = (
    *(
        f"competition.{k}"
        for k in (
            "task", "target_type", "train_csv", "test_csv", "image_dir", "test_image_dir",
            "sample_submission", "id_column", "image_column", "image_ext", "target_column",
            "classes", "group_column", "metric", "mask_dir", "rle_order", "class_column",
        )
    ),
    "cv.scheme",
    "data.image_size",
)  # fmt: skip

GITIGNORE = """\
# medalist: the data, run outputs, tracker files and caches stay out of git.
# /data (no slash) also matches data when it is a link to the competition folder.
/data
data/
runs/
folds/
mlruns.db
mlartifacts/
.cache/
*.ckpt
# tracker files (track.backends): W&B, Comet, Neptune offline data, TensorBoard, CSV
wandb/
comet/
.neptune/
tb/
tracking/
.ipynb_checkpoints/
"""


@dataclass
class ProjectReport:
    """What `create_project` made and what it read from the data."""

    root: Path
    config_path: Path
    inferred: dict[str, str] = field(default_factory=dict)  # config key -> value as written
    unresolved: list[str] = field(default_factory=list)  # one sentence per key to check
    reasons: dict[str, str] = field(default_factory=dict)  # config key -> where it came from
    data_dir: Path | None = None
    data_linked: bool = True  # False: no symlink possible, the config holds absolute paths
    layout: str = "script"
    git: bool = False  # True: `git init` made the project a repository


# ---------------------------------------------------------------------------------------------
# public entry points


def create_project(
    dest: Path, data_dir: Path, *, name: str | None = None, layout: str = "script"
) -> ProjectReport:
    """Make the project folder `dest` for the competition data in `data_dir`.

    `layout`: script (src/train.py, src/predict.py, scripts/sweep.sh), notebook
    (notebook/train.ipynb, notebook/test.ipynb) or hybrid (src/, scripts/, notebook/eda.ipynb,
    notebook/test.ipynb). Raises UserError for an unknown layout, when `dest` exists and is
    not empty, when `data_dir` is missing, or when it holds no train.csv. Nothing is written
    before the inference is done and the config validates.
    """
    from medalist.workflows.layout_templates import layout_dirs, readme_section, write_layout

    extra_dirs = layout_dirs(layout)
    dest = Path(dest).expanduser().absolute()
    data_dir = Path(data_dir).expanduser()
    _check_data_dir(data_dir)
    data_dir = data_dir.resolve()
    _check_dest(dest, data_dir)
    name = name or dest.name

    found = _infer(data_dir)
    # Validate before anything touches the disk: a config that can't load is never written.
    _validated(_render_config(found, name, "data"), name)

    made_dest = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for sub in (*PROJECT_DIRS, *extra_dirs):
            (dest / sub).mkdir()
        linked = _link(dest / "data", data_dir)
        prefix = "data" if linked else data_dir.as_posix()
        text = _validated(_render_config(found, name, prefix), name)
        config_path = dest / "configs" / CONFIG_NAME
        _write(config_path, text)
        if found.groups is not None and found.groups.table is not None:
            _write(dest / "configs" / "groups.csv", found.groups.table.to_csv(index=False))
        _write(dest / ".gitignore", GITIGNORE)
        _write(dest / "readme.md", _readme(name, data_dir, linked, readme_section(layout)))
        write_layout(dest, layout, _write)
        git = _git_init(dest)
    except BaseException:
        _undo(dest, made_dest)
        raise

    order = sorted(found.inferred, key=_key_rank)
    inferred = {k: _show(_as_written(found.values[k], prefix)) for k in order}
    return ProjectReport(
        root=dest,
        config_path=config_path,
        inferred=inferred,
        unresolved=[f"{k}: {found.unresolved[k]}" for k in sorted(found.unresolved, key=_key_rank)],
        reasons={k: found.inferred[k] for k in order if found.inferred[k]},
        data_dir=data_dir,
        data_linked=linked,
        layout=layout,
        git=git,
    )


def _key_rank(key: str) -> int:
    return KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER)


def render_report(report: ProjectReport) -> str:
    """The lines the CLI prints after `medalist new` (plain text, no markup)."""
    lines = [f"Created {report.root}"]
    config = _relative(report.config_path, report.root)
    lines.append(f"  config  {config}")
    if report.data_linked:
        lines.append(f"  data    data -> {report.data_dir}")
    else:
        lines.append(
            f"  data    no link possible here; the config points at {report.data_dir} directly"
        )
    lines.append(f"  layout  {report.layout}: {LAYOUT_NOTES[report.layout]}")
    if report.git:
        lines.append("  git     a new repository, nothing committed: commit before each run")
    if report.inferred:
        lines.append("Inferred from the data:")
        width = max(len(k) for k in report.inferred)
        for key, value in report.inferred.items():
            why = report.reasons.get(key)
            lines.append(f"  {key:<{width}}  {value}" + (f"  ({why})" if why else ""))
    if report.unresolved:
        lines.append(f"Check these (marked TODO in {config}):")
        lines.extend(f"  - {sentence}" for sentence in report.unresolved)
    else:
        lines.append("Nothing left to check: every key was inferred.")
    lines.append("Next:")
    lines.append(f"  cd {shlex.quote(str(report.root))}")
    lines.append(f"  medalist folds {config}")
    if report.layout == "notebook":
        lines.append("  jupyter lab notebook/train.ipynb")
    else:
        lines.append(f"  python src/train.py {config}     (or: medalist train {config})")
    return "\n".join(lines)


LAYOUT_NOTES = {
    "script": "src/train.py, src/predict.py, scripts/sweep.sh",
    "notebook": "notebook/train.ipynb, notebook/test.ipynb",
    "hybrid": "notebook/eda.ipynb, src/train.py, scripts/sweep.sh, notebook/test.ipynb",
}


# ---------------------------------------------------------------------------------------------
# checks


def _check_data_dir(data_dir: Path) -> None:
    if not data_dir.exists():
        raise UserError(
            f"data folder {data_dir} not found: pass --data the competition folder "
            "that holds train.csv"
        )
    if not data_dir.is_dir():
        raise UserError(
            f"--data {data_dir} is a file, not a folder: pass the competition folder "
            "that holds train.csv"
        )
    if (data_dir / "train.csv").is_file():
        return
    nested = sorted(p.parent for p in data_dir.glob("*/train.csv"))
    if nested:
        hint = f"did you mean --data {nested[0]}?"
    elif list(data_dir.glob("*.zip")):
        hint = "unzip the competition archive first"
    else:
        names = sorted(p.name for p in data_dir.iterdir())[:6]
        hint = f"it holds {', '.join(names)}" if names else "it is empty"
        hint += "; pass the competition folder that holds train.csv"
    raise UserError(f"data folder {data_dir} has no train.csv: {hint}")


def _check_dest(dest: Path, data_dir: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UserError(
            f"{dest} already exists and is not a folder: medalist new never overwrites; "
            "choose a new project folder"
        )
    if dest.exists() and any(dest.iterdir()):
        raise UserError(
            f"{dest} already exists and is not empty: medalist new never overwrites; "
            "choose a new or empty project folder"
        )
    if dest.resolve().is_relative_to(data_dir):
        raise UserError(
            f"{dest} is inside the data folder {data_dir}: put the project somewhere else "
            "(data/ will link to the data)"
        )


# ---------------------------------------------------------------------------------------------
# inference


class _DataPath(str):
    """A path relative to the data folder; written as data/<path> or as an absolute path."""


@dataclass
class _Found:
    values: dict[str, Any] = field(default_factory=dict)  # config key -> value
    inferred: dict[str, str] = field(default_factory=dict)  # config key -> reason
    unresolved: dict[str, str] = field(default_factory=dict)  # config key -> sentence
    groups: Any = None  # medalist.workflows.group_search.NewProjectGroups

    def ok_groups(self, data_dir: Path, train: pd.DataFrame, test: pd.DataFrame | None) -> None:
        """Groupings the user did not name (file names, EXIF, sizes, clusters): group folds."""
        from medalist.workflows.group_search import GROUPS_CSV, suggest_for_new

        c = "competition."
        if self.values.get(c + "group_column") or c + "image_dir" in self.unresolved:
            return
        comp = {k.split(".", 1)[1]: v for k, v in self.values.items() if k.startswith(c)}
        tid = comp["id_column"] if test is not None and comp["id_column"] in test else None
        test_ids = test[tid].tolist() if tid else []
        self.groups = suggest_for_new(data_dir, train, test_ids, comp, self.values["cv.scheme"])
        if self.groups is not None and self.groups.column is not None:
            why = self.groups.why()
            self.ok(c + "group_column", self.groups.column, why)
            self.ok(c + "groups_csv", GROUPS_CSV, "written by medalist new")
            self.ok("cv.scheme", self.groups.scheme, "groups inferred from the images")

    def ok(self, key: str, value: Any, why: str = "") -> None:
        self.values[key] = value
        self.inferred[key] = why
        self.unresolved.pop(key, None)

    def guess(self, key: str, value: Any, sentence: str) -> None:
        self.values[key] = value
        self.inferred.pop(key, None)
        self.unresolved[key] = sentence


def _read_csv(path: Path, nrows: int | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, nrows=nrows)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UserError(f"{path}: not a readable CSV ({reason}): check the file") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


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


def _sample(frame: pd.DataFrame, column: str, n: int) -> list[str]:
    return [str(v) for v in frame[column].dropna().head(n)]


def _image_suffix(values: Sequence[str]) -> str | None:
    """The image extension all `values` end with (as written in the first), else None."""
    if not values or not all(v.lower().endswith(IMAGE_EXTS) for v in values):
        return None
    return Path(values[0]).suffix


def _exts_in(folder: Path, limit: int = 2000) -> list[str]:
    """Image suffixes of files in `folder`, most common first (as spelt on disk)."""
    counts: Counter[str] = Counter()
    try:
        with os.scandir(folder) as entries:
            for i, entry in enumerate(entries):
                if i >= limit:
                    break
                suffix = Path(entry.name).suffix
                if suffix.lower() in IMAGE_EXTS:
                    counts[suffix] += 1
    except OSError:
        return []
    return [s for s, _ in counts.most_common()]


def _resolve(folder: Path, values: Sequence[str], try_exts: bool) -> str | None:
    """The suffix ("" for none) that makes every value a file in `folder`, else None."""
    if not values or not folder.is_dir():
        return None
    exts = [""]
    if try_exts:
        for ext in (*_exts_in(folder), *IMAGE_EXTS, *(e.upper() for e in IMAGE_EXTS)):
            if ext not in exts:
                exts.append(ext)
    for ext in exts:
        if all((folder / f"{v}{ext}").is_file() for v in values):
            return ext
    return None


def _subfolders(data_dir: Path) -> list[Path]:
    """Folders of the data folder, two levels deep, hidden ones left out."""
    out: list[Path] = []
    for top in sorted(_dirs(data_dir)):
        out.append(top)
        out.extend(sorted(_dirs(top)))
    return out


def _dirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return [
                Path(e.path)
                for e in entries
                if not e.name.startswith(".") and e.is_dir(follow_symlinks=True)
            ]
    except OSError:
        return []


def _candidates(data_dir: Path, preferred: Sequence[str], extra: Sequence[Path] = ()) -> list[Path]:
    out: list[Path] = []
    for p in (*(data_dir / p for p in preferred), *extra, *_subfolders(data_dir), data_dir):
        if p not in out:
            out.append(p)
    return out


def _rel(path: Path, data_dir: Path) -> _DataPath:
    rel = path.relative_to(data_dir).as_posix()
    return _DataPath("" if rel == "." else rel)


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


def _infer(data_dir: Path) -> _Found:
    found = _Found()
    c = "competition."
    train_path = data_dir / "train.csv"
    train = _read_csv(train_path)
    if train.empty or not len(train.columns):
        raise UserError(f"{train_path} has no rows: check the file (one row per training image)")
    columns = list(train.columns)

    sub_path = data_dir / "sample_submission.csv"
    test_path = data_dir / "test.csv"
    sub = _read_csv(sub_path, nrows=200) if sub_path.is_file() else None
    test = _read_csv(test_path, nrows=200) if test_path.is_file() else None

    found.ok(c + "train_csv", _DataPath("train.csv"), "found")
    if test is not None:
        found.ok(c + "test_csv", _DataPath("test.csv"), "found")
    else:
        found.ok(c + "test_csv", None, "no test.csv: sample_submission.csv lists the test ids")
    if sub is not None:
        found.ok(c + "sample_submission", _DataPath("sample_submission.csv"), "found")
    else:
        found.ok(c + "sample_submission", None, "no sample_submission.csv")

    # --- id column
    sub_id = sub.columns[0] if sub is not None and len(sub.columns) else None
    named_id = _named_like(columns, ID_NAMES)
    if sub_id is not None and sub_id in columns:
        id_col = sub_id
        found.ok(c + "id_column", id_col, "first column of sample_submission.csv")
    elif named_id is not None:
        id_col = named_id
        found.ok(c + "id_column", id_col, "named like an id")
    else:
        id_col = columns[0]
        found.guess(
            c + "id_column",
            id_col,
            f"no column of train.csv is named like an id (id, image_id, filename, ...) or "
            f"matches sample_submission.csv; guessed {id_col!r}, the first column: set "
            "competition.id_column to the column that names each image",
        )

    # --- image column
    id_values = _sample(train, id_col, N_SAMPLE)
    image_col: str | None = None
    value_ext = _image_suffix(id_values)
    if value_ext is not None:
        image_col = id_col
        found.ok(c + "image_column", image_col, "the ids are image file names")
    else:
        for col in columns:
            if col == id_col:
                continue
            ext = _image_suffix(_sample(train, col, N_SAMPLE))
            if ext is not None:
                image_col, value_ext = col, ext
                found.ok(c + "image_column", image_col, "its values are image file names")
                break
        else:
            found.ok(c + "image_column", None, "the ids name the images without an extension")

    # --- target column(s)
    reserved = {id_col, *([image_col] if image_col else [])}
    targets: list[str] = []
    classes: list[Any] | None = None
    sub_cols = [col for col in (sub.columns[1:] if sub is not None else [])]
    if sub_cols and all(col in columns and col not in reserved for col in sub_cols):
        targets = list(sub_cols)
        why = "the sample_submission.csv column" + ("s" if len(targets) > 1 else "")
        found.ok(c + "target_column", targets[0] if len(targets) == 1 else targets, why)
    elif (match := _per_class_column(train, sub_cols, reserved)) is not None:
        targets = [match[0]]
        classes = match[1]
        found.ok(
            c + "target_column", targets[0], "its values are the sample_submission.csv columns"
        )
        found.ok(c + "classes", classes, "one sample_submission.csv column per class")
    elif (named := _named_like(columns, TARGET_NAMES, reserved)) is not None:
        targets = [named]
        found.ok(c + "target_column", named, "named like a target")

    # --- group column
    group_col = _named_like(columns, GROUP_NAMES, {*reserved, *targets})
    if group_col is None:
        loose = [_norm(col) for col in columns if col not in reserved and col not in targets]
        hits = [i for i, n in enumerate(loose) if "patient" in n or "subject" in n]
        rest = [col for col in columns if col not in reserved and col not in targets]
        group_col = rest[hits[0]] if hits else None
    found.ok(
        c + "group_column", group_col, "named like a group" if group_col else "none named like one"
    )

    if not targets:
        rest = [col for col in columns if col not in reserved and col != group_col]
        guess = rest[-1] if rest else "label"
        where = f"guessed {guess!r}, the last column" if rest else f"guessed {guess!r}"
        found.guess(
            c + "target_column",
            guess,
            "no sample_submission.csv column is in train.csv and no train.csv column is "
            f"named like a target (label, target, class, ...); {where}: set "
            "competition.target_column to the column to predict",
        )
        if rest:
            targets = [guess]
    if classes is None:
        found.ok(c + "classes", None)

    # --- task type, metric and folds
    if len(targets) > 1:
        target_type, metric, scheme = "multilabel", "f1", "multilabel"
        found.ok(c + "target_type", target_type, "several target columns")
        found.ok(c + "metric", metric, "macro F1 for multilabel")
    else:
        series = train[targets[0]].dropna() if targets else pd.Series(dtype=object)
        regression = pd.api.types.is_float_dtype(series) and bool(((series % 1) != 0).any())
        if regression:
            target_type, metric = "regression", "rmse"
            scheme = "group" if group_col else "kfold"
            found.ok(c + "target_type", target_type, "the target is a non-integer number")
        else:
            target_type, metric = "auto", "accuracy"
            scheme = "stratified_group" if group_col else "stratified"
            n_values = series.nunique()
            if pd.api.types.is_numeric_dtype(series) and n_values > 50:
                found.guess(
                    c + "target_type",
                    target_type,
                    f"the target {targets[0]!r} takes {n_values} integer values, which auto "
                    "reads as that many classes: set competition.target_type to regression "
                    "(and competition.metric to rmse) if it is a score",
                )
            else:
                why = f"{n_values} class{'es' if n_values != 1 else ''}"
                found.ok(c + "target_type", target_type, why)
        if c + "metric" not in found.values:
            found.ok(c + "metric", metric, "regression" if regression else "classification")
    found.ok("cv.scheme", scheme, "group column found" if group_col else "")

    # --- task: classification unless the table looks like masks or boxes
    task = "classify"
    seg_col = _named_like(columns, SEGMENT_NAMES)
    mask_dir = next((d for d in MASK_DIRS if (data_dir / d).is_dir()), None)
    det_col = _named_like(columns, DETECT_NAMES)
    if seg_col or mask_dir:
        what = f"column {seg_col!r}" if seg_col else f"folder {mask_dir}/"
        found.ok(c + "task", "segment", f"masks: {what}")
        found.ok(c + "target_type", "auto", "not used for masks")
        found.ok(c + "metric", "dice", "masks: mean Dice per image")
        found.ok("cv.scheme", "stratified_group" if group_col else "stratified", "by mask area")
        if mask_dir:
            found.ok(c + "mask_dir", _rel(data_dir / mask_dir, data_dir), "a folder of masks")
            unused = found.values.get(c + "target_column", "label")
            found.ok(c + "target_column", unused, "not used: the masks are files")
        else:
            found.ok(c + "target_column", seg_col, "run-length masks")
            if train[id_col].duplicated().any():  # a row per image and class
                cls_col = _named_like(columns, CLASS_NAMES, {id_col, seg_col})
                if cls_col is not None:
                    found.ok(c + "class_column", cls_col, "ids repeat: a row per image and class")
                else:
                    found.guess(
                        c + "class_column",
                        None,
                        f"ids repeat in {id_col!r} but no column is named like a class: set "
                        "competition.class_column to the column that names each mask's class",
                    )
            found.guess(
                c + "rle_order",
                "column",
                f"the masks in {seg_col!r} are run-length text: check on the competition's "
                "data page whether pixels are counted top to bottom, then left to right "
                "(competition.rle_order: column) or along rows (row)",
            )
    elif det_col or train[id_col].duplicated().any():
        what = f"column {det_col!r}" if det_col else f"ids repeat in {id_col!r}"
        found.guess(
            c + "task",
            "detect",
            f"train.csv looks like detection ({what}); guessed detect: set "
            "competition.task to classify, segment or detect, and check the target",
        )
    else:
        found.ok(c + "task", task, "one row per image")

    _infer_images(found, data_dir, train, test, sub, id_col, image_col, value_ext)
    if found.values.get(c + "task") == "segment" and found.values.get("data.image_size", 32) < 32:
        found.ok("data.image_size", 32, "a U-Net takes multiples of 32")
    found.ok_groups(data_dir, train, test if test is not None else sub)
    return found


def _infer_images(
    found: _Found,
    data_dir: Path,
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    sub: pd.DataFrame | None,
    id_col: str,
    image_col: str | None,
    value_ext: str | None,
) -> None:
    c = "competition."
    # --- training images
    train_values = _sample(train, image_col or id_col, N_CHECK)
    train_dir: Path | None = None
    ext_used: str | None = None
    for folder in _candidates(data_dir, TRAIN_DIRS):
        ext_used = _resolve(folder, train_values, try_exts=True)
        if ext_used is not None:
            train_dir = folder
            break
    if train_dir is not None:
        found.ok(c + "image_dir", _rel(train_dir, data_dir), "the first ids are files there")
        if image_col is None and ext_used == "":
            image_col = id_col  # files named exactly as the ids
            found.ok(c + "image_column", image_col, "the ids are the file names")
    else:
        guess_dir = next(
            (data_dir / d for d in TRAIN_DIRS if (data_dir / d).is_dir()), data_dir / "train"
        )
        found.guess(
            c + "image_dir",
            _rel(guess_dir, data_dir),
            f"the first ids of train.csv ({', '.join(train_values[:3])}) are not image files "
            f"in any folder of {data_dir}; guessed {guess_dir.name}/: set "
            "competition.image_dir to the folder of training images",
        )

    # --- extension
    if image_col is not None and value_ext:
        found.ok(c + "image_ext", value_ext.lower(), "from the file names in the table")
    elif image_col is not None:
        found.ok(c + "image_ext", ".png", "not used: the table names the files")
    elif ext_used:
        found.ok(c + "image_ext", ext_used, "the files found")
    else:
        seen = [e for d in (_candidates(data_dir, TRAIN_DIRS)) for e in _exts_in(d)]
        guess = Counter(seen).most_common(1)[0][0] if seen else ".png"
        found.guess(
            c + "image_ext",
            guess,
            f"no image file matched the ids; guessed {guess}"
            + (" from the files found" if seen else "")
            + ": set competition.image_ext to the extension of the image files",
        )

    # --- size of the images, for data.image_size
    if train_dir is not None and ext_used is not None:
        first = train_dir / f"{train_values[0]}{ext_used}"
        size = _image_size(first)
        if size is not None:
            w, h = size
            found.ok("data.image_size", _baseline_size(min(w, h)), f"images are {w}x{h}")

    # --- test images
    test_values: list[str] = []
    source = ""
    if test is not None:
        col = image_col if image_col in test.columns else id_col if id_col in test.columns else None
        if col is not None:
            test_values, source = _sample(test, col, N_CHECK), "test.csv"
        else:
            found.guess(
                c + "test_csv",
                _DataPath("test.csv"),
                f"test.csv has no column {id_col!r}: check competition.id_column, or set "
                "competition.test_csv to null to take the test ids from sample_submission.csv",
            )
    if not test_values and sub is not None and len(sub.columns):
        test_values, source = _sample(sub, sub.columns[0], N_CHECK), "sample_submission.csv"
    extra = [train_dir] if train_dir is not None else []
    test_dir = None
    if test_values:
        for folder in _candidates(data_dir, TEST_DIRS, extra):
            if _resolve(folder, test_values, try_exts=True) is not None:
                test_dir = folder
                break
    existing = next((data_dir / d for d in TEST_DIRS if (data_dir / d).is_dir()), None)
    if test_dir is not None:
        found.ok(
            c + "test_image_dir",
            _rel(test_dir, data_dir),
            f"the first ids of {source} are files there",
        )
    elif not test_values and existing is not None:
        found.ok(c + "test_image_dir", _rel(existing, data_dir), "the test folder")
    elif test_values:
        found.guess(
            c + "test_image_dir",
            _rel(existing, data_dir) if existing else None,
            f"the first ids of {source} ({', '.join(test_values[:3])}) are not image files in "
            f"any folder of {data_dir}: set competition.test_image_dir to the folder of test "
            "images (null if they only exist when the notebook is scored)",
        )
    else:
        found.guess(
            c + "test_image_dir",
            None,
            "no test.csv, sample_submission.csv or test folder found: set "
            "competition.test_image_dir to the folder of test images",
        )


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as img:
            return img.size
    except Exception:  # unreadable or a format PIL lacks (DICOM): keep the default size
        return None


def _baseline_size(side: int) -> int:
    size = min(side, MAX_IMAGE_SIZE)
    if size >= 32:
        size -= size % 32
    return max(size, 8)


# ---------------------------------------------------------------------------------------------
# writing


def _as_written(value: Any, prefix: str) -> Any:
    if isinstance(value, _DataPath):
        return f"{prefix}/{value}" if value else prefix
    return value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./+-]*")


def _yaml(value: Any) -> str:
    """One YAML flow value that reads back as `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # PyYAML reads 1e-05 as a string, 1.0e-05 as a float
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _line(key: str, value: Any, comment: str = "", todo: bool = False) -> str:
    text = f"  {key}: {_yaml(value)}"
    comment = TODO if todo else comment
    if not comment:
        return text
    return text + " " * max(2, 30 - len(text)) + comment


def _render_config(found: _Found, name: str, prefix: str) -> str:
    def line(key: str, default: Any = None, comment: str = "") -> str:
        value = _as_written(found.values.get(key, default), prefix)
        return _line(key.split(".", 1)[1], value, comment, key in found.unresolved)

    c = "competition."
    out = [
        f"# medalist config for {name}, written by `medalist new`.",
        "# Paths are relative to the project folder. Lines marked TODO were guesses: check them.",
        "",
        "# The competition: its files, columns and metric.",
        "competition:",
        _line("name", name),
        line(c + "task", "classify", "# classify | segment | detect"),
        line(c + "target_type", "auto", "# auto | multiclass | binary | multilabel | regression"),
        line(c + "train_csv"),
        line(c + "test_csv"),
        line(c + "image_dir"),
        line(c + "test_image_dir"),
        line(c + "sample_submission"),
        line(c + "id_column"),
        line(c + "image_column", None, "# the column of file names; null: id + image_ext"),
        line(c + "image_ext", ".png"),
        line(c + "target_column"),
        line(c + "classes", None, "# null: taken from the target values"),
        *(
            found.groups.yaml_lines()
            if found.groups is not None
            else [line(c + "group_column", None, GROUP_COMMENT)]
        ),
        line(c + "metric", "accuracy", "# accuracy | f1 | roc_auc | log_loss | qwk | rmse"),
        *(
            [
                line(c + "mask_dir", None, "# masks named like the images; null: RLE column"),
                line(c + "rle_order", "column", "# column | row: how the RLE counts pixels"),
                line(c + "class_column", None, "# several classes: a row per image and class"),
            ]
            if found.values.get(c + "task") == "segment"
            else []
        ),
        "",
        "# Validation folds (`medalist folds`).",
        "cv:",
        line(
            "cv.scheme",
            "stratified",
            "# kfold | stratified | group | stratified_group | multilabel",
        ),
        _line("n_splits", 5),
        _line("seed", 42),
        "",
        "# The network: any timm name; pretrained weights only from a local file (models/).",
        "model:",
        _line("backbone", "resnet18"),
        _line("pretrained", False, "# false | true (weights present locally) | a path"),
        "",
        "# Images: size, workers, cache, augmentation (albumentations names).",
        "data:",
        line("data.image_size", 224),
        _line("num_workers", 0),
        _line("cache", True),
        _line("augment", [{"name": "HorizontalFlip", "p": 0.5}]),
        "",
        "# Training.",
        "train:",
        _line("epochs", 10),
        _line("batch_size", 64),
        "  lr: 1.0e-3",
        _line("seed", 0),
        "",
        "# Tracking: the run directory is the truth; trackers mirror it.",
        "track:",
        _line("backends", ["mlflow"]),
        _line("experiment", name),
        "",
    ]
    return "\n".join(out)


def _validated(text: str, name: str) -> str:
    try:
        validate_config(yaml.safe_load(text), source=f"the config written for {name}")
    except (UserError, yaml.YAMLError) as exc:  # our fault, not the user's: exit code 1
        raise RuntimeError(f"medalist new wrote a config that does not load: {exc}") from exc
    return text


def _readme(name: str, data_dir: Path, linked: bool, how_to_run: str = "") -> str:
    data_line = (
        f"- `data/`: a link to `{data_dir}` (not in git)."
        if linked
        else f"- the data stays in `{data_dir}`; the config names it by absolute path."
    )
    return f"""# {name}

A Kaggle image competition project made by `medalist new` from `{data_dir}`.

- `configs/baseline.yaml`: the first config, inferred from the data; check lines marked TODO.
{data_line}
- `models/`: local pretrained weights (there is no download: point `model.pretrained` here).
- `folds/`: the fold assignment, `runs/`: one folder per run (neither in git).

{how_to_run}
## The medalist commands

```
medalist folds configs/baseline.yaml     # make the validation folds
medalist train configs/baseline.yaml     # train every fold, out-of-fold predictions, CV
medalist predict runs/<name>             # submission.csv, checked against the sample
medalist runs                            # the ledger of every run
```

## Git

This folder is a git repository with nothing committed yet. Commit the code before each run
(`git add -A && git commit -m "what this run tries"`): each run records its commit, and the
diff when the tree was dirty. The data, runs and tracker files stay out of git (.gitignore).
"""


def _git_init(dest: Path) -> bool:
    """`git init` in `dest`; False (and nothing else) when git is not installed or fails."""
    git = shutil.which("git")
    if git is None:
        return False
    done = subprocess.run([git, "init", "-q", str(dest)], capture_output=True, text=True)
    return done.returncode == 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _link(link: Path, target: Path) -> bool:
    try:
        os.symlink(target, link, target_is_directory=True)
    except (OSError, NotImplementedError):
        return False
    return True


def _undo(dest: Path, made_dest: bool) -> None:
    """Remove what this call made in `dest` (it was empty or absent before)."""
    if not dest.is_dir() or dest.is_symlink():
        return
    for child in dest.iterdir():
        if child.is_symlink() or not child.is_dir():
            child.unlink(missing_ok=True)
        else:
            shutil.rmtree(child, ignore_errors=True)
    if made_dest:
        try:
            dest.rmdir()
        except OSError:
            pass


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
