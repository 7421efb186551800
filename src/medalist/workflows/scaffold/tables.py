"""Which files of a competition folder are its tables: the training table (train.csv, or the
names other competitions give it: train_labels.csv, trainLabels.csv, labels.csv, ...), the
test table and the sample submission."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medalist.errors import UserError
from medalist.io import read_table_csv
from medalist.workflows.scaffold.images import IMAGE_EXTS

# Stems of a training table, in order of preference, compared without case, "_", "-" or spaces.
TRAIN_STEMS = (
    "train", "trainlabels", "labels", "training", "trainsolution", "trainset", "traindata",
    "trainannotations", "trainlabel", "traindf", "trainmetadata",
)  # fmt: skip
SUB_STEMS = ("samplesubmission", "samplesubmissions", "samplesolution")
TEST_STEMS = ("test", "testset", "testdata", "testimages", "testmetadata")
# A training folder of one subfolder per class (Plant Seedlings' train/<species>/*.png).
CLASS_FOLDER_PARENTS = ("train", "train_images", "training", "images")
FOLDER_TABLE = "configs/train_folders.csv"  # the table `new` writes for them, in the project
# Or one folder of images named by their class and a number (Dogs vs. Cats' train/cat.0.jpg):
# the class is the name's letters before the first ".", "_" or "-" and a digit.
NAME_CLASS = re.compile(r"^([A-Za-z]+(?: [A-Za-z]+)*)[._-]\d")
MIN_NAMED = 5  # images each class named so must have (fewer: names, not classes)
MAX_NAMED_CLASSES = 50
# Segmentation without a table: a folder of images beside a folder of their masks.
MASK_DIRS = ("masks", "train_masks", "train/masks")


@dataclass(frozen=True)
class Tables:
    """The competition's tables, relative to its data folder (None: not there)."""

    train: str
    test: str | None
    sub: str | None
    # No training table but a folder of class subfolders: the table made from it (FOLDER_TABLE,
    # a row per image: its path inside `folder`, and its class) and that folder.
    frame: pd.DataFrame | None = None
    folder: str | None = None
    how: str = "its class folder"  # where the made table's classes come from


def _stem(path: Path) -> str:
    return re.sub(r"[^a-z0-9]", "", path.stem.lower())


def _csvs(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix.lower() == ".csv")


def _pick(csvs: list[Path], stems: tuple[str, ...]) -> Path | None:
    """The first CSV whose stem is the earliest in `stems`."""
    by_stem = {_stem(p): p for p in reversed(csvs)}
    return next((by_stem[s] for s in stems if s in by_stem), None)


def train_table(data_dir: Path, train_csv: str | None = None) -> Path | None:
    """The training table of `data_dir` (`train_csv` when given), or None when there is none.

    Raises UserError when `train_csv` is not a file, or when several CSVs are named like a
    training table and none of them by a name in TRAIN_STEMS.
    """
    if train_csv is not None:
        path = Path(train_csv)
        path = path if path.is_absolute() else data_dir / path
        if not path.is_file():
            raise UserError(
                f"--train-csv {train_csv}: no such file in {data_dir}: give the training "
                "table's file name inside the data folder"
            )
        return path
    if (data_dir / "train.csv").is_file():
        return data_dir / "train.csv"
    csvs = _csvs(data_dir)
    picked = _pick(csvs, TRAIN_STEMS)
    if picked is not None:
        return picked
    named = [p for p in csvs if _stem(p).startswith("train")]
    if len(named) == 1:
        return named[0]
    if named:
        names = ", ".join(p.name for p in named)
        raise UserError(
            f"data folder {data_dir} holds several tables named like a training table "
            f"({names}): name the one with a row per training image with --train-csv FILE"
        )
    return None


def find_tables(data_dir: Path, train_csv: str | None = None) -> Tables:
    """The training table (UserError when there is none), the test table and the sample."""
    train = train_table(data_dir, train_csv)
    folders = class_folders(data_dir) if train is None else None
    how = "its class folder"
    if train is None and folders is None:
        folders = named_classes(data_dir)
        how = "its class the first part of its file name"
    if train is None and folders is None:
        folders = mask_images(data_dir)
        how = "its masks in the mask folder"
    if train is None and folders is None:
        raise UserError(f"data folder {data_dir} has no train.csv: {_missing_hint(data_dir)}")
    others = [p for p in _csvs(data_dir) if p != train]
    sub = _pick(others, SUB_STEMS)
    if sub is None:
        named = [p for p in others if _stem(p).startswith("samplesubmission")]
        sub = named[0] if len(named) == 1 else None
    test = _pick([p for p in others if p != sub], TEST_STEMS)
    frame = folder = None
    if folders is not None:
        folder, frame = folders
        frame.columns = _folder_columns(sub)[: len(frame.columns)]
    return Tables(
        train=_rel(train, data_dir) if train is not None else FOLDER_TABLE,
        test=_rel(test, data_dir) if test else None,
        sub=_rel(sub, data_dir) if sub else None,
        frame=frame,
        folder=folder,
        how=how,
    )


