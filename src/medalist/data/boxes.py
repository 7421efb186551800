"""Box tables for detection: Kaggle's layouts read into one row per image with its boxes.

A box table has one row per box, as Kaggle ships them: a `bbox` column of "[x, y, w, h]" text
(Global Wheat), four columns `x_min, y_min, x_max, y_max` (VinBigData), or normalised
`x_center, y_center, width, height` (YOLO); `competition.box_format` (`xywh`, `xyxy`,
`cxcywh`) and `competition.box_normalized` say how to read them when the names don't. COCO JSON
(`competition.annotations`) is the other layout. A row with an empty box, and (with
`competition.include_unlabeled_images`) an image in the folder without a row, is an image with
no box: a negative.

`image_table` gives one row per image: the id, the first row's other columns, the image's own
size (`IMAGE_WIDTH`, `IMAGE_HEIGHT`: from `image_width`/`image_height` or `width`/`height`
columns, else the file header), `N_BOXES`, and `BOXES` (a (k, 4) float array, x1 y1 x2 y2 in
the image's pixels), `LABELS` (the class of each, as text) and `LINES` (each box's line in the
file, for error messages).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from medalist.config.schema import Config
from medalist.errors import UserError

IMAGE_WIDTH, IMAGE_HEIGHT, N_BOXES = "image_width", "image_height", "n_boxes"
BOXES, LABELS, LINES = "boxes", "box_labels", "box_lines"
SINGLE_CLASS = "object"

# The column names of each layout, in x1/cx, y1/cy, x2/w, y2/h order.
NAMED_LAYOUTS: list[tuple[str, tuple[str, ...]]] = [
    ("xyxy", ("x_min", "y_min", "x_max", "y_max")),
    ("xyxy", ("xmin", "ymin", "xmax", "ymax")),
    ("xyxy", ("x1", "y1", "x2", "y2")),
    ("cxcywh", ("x_center", "y_center", "width", "height")),
    ("cxcywh", ("x_centre", "y_centre", "width", "height")),
    ("xywh", ("x", "y", "w", "h")),
    ("xywh", ("x", "y", "width", "height")),
]
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def box_layout(cfg: Config, columns: list[str]) -> tuple[str, list[str]]:
    """(box format, the bbox column or the four coordinate columns) of a table's columns."""
    comp = cfg.competition
    if comp.box_columns is not None:
        missing = [c for c in comp.box_columns if c not in columns]
        if missing:
            raise UserError(
                f"competition.box_columns names {missing[0]!r}, which the box table lacks; "
                f"it has: {', '.join(columns[:10])}"
            )
        return comp.box_format or "xyxy", list(comp.box_columns)
    if "bbox" in columns:
        return comp.box_format or "xywh", ["bbox"]
    for fmt, names in NAMED_LAYOUTS:
        if all(n in columns for n in names):
            return comp.box_format or fmt, list(names)
    raise UserError(
        f"{comp.train_csv}: no box columns: give a 'bbox' column ([x, y, w, h]), or x_min, "
        "y_min, x_max, y_max, or x_center, y_center, width, height; or name yours in "
        "competition.box_columns"
    )


def parse_bbox_text(values: pd.Series, where: str) -> np.ndarray:
    """(n, 4) numbers of "[x, y, w, h]" cells; an empty cell or "[]" is NaN (no box)."""
    out = np.full((len(values), 4), np.nan)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        text = str(v).strip()
        if text in ("", "[]", "nan"):
            continue
        numbers = _NUMBER.findall(text)
        rest = _NUMBER.sub("", text).strip("[]() ").replace(",", "").replace(" ", "")
        if len(numbers) != 4 or rest:
            raise UserError(
                f"{where} line {i + 2}, column 'bbox': {text[:40]!r} is not four numbers "
                "[x, y, w, h]; fix the row"
            )
        out[i] = [float(n) for n in numbers]
    return out


def to_xyxy(values: np.ndarray, fmt: str) -> np.ndarray:
    """(n, 4) boxes in `fmt` as x1 y1 x2 y2."""
    a, b, c, d = values.T
    if fmt == "xyxy":
        return values.copy()
    if fmt == "xywh":
        return np.stack([a, b, a + c, b + d], axis=1)
    return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=1)


