"""Competitions whose images are table rows, a column per pixel (Digit Recognizer, Kannada
MNIST): the pixel columns' prefix and shape, the ids the rows take, and the baseline's input."""

from __future__ import annotations

import math

import pandas as pd

from medalist.data.pixels import add_row_ids, pixel_names
from medalist.io import sample_id_column
from medalist.workflows.scaffold.augment import preset
from medalist.workflows.scaffold.found import DataPath, Found
from medalist.workflows.scaffold.images import baseline_size

C = "competition."


def without_pixels(
    found: Found, train: pd.DataFrame, sub: pd.DataFrame | None, prefix: str
) -> tuple[pd.DataFrame, tuple[int, int] | None]:
    """The training table without its pixel columns (the rest is read as any table's), its rows
    numbered under the sample's id column when it has no ids; and the images' (height, width),
    None when the pixels make no square."""
    names = pixel_names(train.columns, prefix)
    n = len(names)
    sub_id = sample_id_column(sub) if sub is not None and len(sub.columns) else None
    numbered = sub_id is not None and sub_id not in train.columns
    why = f"{n} columns {prefix}0 ... {prefix}{n - 1}: an image a row"
    found.ok(
        C + "pixel_columns", prefix, why + (f", numbered 0, 1, ... as {sub_id}" if numbered else "")
    )
    side = math.isqrt(n)
    shape = (side, side) if side * side == n else None
    if shape is None:
        found.guess(
            C + "image_shape",
            None,
            f"{n} pixel columns make no square image: set competition.image_shape to "
            "[height, width]",
        )
    if numbered and sub_id is not None:
        train = add_row_ids(train, sub_id)  # the loader numbers the rows the same way
    return train.drop(columns=names), shape


def pixel_images(
    found: Found, test: pd.DataFrame | None, prefix: str, shape: tuple[int, int] | None
) -> None:
    """The keys of images stored in the tables: no image folders, the input size and preset."""
    found.ok(C + "image_dir", DataPath(""), "not used: the images are the table's rows")
    found.ok(C + "test_image_dir", None, "not used: the test images are the test table's rows")
    found.ok(C + "image_column", None, "the images are the table's rows")
    found.ok(C + "image_ext", ".png", "not used")
    if test is None or not pixel_names(test.columns, prefix):
        found.guess(
            C + "test_csv",
            DataPath(found.test_name) if test is not None else None,
            f"no test table with columns {prefix}0, {prefix}1, ...: set competition.test_csv "
            "to the table of test images",
        )
    if shape is None:
        return
    h, w = shape
    found.ok("data.image_size", *baseline_size([(w, h)]))
    comment, steps = preset("document", found.values.get(C + "task", "classify"))
    found.ok("data.augment", steps, f"small greyscale images ({w}x{h}); preset {comment}")
