"""Submissions of mask files: one PNG per test image holding its class indices, in a zip.

Some segmentation competitions score a folder (or zip) of masks rather than run-length text.
medalist writes PNG masks when `predict.mask_format` is `png`, or when it is `auto` (the
default) and the sample submission asks for files:

- `competition.sample_submission` is a folder or a `.zip` of PNG masks: one per test image,
  named by its id (`<id>.png`, subfolders kept), each the size of its image;
- it is a CSV whose one column besides the id holds file names ending in `.png`.

The submission is `submission.zip`: the PNG masks under the sample's names (`<id>.png`, one
per test image, when the sample names none) and, for a CSV sample that names them, the table
as `submission.csv`. A mask's pixels are the training masks' class values (the positions in
`competition.classes`, or the values the masks hold), uint8 greyscale.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from medalist.config.schema import Config
from medalist.errors import UserError

FILE_COLUMN = "file"  # the file-name column of a sample read from a folder or zip
TABLE_NAME = "submission.csv"  # the table inside submission.zip, for a CSV sample
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # every member's date: the same masks give the same bytes


def is_file_sample(path: Path) -> bool:
    """A sample submission that is a folder or a zip of mask files (not a table)."""
    return path.is_dir() or path.suffix.lower() == ".zip"


def _png_names(path: Path) -> list[str]:
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    else:
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as exc:
            raise UserError(
                f"sample submission {path} is not a readable zip ({exc}): fix the file or "
                "competition.sample_submission"
            ) from None
    return sorted(n for n in names if n.lower().endswith(".png"))


def read_file_sample(path: Path, id_column: str) -> pd.DataFrame:
    """The sample's masks as a table: the id (the file's name without `.png`) and the file."""
    if not path.exists():
        raise UserError(f"sample submission {path} not found: fix competition.sample_submission")
    names = _png_names(path)
    if not names:
        raise UserError(
            f"sample submission {path} holds no .png masks: a folder or zip sample lists the "
            "test images' masks; fix competition.sample_submission"
        )
    ids = pd.Series([PurePosixPath(n).stem for n in names])
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise UserError(
            f"sample submission {path} has two masks for id {dup!r} (in different folders): "
            "one mask per test image"
        )
    return pd.DataFrame({id_column: ids, FILE_COLUMN: names})


def sample_sizes(path: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    """(width, height) of each named mask of a folder or zip sample (headers only)."""
    from PIL import Image

    out: dict[str, tuple[int, int]] = {}
    if path.is_dir():
        for n in names:
            with Image.open(path / n) as img:
                out[n] = img.size
        return out
    with zipfile.ZipFile(path) as z:
        for n in names:
            with z.open(n) as f, Image.open(f) as img:
                out[n] = img.size
    return out


def file_column(sample: pd.DataFrame, id_column: str) -> str | None:
    """The sample's column of mask file names: its one other column, every value a `.png`."""
    rest = [c for c in sample.columns if c != id_column]
    if len(rest) != 1 or not len(sample) or pd.api.types.is_numeric_dtype(sample[rest[0]]):
        return None
    values = sample[rest[0]]
    names = values.dropna().astype(str).str.lower()
    return rest[0] if len(names) == len(values) and names.str.endswith(".png").all() else None


def wants_png(cfg: Config, sample: pd.DataFrame) -> bool:
    """Whether the submission is PNG masks: `predict.mask_format`, or (auto) the sample asks."""
    if cfg.competition.task != "segment":
        return False
    fmt = cfg.predict.mask_format
    if fmt != "auto":
        return fmt == "png"
    path = cfg.path(cfg.competition.sample_submission)
    return is_file_sample(path) or file_column(sample, cfg.competition.id_column) is not None


def check_name(name: str, where: str) -> str:
    """A mask's file name inside the zip: relative, no `..`."""
    p = PurePosixPath(name)
    if "\\" in name or p.is_absolute() or ".." in p.parts or not p.name:
        raise UserError(
            f"{where}: mask file name {name!r} is not a relative path inside the submission; "
            "fix the sample"
        )
    return name