def _size_columns(df: pd.DataFrame, coord_columns: list[str]) -> tuple[str, str] | None:
    for w, h in ((IMAGE_WIDTH, IMAGE_HEIGHT), ("width", "height")):
        if w in df.columns and h in df.columns and w not in coord_columns:
            return w, h
    return None


def _image_sizes(cfg: Config, df: pd.DataFrame, coord_columns: list[str], where: str) -> np.ndarray:
    """(n, 2) width and height of each row's image: from the table, else the file header."""
    from medalist.data.images import image_size
    from medalist.data.tables import image_paths

    cols = _size_columns(df, coord_columns)
    if cols is not None:
        sizes = df[list(cols)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        bad = ~(sizes > 0).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(
                f"{where} line {i + 2}: image size {cols[0]}/{cols[1]} is not two positive "
                "numbers; fix the row or drop the columns (the file header is read then)"
            )
        return sizes
    paths = image_paths(cfg, df, cfg.path(cfg.competition.image_dir))
    first = pd.Series(range(len(df))).groupby(df[cfg.competition.id_column].to_numpy()).first()
    known: dict[Path, tuple[int, int]] = {}
    for i in first.to_numpy():
        if not paths[i].is_file():
            raise UserError(
                f"{where} line {i + 2}: image {paths[i].name} of this box row is missing in "
                f"{paths[i].parent}; add it or drop its rows"
            )
        known[paths[i]] = image_size(paths[i])
    return np.array([known[p] for p in paths], dtype=float)


def _check_boxes(cfg: Config, xyxy: np.ndarray, sizes: np.ndarray, where: str) -> np.ndarray:
    """Boxes inside their image with a positive size (clipped when `competition.clip_boxes`);
    a row that breaks this is a UserError naming it. Degenerate clipped boxes become NaN."""
    has = ~np.isnan(xyxy).any(axis=1)
    if cfg.competition.clip_boxes:
        xyxy = xyxy.copy()
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, sizes[:, :1])
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, sizes[:, 1:])
        flat = has & ((xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1]))
        xyxy[flat] = np.nan
        return xyxy
    tol = 1e-6 * sizes.max(axis=1)
    empty = has & ((xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1]))
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise UserError(
            f"{where} line {i + 2}: the box has zero or negative width or height "
            f"(x1 y1 x2 y2 = {np.round(xyxy[i], 2).tolist()}); fix or drop the row"
        )
    outside = has & (
        (xyxy[:, 0] < -tol)
        | (xyxy[:, 1] < -tol)
        | (xyxy[:, 2] > sizes[:, 0] + tol)
        | (xyxy[:, 3] > sizes[:, 1] + tol)
    )
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        w, h = sizes[i].astype(int)
        raise UserError(
            f"{where} line {i + 2}: the box {np.round(xyxy[i], 2).tolist()} (x1 y1 x2 y2) lies "
            f"outside its {w}x{h} image; fix the row, or set competition.clip_boxes: true"
        )
    return xyxy


def _normalised(cfg: Config, raw: np.ndarray, columns: list[str], where: str) -> bool:
    """Whether the coordinates are fractions of the image: as configured (checked against the
    values), else when every one lies in [0, 1]."""
    flag = cfg.competition.box_normalized
    present = raw[~np.isnan(raw).any(axis=1)]
    if flag is None:
        return bool(len(present)) and bool(((present >= 0) & (present <= 1)).all())
    if flag:
        above = np.abs(raw) > 1 + 1e-6
        if above.any():
            i, j = (int(v[0]) for v in np.nonzero(above))
            col = columns[0] if len(columns) == 1 else columns[j]
            raise UserError(
                f"{where} line {i + 2}, column {col!r}: {raw[i, j]:g} is above 1 but "
                "competition.box_normalized is true; set it to false (pixels)"
            )
    return flag


def _group_rows(cfg: Config, df: pd.DataFrame, xyxy: np.ndarray, labels: pd.Series) -> pd.DataFrame:
    """One row per image (in the order of first appearance) with its boxes."""
    id_col = cfg.competition.id_column
    ids = df[id_col].to_numpy()
    has = ~np.isnan(xyxy).any(axis=1)
    keep = [c for c in df.columns if c not in ("bbox",) and c != cfg.competition.class_column]
    images = df[keep].drop_duplicates(id_col, keep="first").reset_index(drop=True)
    rows_of = pd.Series(range(len(df))).groupby(ids, sort=False).apply(list)
    order = [rows_of[i] for i in images[id_col]]
    images[BOXES] = [xyxy[[r for r in rows if has[r]]].reshape(-1, 4) for rows in order]
    images[LABELS] = [[str(labels.iloc[r]) for r in rows if has[r]] for rows in order]
    images[LINES] = [[r + 2 for r in rows if has[r]] for rows in order]
    images[N_BOXES] = [len(b) for b in images[BOXES]]
    return images


