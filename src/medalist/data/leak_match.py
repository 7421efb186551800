"""The check of a candidate pair of near duplicates, and the distance threshold the data suggest.

Both images are compared as grey 64x64 thumbnails blurred by a Gaussian of ``BLUR`` pixels:
re-encoding (JPEG blocks, chroma subsampling) and resampling change mostly the finest detail,
which the blur removes, while two different pictures still differ in their shapes. After the
best shift of up to ``MARGIN`` pixels (OpenCV ``matchTemplate``), under two hypotheses (a
resized copy, both images brought to one square; a cropped copy, both at one pixel scale):

- ``1 - NCC``, the normalised cross-correlation over the pixels that are neither clipped
  (``>= BRIGHT``: a brightened copy saturates where its original did not) nor black
  (``<= DARK``: re-encoding rings into a black background) in either image; the shapes
  still count through the next factor, computed on every pixel;
- times the square root of how unevenly the difference is spread: the mean squared residual
  of the worst of 4x4 blocks over the mean of all. Re-encoding noise is spread over the whole
  picture; two different pictures differ in one place (a sleeve, a petal), so for the same
  correlation they count as farther apart.

The threshold follows the data: most images have no copy, and how close an image comes to
its nearest other image says how alike different pictures are in this data set. The default
threshold is ``AUTO_FACTOR`` times the median of those nearest-neighbour distances (over the
images not already within the threshold of another, found by iterating from ``AUTO_MAX``),
kept within ``[AUTO_MIN, AUTO_MAX]``. On planted copies (bench/leak_planted.py) the median is
about 0.09 on upscaled Fashion-MNIST and 0.26 on crops of colour photos: no one fixed
threshold serves both, and the ones they give (0.006 and 0.018) are near the best of each.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from medalist.data.leak import Fingerprints

THUMB = 64
BLUR = 2.0
MARGIN = 7
CROP_RATIO = 1.2
DARK, BRIGHT = 5, 250
BLOCKS = 4
FAR = 0.25  # a plain correlation this far from 1 needs no finer look
AUTO_FACTOR = 0.07
AUTO_MIN, AUTO_MAX = 0.002, 0.03


@dataclass
class Threshold:
    """A distance threshold and why it has that value."""

    value: float
    note: str


def blurred_thumb(grey: np.ndarray) -> np.ndarray:
    """The THUMB x THUMB grey thumbnail the pair check compares, blurred by BLUR pixels."""
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(thumb, (0, 0), BLUR)


def _masked_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """NCC over the pixels that are neither clipped nor black in either image (float32)."""
    keep = cv2.inRange(a, DARK + 0.5, BRIGHT - 0.5) & cv2.inRange(b, DARK + 0.5, BRIGHT - 0.5)
    if cv2.countNonZero(keep) < a.size // 4:  # too little is left to judge: every pixel
        keep = None
    (ma, sa), (mb, sb) = (np.ravel(cv2.meanStdDev(x, mask=keep)) for x in (a, b))
    if sa * sb <= 0:
        return -1.0
    return (cv2.mean(cv2.multiply(a, b), mask=keep)[0] - ma * mb) / (sa * sb)


def _unevenness(a: np.ndarray, b: np.ndarray, ncc: float) -> float:
    """Mean squared residual of the worst of BLOCKS x BLOCKS blocks over that of all pixels.

    `ncc` is the plain correlation of `a` and `b` (float32), the slope between their z-scores.
    """
    (ma, sa), (mb, sb) = (np.ravel(cv2.meanStdDev(x)) for x in (a, b))
    res = cv2.pow((b - mb) / (sb + 1e-6) - (a - ma) * (ncc / (sa + 1e-6)), 2)
    blocks = cv2.resize(res, (BLOCKS, BLOCKS), interpolation=cv2.INTER_AREA)
    mean = cv2.mean(res)[0]
    return float(blocks.max()) / mean if mean > 1e-9 else 1.0


def compare(big: np.ndarray, small: np.ndarray) -> float:
    """Distance of `small`'s centre, at its best shift over `big` (0 is the same picture)."""
    m = MARGIN
    tpl = small[m : small.shape[0] - m, m : small.shape[1] - m]
    if min(tpl.shape) < 8 or tpl.shape[0] > big.shape[0] or tpl.shape[1] > big.shape[1]:
        return 2.0
    if tpl.std() < 1.0 or big.std() < 1.0:  # flat images: equal means are the same picture
        return 0.0 if abs(float(tpl.mean()) - float(big.mean())) < 2.0 else 2.0
    score = np.nan_to_num(cv2.matchTemplate(big, tpl, cv2.TM_CCOEFF_NORMED), nan=-1.0)
    y, x = np.unravel_index(int(score.argmax()), score.shape)
    if 1.0 - score[y, x] > FAR:
        return float(1.0 - score[y, x])
    win = big[y : y + tpl.shape[0], x : x + tpl.shape[1]].astype(np.float32)
    tpl = tpl.astype(np.float32)
    d = max(0.0, 1.0 - _masked_ncc(win, tpl))
    return min(2.0, d * float(np.sqrt(_unevenness(win, tpl, float(score[y, x])))))


