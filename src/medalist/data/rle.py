"""Kaggle's run-length encoding of masks: 1-based (start, length) pairs, pixels counted down each
column (`order="column"`, as in most competitions) or along each row (`"row"`)."""

from __future__ import annotations

import numpy as np


def rle_decode(text: object, shape: tuple[int, int], order: str = "column") -> np.ndarray:
    """A (H, W) uint8 mask from Kaggle's run-length text ("start length ...", 1-based starts);
    an empty string or NaN is an empty mask. Raises ValueError on malformed text."""
    h, w = shape
    flat = np.zeros(h * w, dtype=np.uint8)
    if isinstance(text, str) and text.strip():
        try:
            numbers = np.asarray(text.split(), dtype=np.int64)
        except ValueError:
            raise ValueError("not a list of whole numbers") from None
        if len(numbers) % 2:
            raise ValueError("an odd count of numbers (it takes start and length pairs)")
        starts, lengths = numbers[0::2] - 1, numbers[1::2]
        if len(starts) and (starts.min() < 0 or lengths.min() < 1):
            raise ValueError("starts count from 1 and lengths from 1")
        ends = starts + lengths
        if len(ends) and ends.max() > h * w:
            raise ValueError(f"a run ends at pixel {int(ends.max())}, past the {h}x{w} image")
        # +1 at each start, -1 at each end, and a running sum marks the runs' pixels.
        marks = np.zeros(h * w + 1, dtype=np.int32)
        np.add.at(marks, starts, 1)
        np.add.at(marks, ends, -1)
        flat = (np.cumsum(marks[:-1]) > 0).astype(np.uint8)
    return flat.reshape((w, h)).T.copy() if order == "column" else flat.reshape((h, w))


def rle_encode(mask: np.ndarray, order: str = "column") -> str:
    """Kaggle's run-length text of a (H, W) mask (non-zero = object); "" for an empty mask."""
    flat = (mask.T if order == "column" else mask).reshape(-1) > 0
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends, strict=True))


def rle_area(text: object) -> int:
    """Pixels covered by a run-length text, without decoding it."""
    if not isinstance(text, str) or not text.strip():
        return 0
    return int(np.asarray(text.split(), dtype=np.int64)[1::2].sum())
