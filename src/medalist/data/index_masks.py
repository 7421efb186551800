"""Index masks (`competition.mask_mode: index`): one PNG per image whose pixels hold class
indices (mutually exclusive classes), with a void value (`competition.ignore_index`) left out
of the loss and the metric.

The pixel values map to the model's channels through a table: `values[j]` is channel j's pixel
value and the void value maps to `IGNORE`; a value that is neither is an error naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medalist.config.schema import Config
from medalist.data.images import Size, height_width, image_size
from medalist.errors import UserError

IGNORE = 255  # the channel index of void pixels in the encoded masks (and the losses)
MAX_CLASSES = 254


@dataclass(frozen=True)
class IndexLayout:
    """The classes of an index mask: channel j is pixel value `values[j]`, named `classes[j]`;
    `void` is the ignored pixel value (None: none)."""

    classes: list[str]
    values: list[int]
    void: int | None

    def table(self) -> np.ndarray:
        """A 256-entry lookup: pixel value -> channel, IGNORE for void, -1 for any other."""
        lut = np.full(256, -1, dtype=np.int16)
        lut[self.values] = np.arange(len(self.values))
        if self.void is not None:
            lut[self.void] = IGNORE
        return lut


def read_index_mask(path: Path) -> np.ndarray:
    """The (H, W) pixel values of an index mask (greyscale or palette PNG, as they are)."""
    from medalist.data.images import open_image

    if not path.is_file():
        raise UserError(
            f"mask {path} not found: each training image needs an index mask of the same name "
            "in competition.mask_dir"
        )
    with open_image(path) as img:
        a = np.asarray(img)
    if a.ndim == 3:  # an RGB(A) file whose channels agree holds one value per pixel
        if not (a[..., :3] == a[..., :1]).all():
            raise UserError(
                f"mask {path} is a colour image: an index mask holds one class index per pixel "
                "(greyscale or palette PNG); convert it, or set competition.mask_mode: sigmoid"
            )
        a = a[..., 0]
    if a.max(initial=0) > 255 or a.min(initial=0) < 0:
        raise UserError(
            f"mask {path} has pixel value {int(a.max())}: index masks hold 0..255; fix the file"
        )
    return a.astype(np.uint8)


def void_value(cfg: Config) -> int | None:
    """The ignored pixel value: `ignore_index`, or the position of the void class it names."""
    comp = cfg.competition
    ignore = comp.ignore_index
    if ignore is None or isinstance(ignore, int):
        return ignore
    names = [str(c) for c in comp.classes or []]
    if ignore not in names:
        raise UserError(
            f"competition.ignore_index = {ignore!r} names no class of competition.classes "
            f"({', '.join(names) or 'not set'}); give the void pixels' value or a listed class"
        )
    return names.index(ignore)


def index_layout(cfg: Config, mask_files: list[Path]) -> IndexLayout:
    """The classes: `competition.classes` names pixel values 0, 1, ... (the void class left
    out); without it, the values found in the mask files (read once)."""
    comp = cfg.competition
    void = void_value(cfg)
    if comp.classes is not None:
        pairs = [(str(c), v) for v, c in enumerate(comp.classes) if v != void]
    else:
        found: set[int] = set()
        for path in mask_files:
            found.update(np.unique(read_index_mask(path)).tolist())
        pairs = [(str(v), v) for v in sorted(found - {void})]
    if not 2 <= len(pairs) <= MAX_CLASSES:
        raise UserError(
            f"competition.mask_mode: index needs 2 to {MAX_CLASSES} classes (background "
            f"included), found {len(pairs)}; set competition.classes, or use mask_mode: sigmoid"
        )
    return IndexLayout([c for c, _ in pairs], [v for _, v in pairs], void)


def encode_index_mask(mask: np.ndarray, layout: IndexLayout, path: Path) -> np.ndarray:
    """Pixel values to channels (void to IGNORE); a value outside the classes is an error."""
    out = layout.table()[mask]
    if (out < 0).any():
        bad = int(np.unique(mask[out < 0])[0])
        known = ", ".join(map(str, layout.values))
        void = f" nor the void value {layout.void}" if layout.void is not None else ""
        raise UserError(
            f"mask {path} has pixel value {bad}, which is not a class ({known}){void}: add it "
            "to competition.classes, or set competition.ignore_index to it if it marks void "
            "pixels"
        )
    return out.astype(np.uint8)


def load_index_masks(
    cfg: Config, files: list[Path], image_paths: list[Path], size: Size, layout: IndexLayout
) -> np.ndarray:
    """(n, H, W) channel indices at `size` (nearest neighbour), void pixels IGNORE."""
    import cv2

    from medalist.console import progress

    h, w = height_width(size)
    out = np.zeros((len(files), h, w), dtype=np.uint8)
    with progress("reading masks", len(files)) as advance:
        for i, path in enumerate(files):
            mask = encode_index_mask(read_index_mask(path), layout, path)
            check_mask_size(path, mask.shape, image_paths[i])
            if mask.shape != (h, w):
                mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            out[i] = mask
            advance(1)
    return out


def check_mask_size(path: Path, shape: tuple[int, ...], image: Path) -> None:
    """A mask must be the size of its image: else name both and their sizes."""
    w, h = image_size(image)
    if tuple(shape[:2]) != (h, w):
        raise UserError(
            f"mask {path} is {shape[0]}x{shape[1]} but its image {image} is {h}x{w} "
            "(height x width): a mask must be the size of its image; fix the file or "
            "competition.mask_dir"
        )


def foreground_area(cfg: Config, path: Path) -> int:
    """Pixels of an index mask that are neither 0 (background) nor void, for fold strata."""
    mask, void = read_index_mask(path), void_value(cfg)
    keep = mask > 0
    if void is not None:
        keep &= mask != void
    return int(keep.sum())
