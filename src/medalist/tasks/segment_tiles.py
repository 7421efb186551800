"""Large images in segmentation: the original resolution (`data.image_size: null`), random
crops to train on (`data.crop_size`) and sliding windows over the whole image for validation
and prediction (`predict.tile_size`, `predict.tile_overlap`); see `medalist.data.tiles`.

The image cache holds each image once, at `data.image_size` (or its own size); the crop is
drawn by the training transform, so every epoch sees other crops of the same cached images.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn

from medalist.config.schema import Config
from medalist.data.tiles import pair, sliding_window
from medalist.errors import UserError


def _text(h: int, w: int) -> str:
    return f"{h}x{w}"


def resolve_image_size(cfg: Config, train: pd.DataFrame) -> None:
    """`data.image_size: null` becomes the training images' own size, which they must share
    (the cache and the out-of-fold masks hold one size); the run's config.yaml keeps it."""
    if cfg.data.image_size is not None:
        return
    from medalist.data.images import image_size
    from medalist.data.tables import image_paths

    paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
    sizes: dict[tuple[int, int], Any] = {}
    for path in paths:
        w, h = image_size(path)
        sizes.setdefault((h, w), path)
    if len(sizes) > 1:
        (a, pa), (b, pb) = list(sizes.items())[:2]
        raise UserError(
            f"data.image_size: null keeps the images' own size, but {pa.name} is "
            f"{_text(*a)} and {pb.name} is {_text(*b)}: set data.image_size (the size to "
            "resize to, then data.crop_size to train on crops of it)"
        )
    ((h, w),) = sizes
    cfg.data.image_size = h if h == w else [h, w]


def check_large_images(cfg: Config) -> None:
    """The crop and the tile fit inside the image; the tiles overlap by less than a tile."""
    height, width = cfg.data.height_width
    for key, value in (
        ("data.crop_size", cfg.data.crop_size),
        ("predict.tile_size", cfg.predict.tile_size),
    ):
        if value is None:
            continue
        h, w = pair(value)
        if h > height or w > width:
            raise UserError(
                f"{key} = {value} is larger than the images ({_text(height, width)}, "
                f"data.image_size = {cfg.data.image_size}): use at most "
                f"{min(height, width) if h == w else [height, width]}, or a larger "
                "data.image_size"
            )
    overlap = cfg.predict.tile_overlap
    if cfg.predict.tile_size is not None and overlap >= min(pair(cfg.predict.tile_size)):
        raise UserError(
            f"predict.tile_overlap = {overlap} is not below predict.tile_size = "
            f"{cfg.predict.tile_size}: the tiles would never move on; use an overlap of at "
            f"most {min(pair(cfg.predict.tile_size)) // 2} (half a tile)"
        )


def model_inputs(cfg: Config) -> list[tuple[str, Any, tuple[int, int]]]:
    """(config key, its value, (height, width)) of each input the model sees: the training
    crop (or the image) and the prediction tile (or the whole image)."""
    image = ("data.image_size", cfg.data.image_size, cfg.data.height_width)
    out = [image]
    if cfg.data.crop_size is not None:
        out = [("data.crop_size", cfg.data.crop_size, pair(cfg.data.crop_size))]
    if cfg.predict.tile_size is not None:
        out.append(("predict.tile_size", cfg.predict.tile_size, pair(cfg.predict.tile_size)))
    elif cfg.data.crop_size is not None:
        out.append(image)
    return out


def crop_augment(cfg: Config) -> list[dict[str, Any]]:
    """The training transform's first step: a random crop of `data.crop_size` (none if unset)."""
    if cfg.data.crop_size is None:
        return []
    h, w = pair(cfg.data.crop_size)
    return [{"name": "RandomCrop", "height": h, "width": w}]


def whole_image(model: nn.Module, x: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The model's outputs for whole images: one pass, or averaged sliding windows."""
    if cfg.predict.tile_size is None:
        return model(x)
    return sliding_window(model, x, cfg.predict.tile_size, cfg.predict.tile_overlap)
