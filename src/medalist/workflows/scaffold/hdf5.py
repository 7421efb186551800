"""`medalist new` on images kept in HDF5 files (ISIC 2024's train-image.hdf5): the file whose
datasets are named by the first ids, and a look at its first images for the input size."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from medalist.data.hdf5_images import is_hdf5, open_hdf5
from medalist.errors import UserError


def hdf5_candidates(data_dir: Path, prefer: str) -> list[Path]:
    """The HDF5 files of the data folder (and its folders), those whose name holds `prefer`
    ("train", "test") first."""
    files = [p for p in sorted(data_dir.glob("*")) + sorted(data_dir.glob("*/*")) if is_hdf5(p)]
    return sorted(files, key=lambda p: prefer not in p.name.lower())


def hdf5_holding(data_dir: Path, values: Sequence[str], prefer: str) -> Path | None:
    """The first HDF5 file that holds a dataset for every one of `values` (the first ids)."""
    if not values:
        return None
    for path in hdf5_candidates(data_dir, prefer):
        try:
            with open_hdf5(path) as f:
                if all(str(v) in f for v in values):
                    return path
        except UserError:  # not readable (or no h5py): not the images
            continue
    return None


def first_images(path: Path, names: Sequence[str], out: Path) -> list[Path]:
    """The first of `names` written out of the HDF5 file into `out` (to measure them)."""
    from medalist.data.hdf5_images import write_image

    with open_hdf5(path) as f:
        return [out / write_image(out, str(n), f[str(n)], path) for n in names if str(n) in f]


def measure_hdf5(
    path: Path, names: Sequence[str], measure: Callable[[Path, list[Path]], None]
) -> None:
    """Call `measure(first, paths)` on the first images, written to a temp folder first."""
    with tempfile.TemporaryDirectory(prefix="medalist-hdf5-") as tmp:
        paths = first_images(path, names, Path(tmp))
        if paths:
            measure(paths[0], paths)