def mask_targets(
    cfg: Config, sample: pd.DataFrame, image: pd.Series, paths: dict[str, Path]
) -> tuple[list[str], list[str], list[tuple[int, int]], str | None]:
    """The masks to write, for the sample's rows (`image`: each row's test image id, `paths`:
    each id's image): their images' ids, file names and (width, height); and the table's
    column of the names (None: the sample names no files, so `<id>.png`, once per image). A
    name listed twice, or a sample mask of another size than its image, is a UserError."""
    from medalist.data.images import image_size

    where = cfg.path(cfg.competition.sample_submission)
    files = is_file_sample(where)
    column = FILE_COLUMN if files else file_column(sample, cfg.competition.id_column)
    if column:
        ids = list(image)
        names = [check_name(n, str(where)) for n in sample[column].astype(str)]
    else:
        ids = list(dict.fromkeys(image))
        names = [check_name(f"{i}.png", str(where)) for i in ids]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise UserError(f"{where}: mask file {n!r} is listed twice; one per test image")
        seen.add(n)
    sizes = [image_size(paths[i]) for i in ids]
    if files:
        own = sample_sizes(where, names)
        for n, (w, h), i in zip(names, sizes, ids, strict=True):
            sw, sh = own[n]
            if (sw, sh) != (w, h):
                raise UserError(
                    f"sample submission {where}: mask {n} is {sh}x{sw} but test image "
                    f"{paths[i]} is {h}x{w} (height x width): a mask must be the size of its "
                    "image; fix the sample or competition.test_image_dir"
                )
    return ids, names, sizes, column


def blank_submission(
    cfg: Config, sample: pd.DataFrame, paths: dict[str, Path], value: int
) -> MaskFiles:
    """The sample as a submission of mask files, every pixel `value` (the quick path's)."""
    image = sample[cfg.competition.id_column].astype(str)
    _, names, sizes, column = mask_targets(cfg, sample, image, paths)
    masks = {n: np.full((h, w), value, np.uint8) for n, (w, h) in zip(names, sizes, strict=True)}
    return mask_files(sample, masks, with_table=_with_table(column))


def _with_table(column: str | None) -> bool:
    """The table goes into the zip when the sample is a CSV that names the files."""
    return column is not None and column != FILE_COLUMN


def submission_name(cfg: Config, sample: pd.DataFrame | None) -> str:
    """The submission's file name: submission.zip for mask files, else submission.csv."""
    return "submission.zip" if sample is not None and wants_png(cfg, sample) else "submission.csv"


class MaskFiles(pd.DataFrame):
    """A submission of mask files: the table (the sample's rows, for the listing and the
    checks) and `masks`, each file name's uint8 mask; `table_name` is the table's name inside
    the zip, None when the sample is files only. Derived frames are plain DataFrames."""

    _metadata = ["masks", "table_name"]

    def write(self, path: Path) -> Path:
        """`path` with the suffix `.zip`, written atomically; returns it."""
        from medalist.io import atomic_write

        out = Path(path).with_suffix(".zip")

        def fill(f: io.BufferedWriter) -> None:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
                for name, mask in self.masks.items():
                    z.writestr(zipfile.ZipInfo(name, ZIP_TIME), encode_png(mask))
                if self.table_name is not None:
                    text = pd.DataFrame(self).to_csv(index=False).encode()
                    z.writestr(zipfile.ZipInfo(self.table_name, ZIP_TIME), text)

        return atomic_write(out, fill, "wb")


def mask_files(table: pd.DataFrame, masks: dict[str, np.ndarray], with_table: bool) -> MaskFiles:
    """A submission of `masks` (file name to mask) with the sample's rows as its table."""
    sub = MaskFiles(table)
    sub.masks = masks
    sub.table_name = TABLE_NAME if with_table else None
    return sub


def encode_png(mask: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="L").save(buf, "PNG")
    return buf.getvalue()


def read_mask_zip(path: Path) -> tuple[pd.DataFrame | None, dict[str, np.ndarray]]:
    """A submission.zip read back: its table (None when it has none) and its masks by name."""
    from PIL import Image

    masks: dict[str, np.ndarray] = {}
    table = None
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                if name == TABLE_NAME:
                    table = pd.read_csv(f, keep_default_na=False)
                else:
                    with Image.open(f) as img:
                        masks[name] = np.asarray(img)
    return table, masks