def pair_distance(fp: Fingerprints, a: int, b: int) -> float:
    """The distance of two images: the closer of the resized-copy and cropped-copy readings."""
    ta, tb = fp.thumbs[a], fp.thumbs[b]
    best = compare(ta, tb)
    (wa, ha), (wb, hb) = fp.sizes[a], fp.sizes[b]
    sx, sy = wb / wa, hb / ha
    if (wa, ha) != (wb, hb) and all(1 / CROP_RATIO < s < CROP_RATIO for s in (sx, sy)):
        # Same pixel scale: shrink the smaller image's thumbnail by its size ratio.
        if wb * hb <= wa * ha:
            size = (round(THUMB * sx), round(THUMB * sy))
            best = min(best, compare(ta, cv2.resize(tb, size, interpolation=cv2.INTER_AREA)))
        else:
            size = (round(THUMB / sx), round(THUMB / sy))
            best = min(best, compare(tb, cv2.resize(ta, size, interpolation=cv2.INTER_AREA)))
    return best


def verify_pairs(fp: Fingerprints, pairs: np.ndarray, workers: int | None = None) -> np.ndarray:
    """The distance of every candidate pair (threads; OpenCV releases the GIL)."""
    if len(pairs) == 0:
        return np.zeros(0)
    chunks = np.array_split(np.arange(len(pairs)), max(1, len(pairs) // 2000))

    def run(idx: np.ndarray) -> np.ndarray:
        return np.array([pair_distance(fp, int(pairs[i, 0]), int(pairs[i, 1])) for i in idx])

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return np.concatenate(list(pool.map(run, chunks)))


def nearest_distances(n: int, pairs: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Each image's distance to its nearest verified candidate (inf when it has none)."""
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, pairs[:, 0], dist)
    np.minimum.at(nearest, pairs[:, 1], dist)
    return nearest


def choose_threshold(n: int, pairs: np.ndarray, dist: np.ndarray) -> Threshold:
    """AUTO_FACTOR x the median nearest-neighbour distance of the images that are no copies."""
    nearest = nearest_distances(n, np.asarray(pairs).reshape(-1, 2), np.asarray(dist))
    nearest = nearest[np.isfinite(nearest)]  # no candidate: far from all, but how far is unknown
    t, median, rest = AUTO_MAX, float("nan"), 0
    for _ in range(100):
        others = nearest[nearest > t]
        if len(others) == 0:
            break
        median, rest = float(np.median(others)), len(others)
        new = float(np.clip(AUTO_FACTOR * median, AUTO_MIN, AUTO_MAX))
        if abs(new - t) < 1e-7:
            break
        t = new
    if rest == 0:
        note = "no image has a near neighbour to judge by: the lower bound"
        return Threshold(AUTO_MIN, f"distance threshold {AUTO_MIN:g} ({note})")
    bound = {AUTO_MIN: " (the lower bound)", AUTO_MAX: " (the upper bound)"}.get(t, "")
    return Threshold(
        t,
        f"distance threshold {t:.4f}{bound}, from the data: {AUTO_FACTOR:g} x {median:.4f}, "
        f"the median distance from an image to its nearest other image over the {rest} "
        "images not within the threshold of one (--threshold sets it)",
    )