def image_table(cfg: Config, df: pd.DataFrame, where: str) -> pd.DataFrame:
    """A box table (one row per box) as one row per image with its boxes in pixels, checked."""
    comp = cfg.competition
    if df.empty:
        raise UserError(f"{where}: the box table has no rows; add the boxes (one row per box)")
    fmt, columns = box_layout(cfg, list(map(str, df.columns)))
    if columns == ["bbox"]:
        raw = parse_bbox_text(df["bbox"], where)
    else:
        numbers = df[columns].apply(pd.to_numeric, errors="coerce")
        partial = numbers.isna().any(axis=1) & numbers.notna().any(axis=1)
        if partial.any():
            i = int(np.flatnonzero(partial.to_numpy())[0])
            col = next(c for c in columns if pd.isna(numbers[c].iloc[i]))
            raise UserError(
                f"{where} line {i + 2}, column {col!r}: {df[col].iloc[i]!r} is not a number; "
                "give all four coordinates, or none for an image without boxes"
            )
        raw = numbers.to_numpy(float)
    sizes = _image_sizes(cfg, df, columns, where)
    if _normalised(cfg, raw, columns, where):
        raw = raw * np.concatenate([sizes, sizes], axis=1)
    xyxy = _check_boxes(cfg, to_xyxy(raw, fmt), sizes, where)
    if comp.class_column is not None:
        if comp.class_column not in df.columns:
            raise UserError(
                f"{where}: no column {comp.class_column!r} (config competition.class_column)"
            )
        labels = df[comp.class_column].astype(str)
    else:
        labels = pd.Series([SINGLE_CLASS] * len(df))
    out = _group_rows(cfg, df, xyxy, labels)
    first = np.flatnonzero(~df[comp.id_column].duplicated().to_numpy())  # as out's rows
    out[IMAGE_WIDTH] = sizes[first, 0].astype(int)
    out[IMAGE_HEIGHT] = sizes[first, 1].astype(int)
    return out


def add_unlabeled_images(cfg: Config, images: pd.DataFrame) -> pd.DataFrame:
    """The image folder's files that have no row, added as images without boxes."""
    from medalist.data.images import image_size
    from medalist.data.tables import IMAGE_EXTS, image_paths

    comp = cfg.competition
    folder = cfg.path(comp.image_dir)
    if not comp.include_unlabeled_images or not folder.is_dir():
        return images
    known = {p.name for p in image_paths(cfg, images, folder)}
    extra = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.name not in known
    )
    if not extra:
        return images
    with_ext = images[comp.id_column].astype(str).str.lower().str.endswith(IMAGE_EXTS).any()
    ids = [p.name if with_ext or p.suffix != comp.image_ext else p.stem for p in extra]
    sizes = [image_size(p) for p in extra]
    rows = pd.DataFrame({comp.id_column: ids})
    if comp.image_column is not None:
        rows[comp.image_column] = [p.name for p in extra]
    rows[BOXES] = [np.zeros((0, 4)) for _ in extra]
    rows[LABELS] = [[] for _ in extra]
    rows[LINES] = [[] for _ in extra]
    rows[N_BOXES] = 0
    rows[IMAGE_WIDTH] = [w for w, _ in sizes]
    rows[IMAGE_HEIGHT] = [h for _, h in sizes]
    return pd.concat([images, rows], ignore_index=True)


