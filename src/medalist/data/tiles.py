"""Large images: random crops to train on, and sliding windows to predict the whole image.

Training on `data.crop_size` takes a random crop of each (resized, or original) image, as
albumentations' `RandomCrop` draws it, moved together with the mask; validation and prediction
see the whole image, in tiles of `predict.tile_size` that overlap by `predict.tile_overlap`
pixels. Each pixel's output is the mean over the tiles that cover it; the last tile of a row or
column is moved back to end on the image's edge, so every pixel is covered whatever the
image's size. The sums are kept in float64, so a model whose output at a pixel depends on that
pixel alone (a 1x1 convolution) gives exactly its whole-image output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def pair(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) of one side or of [height, width]."""
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[-1])


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """The first pixel of each tile along one side: a stride of `tile - overlap`, the last tile
    ending on the edge. One tile (at 0) when the side is no longer than the tile."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be >= 0 and below the tile size {tile}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def sliding_window(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int | Sequence[int],
    overlap: int | Sequence[int] = 0,
) -> torch.Tensor:
    """`fn` (a batch (N, C, h, w) to outputs (N, K, h, w)) applied to overlapping tiles of `x`
    (N, C, H, W) and averaged into outputs (N, K, H, W) for the whole image."""
    th, tw = pair(tile)
    oh, ow = pair(overlap)
    height, width = x.shape[-2:]
    if height < th or width < tw:
        raise ValueError(f"image {height}x{width} is smaller than the tile {th}x{tw}")
    total: torch.Tensor | None = None
    count = torch.zeros((height, width), dtype=torch.float64, device=x.device)
    for y0 in tile_starts(height, th, oh):
        for x0 in tile_starts(width, tw, ow):
            out = fn(x[..., y0 : y0 + th, x0 : x0 + tw])
            if total is None:
                total = torch.zeros(
                    (*out.shape[:-2], height, width), dtype=torch.float64, device=out.device
                )
            total[..., y0 : y0 + th, x0 : x0 + tw] += out.double()
            count[y0 : y0 + th, x0 : x0 + tw] += 1
    assert total is not None
    return (total / count).to(out.dtype)
