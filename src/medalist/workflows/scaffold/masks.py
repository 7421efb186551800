"""What `medalist new` reads from a folder of masks and from joined ids: index masks (a few small
class values, `competition.mask_mode: index`, a value the sample's classes don't list taken as
void), a mask file per image and class (`competition.mask_pattern`), and ids that join image
and class in one column (`competition.id_class_separator`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medalist.workflows.scaffold.found import Found

C = "competition."
N_MASKS = 200  # how many mask files decide the pixel values
MAX_INDEX_VALUES = 32  # more distinct values than this are not class indices
MAX_JOINED_CLASSES = 32
BINARY_VALUES = ({0, 1}, {0, 255})


def _mask_values(files: list[Path]) -> set[int]:
    from medalist.data.images import open_image

    values: set[int] = set()
    for path in files[:N_MASKS]:
        with open_image(path) as img:
            a = np.asarray(img if img.mode in ("L", "P", "I", "I;16") else img.convert("L"))
        values.update(np.unique(a).tolist())
        if len(values) > MAX_INDEX_VALUES:
            break
    return values


def _as_int(value: object) -> int | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def sample_classes(sub: pd.DataFrame | None, id_col: str, class_names: tuple) -> tuple:
    """(the sample's class column or None, the classes it lists: its values or its columns)."""
    from medalist.workflows.scaffold.infer import _named_like

    if sub is None:
        return None, []
    col = _named_like([c for c in sub.columns if c != id_col], class_names)
    if col is not None:
        return col, sorted(sub[col].dropna().astype(str).unique())
    return None, [str(c) for c in sub.columns if c != id_col]


def infer_mask_folder(
    found: Found,
    folder: Path,
    train: pd.DataFrame,
    sub: pd.DataFrame | None,
    id_col: str,
    class_names: tuple,
) -> None:
    """A mask per image and class (`<id>_<class>.png`), index masks, or one-class masks."""
    ids = [Path(str(v)).stem for v in train[id_col].dropna().astype(str).head(N_MASKS)]
    files = sorted(p for p in folder.iterdir() if p.is_file())
    by_stem = {p.stem: p for p in files}
    cls_col, listed = sample_classes(sub, id_col, class_names)
    if cls_col is not None:
        found.ok(C + "class_column", cls_col, "the sample has a row per image and class")
    if ids and not any(i in by_stem for i in ids[:20]):
        per_class = _class_suffixes(files, ids)
        if per_class is not None:
            pattern, classes = per_class
            found.ok(C + "mask_pattern", pattern, "a mask file per image and class")
            found.ok(C + "classes", classes, "the mask files' class suffixes")
            return
    values = _mask_values([by_stem[i] for i in ids if i in by_stem])
    if values <= BINARY_VALUES[0] or values <= BINARY_VALUES[1] or not values:
        return  # one class: non-zero pixels are the object
    small = sorted(v for v in values if v != 255)
    if len(values) > MAX_INDEX_VALUES or (small and small[-1] >= 64):
        return  # many values: not class indices (a one-class mask saved with grey edges?)
    found.ok(C + "mask_mode", "index", f"the masks hold class indices {_show(values)}")
    found.ok(C + "metric", "dice", "index masks: mean Dice per image and class, void left out")
    listed_ints = {v for v in map(_as_int, listed) if v is not None}
    if listed_ints:  # a value the sample's classes don't list (besides 0) is void
        void = sorted(v for v in values if v != 0 and v not in listed_ints)
        why = f"pixel value {{}} is not among the sample's classes ({', '.join(listed)})"
    else:
        void = [255] if 255 in values else []
        why = "pixel value {} marks void pixels (the usual convention)"
    if len(void) == 1:
        found.ok(C + "ignore_index", void[0], why.format(void[0]) + ": taken as void, ignored")
    elif len(void) > 1:
        found.guess(
            C + "ignore_index",
            void[-1],
            f"pixel values {', '.join(map(str, void))} are not among the sample's classes: "
            "set competition.ignore_index to the void value and list the others in "
            "competition.classes",
        )
    top = max([v for v in values if v not in void] + list(listed_ints))
    found.ok(C + "classes", list(range(top + 1)), "class indices 0 (background) and up")


def _show(values: set[int]) -> str:
    return "{" + ", ".join(map(str, sorted(values))) + "}"


def _class_suffixes(files: list[Path], ids: list[str]) -> tuple[str, list[str]] | None:
    """("{id}<sep>{class}<ext>", the classes) when the mask files are the ids with a suffix."""
    known = set(ids)
    classes: set[str] = set()
    seps: set[str] = set()
    exts: set[str] = set()
    for path in files:
        for sep in ("_", "-", "."):
            head, _, tail = path.stem.rpartition(sep)
            if head in known and tail:
                classes.add(tail)
                seps.add(sep)
                exts.add(path.suffix)
                break
    if not classes or len(seps) != 1 or len(exts) != 1 or len(classes) > MAX_JOINED_CLASSES:
        return None
    return "{id}" + seps.pop() + "{class}" + exts.pop(), sorted(classes)


def _file_names(data_dir: Path, limit: int = 20000) -> set[str]:
    """The names and stems of the files in the data folder and two levels below."""
    names: set[str] = set()
    for pattern in ("*", "*/*", "*/*/*"):
        for path in data_dir.glob(pattern):
            names.update((path.name, path.stem))
            if len(names) > limit:
                return names
    return names


def split_joined_ids(
    found: Found, frames: list[pd.DataFrame | None], id_col: str, data_dir: Path
) -> list[pd.DataFrame | None]:
    """Ids that join image and class (`0002cc93b.jpg_1`): the frames with the id column split
    into the image id and a class column, when the first frame's ids read that way: a few
    suffixes, each on several images, and the part before them names an image file while the
    whole id names none."""
    train = frames[0]
    if train is None or id_col not in train.columns:
        return frames
    values = train[id_col].dropna().astype(str)
    for sep in ("_",):
        if not len(values) or not values.str.contains(re.escape(sep)).all():
            continue
        heads, tails = values.str.rpartition(sep)[0], values.str.rpartition(sep)[2]
        n_tails = tails.nunique()
        if not 1 < n_tails <= MAX_JOINED_CLASSES or heads.nunique() < 2:
            continue
        if tails.value_counts().min() < 2 or heads.value_counts().mean() < 2:
            continue  # each class on several images, each image with several classes
        files = _file_names(data_dir)
        if not all(h in files for h in heads.head(5)) or any(v in files for v in values.head(5)):
            continue
        name = id_col.rpartition(sep)[2] if sep in id_col else "class"
        found.ok(C + "id_class_separator", sep, f"the ids join image and class ({values.iloc[0]})")
        found.ok(C + "class_column", name, "the part of the id after the separator")
        out: list[pd.DataFrame | None] = []
        for frame in frames:
            if frame is None or id_col not in frame.columns:
                out.append(frame)
                continue
            parts = frame[id_col].astype(str).str.rpartition(sep)
            frame = frame.assign(**{id_col: parts[0]})
            frame.insert(list(frame.columns).index(id_col) + 1, name, parts[2])
            out.append(frame)
        return out
    return frames
