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
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from medalist.errors import UserError, first_line

cv2.setNumThreads(1)


DICOM_SUFFIXES = (".dcm", ".dicom")


def read_dicom(path: Path) -> Image.Image:
    """A DICOM file (X-ray, CT, mammography) as a PIL image: pydicom's pixel data through the
    file's modality LUT (rescale slope and intercept) and VOI LUT (its window), inverted when
    MONOCHROME1 stores bright as dark, as float ("F", stretched to 8 bits where decoded); a
    colour file as RGB; a multi-frame file's first frame. A UserError without pydicom."""
    try:
        import pydicom
    except ImportError:
        raise UserError(
            f"image {path} is DICOM, which needs pydicom: pip install pydicom (or "
            "'medalist[dicom]'), or convert the images to PNG"
        ) from None
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom 2
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    colour = int(getattr(ds, "SamplesPerPixel", 1) or 1) > 1
    if frames > 1:
        arr = arr[0]
    if colour:
        return Image.fromarray(np.ascontiguousarray(np.asarray(arr, dtype=np.uint8)[..., :3]))
    arr = apply_voi_lut(apply_modality_lut(arr, ds), ds).astype(np.float32)
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        arr = arr.max() - arr
    return Image.fromarray(arr)  # float32: mode "F"


ORIENTATION = 0x0112  # the EXIF tag a phone or camera writes instead of turning the pixels


def upright(img: Image.Image) -> Image.Image:
    """`img` as a viewer shows it, and as annotators drew its boxes and masks: turned or
    mirrored by its EXIF orientation (2-8: phone photos held sideways); `img` itself, still
    undecoded, when it has none."""
    if img.format != "TIFF" and "exif" not in img.info:
        return img  # no EXIF block in the header (reading a PNG's later chunks would decode it)
    if img.getexif().get(ORIENTATION, 1) in (1, None):
        return img
    return ImageOps.exif_transpose(img)


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """PIL's image of `path` (a DICOM file read with pydicom); a missing, unreadable or
    truncated file is a UserError.

    Decoding errors inside the block count too (PIL decodes lazily, on load or convert).
    """
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        if not path.is_file():
            raise UserError(f"image {path} not found: add it or drop its row")
        try:
            img = read_dicom(path)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a bad file
            raise UserError(
                f"image {path} is an unreadable DICOM file ({first_line(exc)}); "
                "replace the file or drop its row (a compressed one may need pylibjpeg)"
            ) from None
        yield img
        return
    try:
        with Image.open(path) as img:
            yield upright(img)
    except FileNotFoundError:
        raise UserError(f"image {path} not found: add it or drop its row") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(
            f"image {path} is unreadable or truncated ({first_line(exc)}); "
            "replace the file or drop its row"
        ) from None


# PIL modes of more than 8 bits a pixel: 16-bit greyscale PNGs and TIFFs (X-rays, microscopy),
# 32-bit integer and float. PIL's convert to "L" or "RGB" clips them at 255, which turns a 16-bit
# scan white; they are stretched to 0-255 instead.
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def eight_bit(img: Image.Image) -> Image.Image:
    """`img` itself, or for a 16- or 32-bit greyscale image, an 8-bit ("L") one whose values are
    stretched from the image's own minimum and maximum to 0-255 (a flat image is black)."""
    if img.mode not in WIDE_MODES:
        return img
    arr = np.asarray(img, dtype=np.float64)
    arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(arr.min()), float(arr.max())
    scaled = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))  # mode "L"


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the file header (no decoding)."""
    with open_image(path) as img:
        return img.size


def read_image(path: Path, channels: int) -> np.ndarray:
    """Decode one image to an (H, W, C) uint8 array; unreadable or truncated files are UserError."""
    with open_image(path) as img:
        img = eight_bit(img)
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


def letterbox_scale(width: int, height: int, shape: tuple[int, int]) -> float:
    """The scale that fits a (width, height) image inside `shape` (height, width)."""
    return min(shape[0] / height, shape[1] / width)


def letterbox(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The image scaled to fit `shape` (height, width) with its aspect ratio kept, padded with
    zeros at the bottom and right, so a point's input coordinates are its pixel ones times
    `letterbox_scale` (no offset to undo)."""
    h, w = arr.shape[:2]
    scale = letterbox_scale(w, h, shape)
    nw, nh = min(shape[1], round(w * scale)), min(shape[0], round(h * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        arr = cv2.resize(arr, (nw, nh), interpolation=interp)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
    out = np.zeros((*shape, arr.shape[2]), dtype=arr.dtype)
    out[:nh, :nw] = arr
    return out


def fit_image(arr: np.ndarray, size: Size, keep_aspect: bool = False) -> np.ndarray:
    """The image at the model's input size: letterboxed (aspect ratio kept), or resized."""
    return letterbox(arr, height_width(size)) if keep_aspect else resize(arr, size)


def load_resized(path: Path, size: Size, channels: int, keep_aspect: bool = False) -> np.ndarray:
    return fit_image(read_image(path, channels), size, keep_aspect)


def _size_tag(size: Size, keep_aspect: bool) -> str:
    """The size part of a cache name: `size_text`, with `-lb` for a letterboxed cache."""
    return size_text(size) + ("-lb" if keep_aspect else "")


# Bumped whenever `read_image` decodes a file differently (2: 16-bit greyscale stretched, no
# longer clipped; 3: turned upright by the EXIF orientation), so a cache built by an older
# medalist is rebuilt instead of reused.
DECODING = 3


def cache_key(paths: Sequence[Path], size: Size, channels: int, keep_aspect: bool = False) -> str:
    tag = f"{_size_tag(size, keep_aspect)}|{channels}|{len(paths)}|decoding{DECODING}"
    h = hashlib.sha1(tag.encode())
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
    keep_aspect: bool = False,
) -> np.ndarray:
    """The decoded, resized images of `paths`, memory-mapped from the cache (built when missing)."""
    key = cache_key(paths, size, channels, keep_aspect)
    target = cache_dir / f"images-{key}-{_size_tag(size, keep_aspect)}x{channels}.npy"
    if target.is_file():
        return np.load(target, mmap_mode="r")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    out = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.uint8, shape=(len(paths), *height_width(size), channels)
    )

    def fill(i: int, out: np.ndarray = out) -> None:
        out[i] = load_resized(paths[i], size, channels, keep_aspect)

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
        keep_aspect: bool = False,
    ) -> None:
        self.paths = list(paths)
        self.ids = list(ids) if ids is not None else [p.stem for p in self.paths]
        self.size = size
        self.keep_aspect = keep_aspect
        self.channels = channels
        self.cached = cached

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.cached is not None:
            return np.array(self.cached[i])
        return load_resized(self.paths[i], self.size, self.channels, self.keep_aspect)

    def sample_transform(self, transform: Any) -> Any:
        """The transform a dataset applies to this source's images: the same one."""
        return transform

    def verify(self, workers: int | None = None) -> None:
        """Decode every image once (threads), so a bad file fails before training starts."""
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda p: read_image(p, self.channels), self.paths))


def config_source(
    cfg: Any, paths: Sequence[Path], ids: Sequence[object] | None = None
) -> ImageSource:
    """An ImageSource at a config's input size and fit (`data.image_size`, letterbox or not)."""
    size = cfg.data.image_size
    return ImageSource(paths, size, cfg.image_channels, ids=ids, keep_aspect=cfg.keep_aspect)
