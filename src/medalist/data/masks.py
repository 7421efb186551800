"""The masks of a segmentation table: from a folder of mask files or from run-length text (one
class, a column per class, or one row per image and class), resized to the training size, and
the strata that folds balance (empty or not, then area quartiles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medalist.config.schema import Config
from medalist.data.images import Size, height_width, image_size
from medalist.data.rle import rle_area, rle_decode
from medalist.errors import UserError


def _resize_mask(mask: np.ndarray, size: Size) -> np.ndarray:
    import cv2

    h, w = height_width(size)
    if mask.shape == (h, w):
        return mask
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


def mask_paths(cfg: Config, image_paths: list[Path]) -> list[Path]:
    folder = cfg.path(cfg.competition.mask_dir)
    return [folder / (p.stem + cfg.competition.mask_ext) for p in image_paths]


def class_mask_paths(cfg: Config, image_paths: list[Path], cls: str) -> list[Path]:
    """The mask file of each image for one class (`competition.mask_pattern`)."""
    folder, pattern = cfg.path(cfg.competition.mask_dir), cfg.competition.mask_pattern
    return [folder / pattern.replace("{id}", p.stem).replace("{class}", cls) for p in image_paths]


def pattern_classes(cfg: Config, train: pd.DataFrame | None) -> list[str]:
    """The classes of a mask file per image and class: `competition.classes`, else the class
    parts of the folder's file names whose image part is a training image."""
    import re

    from medalist.data.tables import image_paths

    comp = cfg.competition
    if comp.classes is not None or train is None:
        return [str(c) for c in comp.classes or []]
    stems = {p.stem for p in image_paths(cfg, train, cfg.path(comp.image_dir))}
    parts = re.escape(comp.mask_pattern).split(re.escape("{class}"))
    found: set[str] = set()
    folder = cfg.path(comp.mask_dir)
    for lazy in (True, False):  # an id or a class may hold the separator: try both splits
        where = "(?P<id>.+?)" if lazy else "(?P<id>.+)"
        rx = re.compile("(?P<class>.+)".join(parts).replace(re.escape("{id}"), where) + "$")
        for path in folder.iterdir() if folder.is_dir() else []:
            m = rx.match(path.name)
            if m and m["id"] in stems:
                found.add(m["class"])
        if found:
            break
    if not found:
        raise UserError(
            f"no file in {folder} matches competition.mask_pattern {comp.mask_pattern!r} for "
            "a training image: fix the pattern, or list the classes in competition.classes"
        )
    return sorted(found)


def read_mask_file(path: Path) -> np.ndarray:
    from medalist.data.images import open_image

    if not path.is_file():
        raise UserError(
            f"mask {path} not found: each training image needs a mask of the same name in "
            "competition.mask_dir (an empty mask for images without the object)"
        )
    with open_image(path) as img:
        return (np.asarray(img.convert("L")) > 0).astype(np.uint8)


def decode_row(
    cfg: Config, text: object, shape: tuple[int, int], row: int, column: str, image_id: object
) -> np.ndarray:
    try:
        return rle_decode(text, shape, cfg.competition.rle_order)
    except ValueError as exc:
        comp = cfg.competition
        where = (
            f"image {image_id!r}, class {column.removeprefix(f'{comp.target_column}_')!r}"
            if comp.class_column is not None
            else f"line {row + 2}, column {column!r}"
        )
        raise UserError(
            f"{cfg.path(comp.train_csv)} {where}: not a valid run-length mask for a "
            f"{shape[0]}x{shape[1]} image ({exc}); fix the row, or check competition.rle_order"
        ) from None


def mask_layout(cfg: Config, train: pd.DataFrame | None = None) -> tuple[list[str], list[str]]:
    """(classes, the train table's run-length columns, one per class) of a config; no columns
    for a mask folder. Several classes come from a list of target columns (one per class) or
    from `competition.class_column` (one row per image and class, pivoted by load_train)."""
    from medalist.data.tables import mask_column

    comp = cfg.competition
    if comp.mask_dir is not None and comp.mask_pattern is not None:  # a file per image and class
        return pattern_classes(cfg, train), []
    if comp.mask_dir is not None:
        return ["mask"], []
    if comp.class_column is not None:
        classes = (train.attrs.get("mask_classes") if train is not None else None) or [
            str(c) for c in comp.classes or []
        ]
        return list(classes), [mask_column(comp.target_column, c) for c in classes]
    columns = cfg.target_columns
    return (["mask"] if len(columns) == 1 else list(columns)), list(columns)