def class_folders(data_dir: Path) -> tuple[str, pd.DataFrame] | None:
    """(folder, table) when a training folder holds one subfolder of images per class (two or
    more) and no images of its own: a row per image, its path inside the folder and its class
    (the subfolder's name); None otherwise."""
    for name in CLASS_FOLDER_PARENTS:
        parent = data_dir / name
        if not parent.is_dir() or any(_is_image(p) for p in parent.iterdir()):
            continue
        rows = [
            (f"{sub.name}/{f.name}", sub.name)
            for sub in sorted(p for p in parent.iterdir() if p.is_dir())
            if not sub.name.startswith(".")
            for f in sorted(sub.iterdir())
            if _is_image(f)
        ]
        if len({label for _, label in rows}) >= 2:
            return name, pd.DataFrame(rows, columns=["image", "label"])
    return None


def named_classes(data_dir: Path) -> tuple[str, pd.DataFrame] | None:
    """(folder, table) when a training folder holds images named by their class and a number
    (Dogs vs. Cats: train/cat.0.jpg, train/dog.0.jpg): a row per image, its file name and its
    class (NAME_CLASS); None unless every image is named so, with two to MAX_NAMED_CLASSES
    classes of at least MIN_NAMED images each."""
    for name in CLASS_FOLDER_PARENTS:
        parent = data_dir / name
        if not parent.is_dir():
            continue
        files = sorted(f.name for f in parent.iterdir() if _is_image(f))
        found = [NAME_CLASS.match(f) for f in files]
        if not files or any(m is None for m in found):
            continue
        labels = [m.group(1) for m in found if m is not None]
        counts = Counter(labels)
        if 2 <= len(counts) <= MAX_NAMED_CLASSES and min(counts.values()) >= MIN_NAMED:
            return name, pd.DataFrame({"image": files, "label": labels})
    return None


def mask_images(data_dir: Path) -> tuple[str, pd.DataFrame] | None:
    """(folder, table) when a training folder of images sits beside a mask folder (MASK_DIRS)
    whose files are named by the images (`a.jpg`: `a.png`, `a_mask.gif`, `a_<class>.png`): a
    row per image that has a mask, its file name; None otherwise."""
    masks = next((data_dir / d for d in MASK_DIRS if (data_dir / d).is_dir()), None)
    if masks is None:
        return None
    stems = [f.stem for f in masks.iterdir() if _is_image(f) or f.suffix.lower() == ".gif"]
    for name in CLASS_FOLDER_PARENTS:
        parent = data_dir / name
        if not parent.is_dir() or parent == masks:
            continue
        files = sorted(f.name for f in parent.iterdir() if _is_image(f))
        names = set(stems)
        prefixes = {m.rsplit(sep, 1)[0] for m in stems for sep in "_-" if sep in m}
        kept = [f for f in files if Path(f).stem in names or Path(f).stem in prefixes]
        if kept and len(kept) >= 0.5 * len(files):
            return name, pd.DataFrame({"image": kept})
    return None


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and path.is_file()


def _folder_columns(sub: Path | None) -> list[str]:
    """The made table's columns, named as the sample submission names the id and the class
    (Plant Seedlings: file, species), so that the ids and the target match it."""
    names = ["image", "label"]
    if sub is not None:
        try:
            header = list(read_table_csv(sub, str(sub), nrows=5).columns)
        except (OSError, ValueError, UserError):
            header = []
        if len(header) == 2 and header[0] != header[1]:
            names = [str(header[0]), str(header[1])]
    return names


def _rel(path: Path, data_dir: Path) -> str:
    try:
        return path.relative_to(data_dir).as_posix()
    except ValueError:
        return str(path)


def _missing_hint(data_dir: Path) -> str:
    for sub in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        try:
            found = train_table(sub)
        except UserError:
            found = None
        if found is not None:
            return f"did you mean --data {sub}?"
    if list(data_dir.glob("*.zip")):
        return "unzip the competition archive first"
    names = sorted(p.name for p in data_dir.iterdir())[:6]
    hint = f"it holds {', '.join(names)}" if names else "it is empty"
    return hint + (
        "; pass the competition folder that holds train.csv, or name the training table with "
        "--train-csv FILE"
    )
