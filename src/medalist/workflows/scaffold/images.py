"""The image files of a competition folder: which folders hold the training and test images,
the extension their names need, and the image size the baseline config starts from."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.io import sample_id_column
from medalist.workflows.scaffold.augment import image_kind, preset
from medalist.workflows.scaffold.found import DataPath, Found, rel

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm")
TRAIN_DIRS = ("train", "train_images", "images", "train/images")
TEST_DIRS = ("test", "test_images", "test/images")
N_CHECK = 5  # how many of the first ids must resolve to files
N_SIZES = 20  # how many of the first images decide the input size
N_KIND = 8  # how many of them decide their kind (photos, documents, scans): the most common
MIN_RATIO = 1.2  # longer side / shorter side from which the input keeps the aspect
RATIO_SPREAD = 1.15  # how far apart the images' aspects may be and still be one aspect
ASPECT_ERROR = 0.15  # how far the input's aspect may be from the images' (multiples of 32)
MAX_IMAGE_SIZE = 224


def first_values(frame: pd.DataFrame, column: str, n: int) -> list[str]:
    """The first `n` non-empty values of `column`, as text."""
    return [str(v) for v in frame[column].dropna().head(n)]


def image_suffix(values: Sequence[str]) -> str | None:
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


def local_values(folder: Path, values: Sequence[str]) -> list[str]:
    """The values as the loader reads them under `folder` (another machine's absolute paths
    lose the folders that exist nowhere here: `tables.local_names`)."""
    from medalist.data.tables import local_names

    return list(local_names(pd.Series(list(values), dtype=object), folder))


def _dropped(folder: Path, values: Sequence[str]) -> str:
    """ "; another machine's folders <prefix> dropped" when the values are paths of another
    machine that resolve under `folder` without their leading folders; else ""."""
    first, local = values[0], local_values(folder, values[:1])[0]
    if local == first:
        return ""
    return f"; another machine's folders {first[: len(first) - len(local)]} dropped"


def _resolve(folder: Path, values: Sequence[str], try_exts: bool) -> str | None:
    """The suffix ("" for none) that makes every value a file in `folder`, else None."""
    if not values or not folder.is_dir():
        return None
    values = local_values(folder, values)
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


def infer_images(
    found: Found,
    data_dir: Path,
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    sub: pd.DataFrame | None,
    id_col: str,
    image_col: str | None,
    value_ext: str | None,
) -> None:
    """The folders of training and test images, their extension and the baseline image size."""
    train_values = first_values(train, image_col or id_col, N_CHECK)
    train_dir, ext_used, image_col = _train_images(found, data_dir, train_values, id_col, image_col)
    if train_dir is None and _hdf5_images(found, data_dir, train, image_col or id_col):
        _test_images(found, data_dir, test, sub, id_col, image_col, None)
        return
    if train_dir is None and image_col is None:
        from medalist.workflows.scaffold.nested import find_nested

        nested = find_nested(_candidates(data_dir, TRAIN_DIRS), train, id_col)
        if nested is not None:
            _nested_images(found, data_dir, nested, train, test, sub, id_col)
            return
    _image_ext(found, data_dir, image_col, value_ext, ext_used)
    if train_dir is not None and ext_used is not None:
        sample = local_values(train_dir, first_values(train, image_col or id_col, N_SIZES))
        paths = [train_dir / f"{v}{ext_used}" for v in sample]
        _baseline_input(found, paths[0], paths)
    _test_images(found, data_dir, test, sub, id_col, image_col, train_dir)


def _hdf5_images(found: Found, data_dir: Path, train: pd.DataFrame, column: str) -> bool:
    """The training images in an HDF5 file, a dataset per id (ISIC 2024): set, and measured."""
    from medalist.workflows.scaffold.hdf5 import hdf5_holding, measure_hdf5

    path = hdf5_holding(data_dir, first_values(train, column, N_CHECK), "train")
    if path is None:
        return False
    c = "competition."
    found.ok(c + "image_dir", rel(path, data_dir), "an HDF5 file of images named by the ids")
    found.ok(c + "image_ext", ".png", "not used: the HDF5 file holds the images")
    measure_hdf5(path, first_values(train, column, N_SIZES), partial(_baseline_input, found))
    return True


def _baseline_input(found: Found, first: Path, paths: Sequence[Path]) -> None:
    """The input size the first images imply, and the augmentation preset of their kind."""
    known = [size for size in (_image_size(p) for p in paths) if size is not None]
    if known:
        found.ok("data.image_size", *baseline_size(known))
    # the kind most of the first images are (a set may mix a few grey scans into colour ones)
    kinds = [k for k in (image_kind(p) for p in dict.fromkeys([first, *paths[:N_KIND]])) if k]
    common = Counter(k[0] for k in kinds).most_common(1)
    kind = next(k for k in kinds if k[0] == common[0][0]) if common else None
    if kind is not None:
        comment, steps = preset(kind[0], found.values.get("competition.task", "classify"))
        found.ok("data.augment", steps, f"{kind[1]}; preset {comment}")


def _nested_images(
    found: Found,
    data_dir: Path,
    nested: Any,
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    sub: pd.DataFrame | None,
    id_col: str,
) -> None:
    """Images in subfolders named by columns: the pattern, and the test folder it resolves in
    (the test table must hold the same columns)."""
    from medalist.data.tables import pattern_fields, pattern_names
    from medalist.workflows.scaffold.nested import resolves

    c = "competition."

    folders = ", ".join(pattern_fields(nested.pattern)[:-1])
    found.ok(c + "image_dir", rel(nested.folder, data_dir), "the images are in subfolders there")
    found.ok(c + "image_pattern", nested.pattern, f"subfolders named by {folders}")
    found.ok(c + "image_ext", nested.ext, "not used: the pattern names the files")
    paths = [nested.folder / n for n in pattern_names(nested.pattern, train.head(N_SIZES))]
    _baseline_input(found, paths[0], paths)
    table, source = (test, found.test_name) if test is not None else (sub, found.sub_name)
    for folder in _candidates(data_dir, TEST_DIRS):
        if table is not None and resolves(folder, nested.pattern, table):
            why = f"{source}'s rows name files there"
            found.ok(c + "test_image_dir", rel(folder, data_dir), why)
            return
    found.guess(
        c + "test_image_dir",
        next((rel(data_dir / d, data_dir) for d in TEST_DIRS if (data_dir / d).is_dir()), None),
        f"the first rows of {source} name no file through {nested.pattern!r}: set "
        "competition.test_image_dir to the folder of test images, and competition.test_csv to "
        "a table with those columns (null if the images only exist when the notebook is scored)",
    )


def _train_images(
    found: Found, data_dir: Path, train_values: list[str], id_col: str, image_col: str | None
) -> tuple[Path | None, str | None, str | None]:
    """The folder where the first ids are files, the suffix they need, and the image column."""
    c = "competition."
    train_dir: Path | None = None
    ext_used: str | None = None
    for folder in _candidates(data_dir, TRAIN_DIRS):
        ext_used = _resolve(folder, train_values, try_exts=True)
        if ext_used is not None:
            train_dir = folder
            break
    if train_dir is not None:
        why = "the first ids are files there" + _dropped(train_dir, train_values)
        found.ok(c + "image_dir", rel(train_dir, data_dir), why)
        if image_col is None and ext_used == "":
            image_col = id_col  # files named exactly as the ids
            found.ok(c + "image_column", image_col, "the ids are the file names")
    else:
        guess_dir = next(
            (data_dir / d for d in TRAIN_DIRS if (data_dir / d).is_dir()), data_dir / "train"
        )
        found.guess(
            c + "image_dir",
            rel(guess_dir, data_dir),
            f"the first ids of {found.train_name} ({', '.join(train_values[:3])}) are not "
            f"image files in any folder of {data_dir}; guessed {guess_dir.name}/: set "
            "competition.image_dir to the folder of training images",
        )
    return train_dir, ext_used, image_col


def _image_ext(
    found: Found,
    data_dir: Path,
    image_col: str | None,
    value_ext: str | None,
    ext_used: str | None,
) -> None:
    c = "competition."
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


def _test_images(
    found: Found,
    data_dir: Path,
    test: pd.DataFrame | None,
    sub: pd.DataFrame | None,
    id_col: str,
    image_col: str | None,
    train_dir: Path | None,
) -> None:
    c = "competition."
    test_values: list[str] = []
    source = ""
    if test is not None:
        col = image_col if image_col in test.columns else id_col if id_col in test.columns else None
        if col is not None:
            test_values, source = first_values(test, col, N_CHECK), found.test_name
        else:
            found.guess(
                c + "test_csv",
                DataPath(found.test_name),
                f"{found.test_name} has no column {id_col!r}: check competition.id_column, or "
                f"set competition.test_csv to null to take the test ids from {found.sub_name}",
            )
    if not test_values and sub is not None and len(sub.columns):
        test_values, source = first_values(sub, sample_id_column(sub), N_CHECK), found.sub_name
    extra = [train_dir] if train_dir is not None else []
    test_dir = None
    if test_values:
        for folder in _candidates(data_dir, TEST_DIRS, extra):
            if _resolve(folder, test_values, try_exts=True) is not None:
                test_dir = folder
                break
    existing = next((data_dir / d for d in TEST_DIRS if (data_dir / d).is_dir()), None)
    if test_dir is None and test_values:
        from medalist.workflows.scaffold.hdf5 import hdf5_holding

        test_h5 = hdf5_holding(data_dir, test_values, "test")
        if test_h5 is not None:
            why = f"an HDF5 file of images named by the ids of {source}"
            found.ok(c + "test_image_dir", rel(test_h5, data_dir), why)
            return
    if test_dir is not None:
        found.ok(
            c + "test_image_dir",
            rel(test_dir, data_dir),
            f"the first ids of {source} are files there" + _dropped(test_dir, test_values),
        )
    elif not test_values and existing is not None:
        found.ok(c + "test_image_dir", rel(existing, data_dir), "the test folder")
    elif test_values:
        found.guess(
            c + "test_image_dir",
            rel(existing, data_dir) if existing else None,
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
        from medalist.data.images import open_image

        with open_image(path) as img:  # DICOM too, through pydicom
            return img.size
    except Exception:  # unreadable (or DICOM without pydicom): keep the default size
        return None


def _baseline_size(side: int) -> int:
    size = min(side, MAX_IMAGE_SIZE)
    if size >= 32:
        size -= size % 32
    return max(size, 8)


def baseline_size(sizes: Sequence[tuple[int, int]]) -> tuple[int | list[int], str]:
    """The input size a baseline trains at, for training images of `sizes` (width, height),
    and why: the median shorter side, down to a multiple of 32 and at most MAX_IMAGE_SIZE; and
    when the images share one aspect (every one landscape or every one portrait, their ratios
    within RATIO_SPREAD of each other, at least MIN_RATIO: 4:3, 16:9), `[height, width]` with the
    longer side at that aspect (a multiple of 32, at most twice MAX_IMAGE_SIZE; a square when the
    nearest multiple is more than ASPECT_ERROR off the aspect) instead of a square that would
    squash them."""
    w, h = sizes[0]
    seen = f"images are {w}x{h}" if len(set(sizes)) == 1 else f"images are {w}x{h}, ..."
    short = _baseline_size(int(np.median([min(s) for s in sizes])))
    ratios = np.array([sw / sh for sw, sh in sizes if sw > 0 and sh > 0])
    wide = bool(len(ratios) and (ratios >= MIN_RATIO).all())
    tall = bool(len(ratios) and (ratios <= 1 / MIN_RATIO).all())
    if short < 32 or not (wide or tall) or ratios.max() / ratios.min() > RATIO_SPREAD:
        return short, seen
    ratio = float(np.median(ratios if wide else 1 / ratios))
    long = int(min(round(short * ratio / 32) * 32, 2 * MAX_IMAGE_SIZE))
    if abs(long / short - ratio) > ASPECT_ERROR * ratio and long < 2 * MAX_IMAGE_SIZE:
        return short, seen  # too small for multiples of 32 to draw the aspect (64x48: 32x32)
    size = [short, long] if wide else [long, short]
    return size, f"{seen}: their aspect {ratio:.2f}:1 kept, height x width"
