"""Images stored in the tables, one column per pixel (Digit Recognizer's and Kannada-MNIST's
pixel0 ... pixel783, row after row): `competition.pixel_columns` names the columns' prefix and
`competition.image_shape` their [height, width] (a square when not given).

Each row becomes a greyscale PNG in a folder keyed by the pixels themselves, written once, so
that everything downstream (the image cache, augmentation, reports, leak search, the Kaggle
notebook) reads image files as for any other competition. The folder is the project's
`.cache/pixels/`, or the system's temp folder outside a project (the Kaggle notebook, whose
competition folder is read-only).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from medalist.config.schema import Config
from medalist.errors import UserError

DONE = "complete"  # the marker a fully written folder holds


def pixel_names(columns: pd.Index | list[str], prefix: str) -> list[str]:
    """The columns named `prefix` + a number, in the number's order; [] unless the numbers are
    0, 1, ..., n-1 (every pixel present once)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    numbered = {int(m.group(1)): str(c) for c in columns if (m := pattern.match(str(c)))}
    if not numbered or sorted(numbered) != list(range(len(numbered))):
        return []
    return [numbered[i] for i in range(len(numbered))]


MIN_PIXELS = 64  # numbered columns a table must hold to be taken for images (8x8)


def find_prefix(columns: pd.Index | list[str]) -> str | None:
    """The prefix of at least MIN_PIXELS columns numbered 0, 1, ... ("pixel" of pixel0 ...
    pixel783), the largest such family; None when the table has none."""
    counts: dict[str, int] = {}
    for c in map(str, columns):
        m = re.match(r"(\D*?)(\d+)$", c)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    best = [p for p, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= MIN_PIXELS]
    return next((p for p in best if pixel_names(columns, p)), None)


def shape_of(cfg: Config, n_pixels: int, where: Path | str) -> tuple[int, int]:
    """(height, width) of an image of `n_pixels`: `competition.image_shape`, or the square."""
    shape = cfg.competition.image_shape
    if shape is not None:
        h, w = shape
        if h * w != n_pixels:
            raise UserError(
                f"{where}: competition.image_shape {h}x{w} is {h * w} pixels but the table has "
                f"{n_pixels} pixel columns: fix competition.image_shape"
            )
        return h, w
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise UserError(
            f"{where}: {n_pixels} pixel columns make no square image: set "
            "competition.image_shape to [height, width]"
        )
    return side, side


def pixel_folder(cfg: Config) -> Path:
    """Where the tables' images are written: the project's cache; else (a packaged run, whose
    root is the competition's read-only folder on Kaggle) the temp folder."""
    root = cfg.root
    if (root / "configs").is_dir() and os.access(root, os.W_OK):
        return root / ".cache" / "pixels"
    return Path(tempfile.gettempdir()) / "medalist-pixels"


def as_bytes(values: np.ndarray) -> np.ndarray:
    """Pixel values as 0-255 bytes: fractions of 1 (a table already scaled) times 255, others
    rounded and clipped."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0)
    fractions = values.size and values.min() >= 0 and values.max() <= 1
    if fractions and not np.all(values == values.round()):
        values = values * 255
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def pixel_files(cfg: Config, frame: pd.DataFrame, where: Path | str) -> list[Path]:
    """The image file of each row of `frame`, written from its pixel columns if not yet."""
    prefix = cfg.competition.pixel_columns
    assert prefix is not None
    names = pixel_names(frame.columns, prefix)
    if not names:
        have = ", ".join(map(str, frame.columns[:6]))
        raise UserError(
            f"{where}: no columns {prefix}0, {prefix}1, ... (competition.pixel_columns); the "
            f"table has: {have}"
        )
    h, w = shape_of(cfg, len(names), where)
    pixels = as_bytes(frame[names].to_numpy()).reshape(len(frame), h, w)
    key = hashlib.sha1(f"{h}x{w}|{len(frame)}".encode() + pixels.tobytes()).hexdigest()[:20]
    folder = pixel_folder(cfg) / key
    files = [folder / f"{i}.png" for i in range(len(frame))]
    if (folder / DONE).is_file():
        return files
    folder.mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        tmp = folder / f".{i}.{os.getpid()}.png"
        Image.fromarray(pixels[i]).save(tmp)
        os.replace(tmp, files[i])

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(write, range(len(frame))))
    (folder / DONE).write_text(f"{len(frame)} images of {h}x{w}\n")
    return files


def add_row_ids(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """A training table of pixels without ids (Digit Recognizer's): its rows numbered 0, 1, ..."""
    if id_column in frame.columns:
        return frame
    ids = pd.DataFrame({id_column: np.arange(len(frame))}, index=frame.index)
    return pd.concat([ids, frame], axis=1)


def ids_from_sample(
    test: pd.DataFrame, sample: pd.DataFrame | None, id_column: str, where: Path
) -> pd.DataFrame:
    """A test table of pixels without ids takes the sample submission's, row for row (Digit
    Recognizer's ImageId 1, 2, ... numbers test.csv's rows); they must count the same rows."""
    if id_column in test.columns:
        return test
    if sample is None or len(sample) != len(test) or id_column not in sample.columns:
        rows = "no sample submission" if sample is None else f"the sample's {len(sample)}"
        raise UserError(
            f"{where}: no column {id_column!r} (competition.id_column), and its {len(test)} rows "
            f"can't take their ids from {rows} rows: add the ids, or check competition.id_column"
        )
    out = test.copy()
    out.insert(0, id_column, sample[id_column].to_numpy())
    return out
