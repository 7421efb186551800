"""Images kept in one HDF5 file, a dataset per image named by its id (ISIC 2024's
`train-image.hdf5` and `test-image.hdf5`, each holding an image's encoded JPEG bytes):
`competition.image_dir` (or `test_image_dir`) names the file instead of a folder.

Each image is written out once as a file of its own format (encoded bytes as they are, a pixel
array as PNG) in a folder keyed by the HDF5 file, so that everything downstream (the image
cache, augmentation, reports, leak search, the Kaggle notebook) reads image files as for any
other competition. The folder is the project's `.cache/hdf5/`, or the system's temp folder
outside a project (the Kaggle notebook, whose competition folder is read-only).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from medalist.config.schema import Config
from medalist.errors import UserError
from medalist.io import read_json, write_json

HDF5_SUFFIXES = (".hdf5", ".h5", ".he5")
INDEX = "index.json"  # id -> file name, of the images written so far
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}


def is_hdf5(path: Path | None) -> bool:
    """Whether `path` names an HDF5 file of images rather than a folder."""
    return path is not None and path.suffix.lower() in HDF5_SUFFIXES and not path.is_dir()


def open_hdf5(path: Path) -> Any:
    """The file opened read-only with h5py; a UserError without h5py or for another file."""
    try:
        import h5py
    except ImportError:
        raise UserError(
            f"images in {path.name} are an HDF5 file, which needs h5py: pip install h5py (or "
            "pip install 'medalist[hdf5]')"
        ) from None
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"{path} is not a readable HDF5 file ({err}): restore it") from None


def hdf5_folder(cfg: Config, path: Path) -> Path:
    """Where `path`'s images are written: keyed by the file (its place, size and time), under
    the project's cache, else (a packaged run on Kaggle) the temp folder."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    tag = f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    root = cfg.root
    if (root / "configs").is_dir() and os.access(root, os.W_OK):
        return root / ".cache" / "hdf5" / tag
    return Path(tempfile.gettempdir()) / "medalist-hdf5" / tag


def hdf5_files(cfg: Config, path: Path, names: Sequence[str], key: str) -> list[Path]:
    """The image file of each of `names` (datasets of the HDF5 file `path`), written out the
    first time; `key` is the config key that names the file, for the errors."""
    if not path.is_file():
        raise UserError(f"{path} is missing ({key} names it): fix {key} or restore the file")
    folder = hdf5_folder(cfg, path)
    index_path = folder / INDEX
    index: dict[str, str] = read_json(index_path) if index_path.is_file() else {}
    todo = [n for n in dict.fromkeys(names) if n not in index]
    if todo:
        _write_images(path, folder, todo, index, key)
        write_json(index_path, index)
    return [folder / index[n] for n in names]


def _write_images(path: Path, folder: Path, todo: list[str], index: dict, key: str) -> None:
    from medalist.console import progress

    with open_hdf5(path) as f:
        missing = [n for n in todo if n not in f]
        if missing:
            have = ", ".join(str(n) for n in islice(f, 3))
            raise UserError(
                f"{path.name} has no image {missing[0]!r} ({len(missing)} of the table's ids "
                f"are not in it; it holds {len(f)}, such as {have}): fix {key} or the ids"
            )
        folder.mkdir(parents=True, exist_ok=True)
        with progress(f"writing the images of {path.name}", len(todo)) as advance:
            for name in todo:
                index[name] = write_image(folder, name, f[name], path)
                advance(1)


def write_image(folder: Path, name: str, dataset: Any, path: Path) -> str:
    """One image as a file: encoded bytes as they are (their format's suffix), pixels as PNG."""
    from PIL import Image

    value = dataset[()]
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1:
        value = value.tobytes()
    if isinstance(value, np.void):
        value = value.tobytes()
    stem = name.replace("/", "__")
    if isinstance(value, bytes | np.bytes_):
        data = bytes(value)
        try:
            with Image.open(io.BytesIO(data)) as img:
                suffix = FORMATS.get(img.format or "", f".{(img.format or 'img').lower()}")
        except OSError:
            raise UserError(
                f"{path.name}: {name!r} holds {len(data)} bytes that are no image format PIL "
                "reads (JPEG, PNG, ...): check the file"
            ) from None
        _atomic_bytes(folder / f"{stem}{suffix}", data)
        return f"{stem}{suffix}"
    if isinstance(value, np.ndarray) and value.ndim in (2, 3):
        from medalist.data.pixels import as_bytes

        pixels = as_bytes(value)
        if pixels.ndim == 3 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        _atomic_bytes(folder / f"{stem}.png", buffer.getvalue())
        return f"{stem}.png"
    raise UserError(
        f"{path.name}: {name!r} is neither an encoded image (bytes) nor a pixel array (height x "
        f"width [x channels]) but {type(value).__name__} of shape {np.shape(value)}"
    )


def _atomic_bytes(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)