def read_coco(cfg: Config) -> pd.DataFrame:
    """COCO JSON (`competition.annotations`): images, categories and xywh pixel boxes, as the
    one-row-per-box table `image_table` reads (the id is each image's file name)."""
    comp = cfg.competition
    path = cfg.path(comp.annotations)
    if not path.is_file():
        raise UserError(f"competition.annotations: {path} not found; fix the path")
    try:
        coco = json.loads(path.read_text())
        images = {im["id"]: im for im in coco["images"]}
        names = {c["id"]: str(c["name"]) for c in coco.get("categories", [])}
        anns = coco.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not COCO JSON with images and annotations ({exc})") from None
    rows = []
    for k, a in enumerate(anns):
        if a.get("image_id") not in images:
            raise UserError(f"{path}: annotation {k} names image_id {a.get('image_id')!r}, absent")
        im = images[a["image_id"]]
        x, y, w, h = (float(v) for v in a["bbox"])
        label = names.get(a.get("category_id"), str(a.get("category_id")))
        rows.append((im["file_name"], im.get("width"), im.get("height"), x, y, w, h, label))
    for im in images.values():  # images without annotations are negatives
        rows.append((im["file_name"], im.get("width"), im.get("height"), *[np.nan] * 4, ""))
    cols = [comp.id_column, IMAGE_WIDTH, IMAGE_HEIGHT, "x", "y", "w", "h", "category"]
    df = pd.DataFrame(rows, columns=cols)
    if df[[IMAGE_WIDTH, IMAGE_HEIGHT]].isna().any().any():
        df = df.drop(columns=[IMAGE_WIDTH, IMAGE_HEIGHT])
    return df


def load_box_train(cfg: Config) -> pd.DataFrame:
    """The training images of a detection competition, one row per image with its boxes."""
    from medalist.data.tables import _join_groups, _require_columns, read_csv

    comp = cfg.competition
    if comp.annotations is not None:
        df, where = read_coco(cfg), str(cfg.path(comp.annotations))
        cfg = cfg.model_copy(deep=True)
        cfg.competition.box_format, cfg.competition.box_normalized = "xywh", False
        cfg.competition.box_columns = ["x", "y", "w", "h"]
        cfg.competition.class_column = "category"
    else:
        path = cfg.path(comp.train_csv)
        df, where = read_csv(path, "box table", "competition.train_csv"), str(path)
        _require_columns(df, [comp.id_column], path, "competition.id_column")
    images = add_unlabeled_images(cfg, image_table(cfg, df, where))
    if comp.groups_csv is not None:
        images = _join_groups(images, cfg)
    if comp.group_column is not None:
        _require_columns(images, [comp.group_column], Path(where), "competition.group_column")
    return images.reset_index(drop=True)


def describe_boxes(images: pd.DataFrame) -> str:
    """One line: images, boxes, classes and negatives of an image table."""
    counts = images[N_BOXES].to_numpy()
    classes = sorted({c for labels in images[LABELS] for c in labels})
    return (
        f"{len(images)} images, {int(counts.sum())} boxes, {len(classes)} class"
        f"{'es' if len(classes) != 1 else ''}, {int((counts == 0).sum())} images without boxes"
    )


def _merge_rare(bins: np.ndarray, minimum: int) -> np.ndarray:
    """Strata with fewer than `minimum` images merged into a neighbour (in sorted order), not
    into the images without boxes while another neighbour exists."""
    bins = bins.copy()
    while True:
        values, counts = np.unique(bins, return_counts=True)
        if len(values) < 2 or counts.min() >= minimum:
            return bins
        i = int(counts.argmin())
        near = [j for j in (i + 1, i - 1) if 0 <= j < len(values)]
        boxed = [j for j in near if not str(values[j]).startswith("0")]
        bins[bins == values[i]] = values[(boxed or near)[0]]


def box_strata(images: pd.DataFrame, classes: list[str], n_splits: int) -> pd.Series:
    """What stratified folds balance: the number of boxes (binned: none, then quartiles) and,
    with several classes, which classes an image holds; a stratum with fewer images than
    folds merges into its neighbour."""
    counts = images[N_BOXES].to_numpy()
    edges = np.unique(np.quantile(counts[counts > 0], [0.25, 0.5, 0.75])) if counts.any() else []
    bins = np.where(counts == 0, 0, 1 + np.searchsorted(edges, counts, side="left"))
    bins = pd.Series(_merge_rare(bins, n_splits).astype(str), index=images.index)
    if len(classes) < 2:
        return bins
    present = images[LABELS].map(lambda ls: "".join("1" if c in ls else "0" for c in classes))
    strata = bins + "|" + present
    rare = strata.map(strata.value_counts()) < n_splits
    merged = strata.where(~rare, bins).to_numpy()
    return pd.Series(_merge_rare(merged, n_splits), index=images.index)
