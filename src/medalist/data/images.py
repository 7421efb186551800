"""Decoding images, and a cache of decoded, resized images shared by every epoch and process.

The cache is one uint8 array (n, height, width, channels) in a .npy file under the project's
`.cache/`, keyed by the files (path, size, mtime) and the target shape. It is built once with a
thread pool (decoding releases the GIL) and written atomically, so parallel processes that
build it at the same time never see half a file. Later epochs, folds and runs memory-map it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from medalist.errors import UserError

cv2.setNumThreads(1)


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """PIL's image of `path`; a missing, unreadable or truncated file is a UserError.

    Decoding errors inside the block count too (PIL decodes lazily, on load or convert).
    """
    try:
        with Image.open(path) as img:
            yield img
    except FileNotFoundError:
        raise UserError(f"image {path} not found: add it or drop its row") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(
            f"image {path} is unreadable or truncated ({str(exc).splitlines()[0]}); "
            "replace the file or drop its row"
        ) from None


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the file header (no decoding)."""
    with open_image(path) as img:
        return img.size


def read_image(path: Path, channels: int) -> np.ndarray:
    """Decode one image to an (H, W, C) uint8 array; unreadable or truncated files are UserError."""
    with open_image(path) as img:
        if channels == 3:
            img = img.convert("RGB")
        elif channels == 1:
            img = img.convert("L")
        img.load()
        arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] != channels:
        raise UserError(
            f"image {path} has {arr.shape[2]} channels but model.in_chans is {channels}; "
            "set model.in_chans to match"
        )
    if arr.dtype != np.uint8:
        arr = cv2.normalize(arr, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return arr


Size = int | Sequence[int]  # a square side, or (height, width)


def height_width(size: Size) -> tuple[int, int]:
    """(height, width) of a size given as one side or as (height, width)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    return int(size[0]), int(size[-1])


def size_text(size: Size) -> str:
    """A size as file names and cache keys write it: "64" for a square, "48x64" otherwise."""
    h, w = height_width(size)
    return str(h) if h == w else f"{h}x{w}"


def resize(arr: np.ndarray, size: Size) -> np.ndarray:
    """Resize to `size` (area interpolation when shrinking), keeping the channel axis."""
    th, tw = height_width(size)
    h, w = arr.shape[:2]
    if (h, w) == (th, tw):
        return arr
    interp = cv2.INTER_AREA if h > th or w > tw else cv2.INTER_LINEAR
    out = cv2.resize(arr, (tw, th), interpolation=interp)
    return out[:, :, None] if out.ndim == 2 else out


def load_resized(path: Path, size: Size, channels: int) -> np.ndarray:
    return resize(read_image(path, channels), size)


def cache_key(paths: Sequence[Path], size: Size, channels: int) -> str:
    h = hashlib.sha1(f"{size_text(size)}|{channels}|{len(paths)}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def build_cache(
    paths: Sequence[Path],
    size: Size,
    channels: int,
    cache_dir: Path,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The decoded, resized images of `paths`, memory-mapped from the cache (built when missing)."""
    key = cache_key(paths, size, channels)
    target = cache_dir / f"images-{key}-{size_text(size)}x{channels}.npy"
    if target.is_file():
        return np.load(target, mmap_mode="r")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    out = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.uint8, shape=(len(paths), *height_width(size), channels)
    )

    def fill(i: int, out: np.ndarray = out) -> None:
        out[i] = load_resized(paths[i], size, channels)

    try:
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            for _ in pool.map(fill, range(len(paths))):
                if progress is not None:
                    progress(1)
        out.flush()
        del out
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(target, mmap_mode="r")


class ImageSource:
    """Images by index: from the cache when given, else decoded and resized on each access."""

    def __init__(
        self,
        paths: Sequence[Path],
        size: Size,
        channels: int,
        cached: np.ndarray | None = None,
        ids: Sequence[object] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.ids = list(ids) if ids is not None else [p.stem for p in self.paths]
        self.size = size
        self.channels = channels
        self.cached = cached

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.cached is not None:
            return np.array(self.cached[i])
        return load_resized(self.paths[i], self.size, self.channels)

    def verify(self, workers: int | None = None) -> None:
        """Decode every image once (threads), so a bad file fails before training starts."""
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda p: read_image(p, self.channels), self.paths))