def load_masks(
    cfg: Config,
    df: pd.DataFrame,
    image_paths: list[Path],
    size: Size,
    columns: list[str],
    classes: list[str] | None = None,
) -> np.ndarray:
    """The table's masks at `size`: (n, H, W) for one class, (n, classes, H, W) for several,
    from mask files (`classes`: those of a file per image and class) or run-length text."""
    from medalist.console import progress

    if cfg.competition.mask_pattern is not None:
        return _load_class_files(cfg, image_paths, size, classes or classes_of(cfg, df))
    if cfg.competition.mask_dir is not None:
        out = np.zeros((len(df), *height_width(size)), dtype=np.uint8)
        files = mask_paths(cfg, image_paths)
        with progress("reading masks", len(files)) as advance:
            for i, path in enumerate(files):
                mask = read_mask_file(path)
                w, h = image_size(image_paths[i])
                if mask.shape != (h, w):
                    raise UserError(
                        f"mask {path} is {mask.shape[0]}x{mask.shape[1]} but its image "
                        f"{image_paths[i]} is {h}x{w} (height x width): a mask must be the size "
                        "of its image; fix the file or competition.mask_dir"
                    )
                out[i] = _resize_mask(mask, size)
                advance(1)
        return out
    out = np.zeros((len(df), len(columns), *height_width(size)), dtype=np.uint8)
    texts = df[columns].to_numpy()
    ids = df[cfg.competition.id_column].tolist()
    with progress("decoding masks", len(df)) as advance:
        for i, path in enumerate(image_paths):
            w, h = image_size(path)
            for j, column in enumerate(columns):
                mask = decode_row(cfg, texts[i, j], (h, w), i, column, ids[i])
                out[i, j] = _resize_mask(mask, size)
            advance(1)
    return out[:, 0] if len(columns) == 1 else out


def classes_of(cfg: Config, df: pd.DataFrame) -> list[str]:
    return mask_layout(cfg, df)[0]


def _load_class_files(
    cfg: Config, image_paths: list[Path], size: Size, classes: list[str]
) -> np.ndarray:
    """(n, classes, H, W) masks from a file per image and class (non-zero pixels are the
    class); (n, H, W) for one class."""
    from medalist.console import progress
    from medalist.data.index_masks import check_mask_size

    out = np.zeros((len(image_paths), len(classes), *height_width(size)), dtype=np.uint8)
    with progress("reading masks", len(image_paths) * len(classes)) as advance:
        for j, cls in enumerate(classes):
            for i, path in enumerate(class_mask_paths(cfg, image_paths, str(cls))):
                mask = read_mask_file(path)
                check_mask_size(path, mask.shape, image_paths[i])
                out[i, j] = _resize_mask(mask, size)
                advance(1)
    return out[:, 0] if len(classes) == 1 else out


def mask_strata(cfg: Config, train: pd.DataFrame, image_paths: list[Path]) -> pd.Series:
    """What stratified folds balance for masks: empty or not, then quartiles of the area (all
    classes together)."""
    if cfg.competition.mask_mode == "index":  # any class but the first (background), not void
        from medalist.data.index_masks import foreground_area

        area = pd.Series([foreground_area(cfg, p) for p in mask_paths(cfg, image_paths)])
    elif cfg.competition.mask_pattern is not None:  # all classes together
        area = pd.Series(np.zeros(len(train)))
        for cls in classes_of(cfg, train):
            files = class_mask_paths(cfg, image_paths, cls)
            area += pd.Series([int(read_mask_file(p).sum()) for p in files])
    elif cfg.competition.mask_dir is not None:
        area = pd.Series([int(read_mask_file(p).sum()) for p in mask_paths(cfg, image_paths)])
    else:
        columns = mask_layout(cfg, train)[1]
        area = sum(train[c].map(rle_area).astype(float) for c in columns)
        area = pd.Series(np.asarray(area, dtype=float))
    strata = pd.Series(0, index=range(len(train)))
    full = area.to_numpy() > 0
    if full.sum() >= 4 * cfg.cv.n_splits:
        # Masks all of one area (full frames, boxes of one size) make one bin, not NaN.
        bins = pd.qcut(area[full], q=4, labels=False, duplicates="drop").fillna(0)
        strata[full] = bins.to_numpy(dtype=np.int64) + 1
    else:
        strata[full] = 1
    # A stratum smaller than the fold count joins its neighbour (empty joins the smallest areas).
    while strata.nunique() > 1:
        counts = strata.value_counts().sort_index()
        if counts.min() >= cfg.cv.n_splits:
            break
        small = int(counts.idxmin())
        values = list(counts.index)
        i = values.index(small)
        strata[strata == small] = values[i + 1] if i + 1 < len(values) else values[i - 1]
    return strata
