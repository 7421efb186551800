"""Near-duplicate search: fingerprints of images, candidate pairs from three indexes, one check.

A pair of images is a near duplicate when, after the best small shift, their blurred grey
thumbnails correlate almost perfectly (medalist.data.leak_match). The search runs in three
steps, none of them pairwise in Python:

1. Fingerprint every image once (threads): imagehash's 256-bit perceptual hash (``phash``,
   hash_size 16), a shift-invariant spectrum (low-frequency magnitudes of the 2-D Fourier
   transform of the Hann-windowed grey image, at one pixel scale for the whole data set so
   that a cropped copy keeps its original's scale), a blurred 64x64 grey thumbnail and, from
   its centre, an 8x8 one (``LOWRES``) that re-encoding, resizing and brightness leave as is.
2. Candidate pairs: perceptual hashes within ``HASH_RADIUS`` bits, found by multi-index
   hashing (`hamming_pairs`: the codes are cut into chunks, sorted by each chunk, and only
   codes that share a chunk are compared), which grows near-linearly with the number of
   images; and, in each of the two vector spaces (the spectrum catches shifted and cropped
   copies, which move every hash bit; the small thumbnail catches re-encoded copies of
   detailed photos, whose hash bits move too), each image's ``NEAR_K`` nearest within
   ``NEAR_RADIUS`` and its ``*_K`` nearest within a tight ``*_RADIUS``, so that a dense
   data set costs a bounded number of candidates per image (faiss: exact up to
   ``EXACT_KNN_MAX`` images; above, PCA to ``SPECTRUM_PCA`` dimensions and an HNSW graph).
3. Verification of every candidate (medalist.data.leak_match.pair_distance).

A pair is reported when its distance is at most the threshold: by default one the data
suggest (medalist.data.leak_match.choose_threshold), which says how it was found. Duplicate
groups are the connected components of the reported pairs (scipy.sparse.csgraph), optionally
joined with an existing group column.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from medalist.data.images import eight_bit, image_size, open_image
from medalist.data.leak_match import THUMB, Threshold, blurred_thumb, choose_threshold
from medalist.data.leak_match import verify_pairs as verify_pairs
from medalist.errors import UserError

DEFAULT_THRESHOLD = None  # from the data (leak_match.choose_threshold)
HASH_SIZE = 16
HASH_RADIUS = 40
SPECTRUM_SIZE = 32
SPECTRUM_FREQS = 12
SPECTRUM_K, SPECTRUM_RADIUS = 4, 0.05
LOWRES, LOWRES_MARGIN = 8, 6
LOWRES_K, LOWRES_RADIUS = 4, 0.01
NEAR_K, NEAR_RADIUS = 2, 0.3
EXACT_KNN_MAX = 10_000
SPECTRUM_PCA = 64
HNSW_M = 16
MIH_BAND = 32


@dataclass
class Fingerprints:
    """Per image: packed perceptual hash, unit spectrum, blurred thumbnails and original size."""

    hashes: np.ndarray  # (n, HASH_SIZE**2 / 8) uint8
    spectra: np.ndarray  # (n, d) float32, unit length
    thumbs: np.ndarray  # (n, THUMB, THUMB) uint8, blurred (leak_match.blurred_thumb)
    lowres: np.ndarray  # (n, LOWRES**2) float32, unit length
    sizes: np.ndarray  # (n, 2) int: width, height

    def __len__(self) -> int:
        return len(self.hashes)


def _open_grey(path: Path) -> Image.Image:
    with open_image(path) as img:
        img.load()
        return eight_bit(img).convert("L")


def spectrum(grey: np.ndarray, scale: float) -> np.ndarray:
    """Shift-invariant descriptor: low-frequency Fourier magnitudes of the windowed image.

    The image is resized by `scale` (one factor for the whole data set, so a cropped copy keeps
    the pixel scale of its original) and centred on a SPECTRUM_SIZE square.
    """
    h, w = grey.shape
    nw = min(SPECTRUM_SIZE, max(2, round(w * scale)))
    nh = min(SPECTRUM_SIZE, max(2, round(h * scale)))
    g = cv2.resize(grey, (max(2, round(w * scale)), max(2, round(h * scale))), cv2.INTER_AREA)
    top, left = (g.shape[0] - nh) // 2, (g.shape[1] - nw) // 2
    g = g[top : top + nh, left : left + nw].astype(np.float32)
    g = (g - g.mean()) * np.outer(np.hanning(nh), np.hanning(nw)).astype(np.float32)
    canvas = np.zeros((SPECTRUM_SIZE, SPECTRUM_SIZE), np.float32)
    y0, x0 = (SPECTRUM_SIZE - nh) // 2, (SPECTRUM_SIZE - nw) // 2
    canvas[y0 : y0 + nh, x0 : x0 + nw] = g
    mag = np.abs(np.fft.rfft2(canvas))
    k = SPECTRUM_FREQS
    v = np.sqrt(np.concatenate([mag[: k + 1, : k + 1], mag[-k:, : k + 1]]).ravel())
    v = v - v.mean()
    norm = np.linalg.norm(v)
    return (v / norm if norm > 0 else v).astype(np.float32)


def lowres_vector(thumb: np.ndarray) -> np.ndarray:
    """The centre of a blurred thumbnail as a LOWRES x LOWRES unit vector, mean removed."""
    m = LOWRES_MARGIN  # the border is left out: a shifted copy's black band sits there
    small = cv2.resize(thumb[m:-m, m:-m], (LOWRES, LOWRES), interpolation=cv2.INTER_AREA)
    v = small.astype(np.float32).ravel()
    v -= v.mean()
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


Fingerprint = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]


def fingerprint(path: Path, scale: float) -> Fingerprint:
    """Hash, spectrum (at `scale`), blurred thumbnail, small vector and size of an image file."""
    return fingerprint_grey(_open_grey(path), scale)


def fingerprint_grey(img: Image.Image, scale: float) -> Fingerprint:
    """Hash, spectrum (at `scale`), blurred thumbnail, small vector and size of a grey image."""
    import imagehash

    bits = imagehash.phash(img, hash_size=HASH_SIZE).hash
    grey = np.asarray(img)
    thumb = blurred_thumb(grey)
    return np.packbits(bits.ravel()), spectrum(grey, scale), thumb, lowres_vector(thumb), img.size


def empty_fingerprints(n: int) -> Fingerprints:
    """Room for the fingerprints of `n` images."""
    d = (2 * SPECTRUM_FREQS + 1) * (SPECTRUM_FREQS + 1)
    return Fingerprints(
        hashes=np.zeros((n, HASH_SIZE * HASH_SIZE // 8), np.uint8),
        spectra=np.zeros((n, d), np.float32),
        thumbs=np.zeros((n, THUMB, THUMB), np.uint8),
        lowres=np.zeros((n, LOWRES * LOWRES), np.float32),
        sizes=np.zeros((n, 2), np.int64),
    )


def fingerprint_images(
    paths: Sequence[Path],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Fingerprints:
    """Fingerprints of every image in `paths`, decoded in a thread pool."""
    n = len(paths)
    out = empty_fingerprints(n)

    def fill(i: int) -> None:
        h, s, t, v, size = fingerprint(paths[i], scale)
        out.hashes[i], out.spectra[i], out.thumbs[i], out.lowres[i], out.sizes[i] = h, s, t, v, size

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        sizes = np.array(list(pool.map(image_size, paths))).reshape(-1, 2)
        scale = SPECTRUM_SIZE / float(np.median(sizes.max(1))) if n else 1.0
        for _ in pool.map(fill, range(n)):
            if progress is not None:
                progress(1)
    return out


def _unique_pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """(m, 2) int64 pairs with i < j, without repeats or self-pairs, sorted."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    keep = i != j
    a, b = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    if a.size == 0:
        return np.zeros((0, 2), np.int64)
    n = int(b.max()) + 1
    key = np.unique(a * n + b)  # one int64 per pair: a 1-D sort, not a row sort
    return np.stack([key // n, key % n], 1)


def hamming_pairs(codes: np.ndarray, radius: int) -> np.ndarray:
    """Pairs of packed binary codes within `radius` bits, by multi-index hashing.

    Each code is cut into chunks of whole bytes (byte ``c``, ``c + m``, ``c + 2m``... for chunk
    ``c`` of ``m``, so that a chunk of a perceptual hash mixes rows of its DCT); two codes are
    compared only when they agree on a whole chunk. Chunks are long enough (about log2(n) + 6
    bits) that random codes rarely share one, so the work grows near-linearly with n: one sort
    per chunk and a popcount per candidate. Codes within ``radius < m`` bits always share a
    chunk (pigeonhole); wider radii are found when the differences bunch up, which is how
    near copies differ. Within a chunk bucket, each code is compared with its ``MIH_BAND``
    neighbours in sort order, which bounds the work on a bucket of thousands of identical
    images while keeping them connected (every member pairs with the next).

    faiss's ``IndexBinaryMultiHash`` does the same lookups, but its time per query grew
    eightfold from 10k to 100k codes in bench/leak.py even with empty buckets.
    """
    codes = np.ascontiguousarray(codes, np.uint8)
    n, nbytes = codes.shape
    if n < 2 or nbytes == 0:
        return np.zeros((0, 2), np.int64)
    per = max(1, min(4, nbytes, math.ceil((math.log2(n) + 6) / 8)))  # bytes per chunk
    m = nbytes // per
    found = []
    for c in range(m):
        cols = codes[:, c::m][:, :per].astype(np.uint32)
        keys = np.zeros(n, np.uint32)
        for j in range(per):
            keys = (keys << np.uint32(8)) | cols[:, j]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        run = np.cumsum(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) - 1
        shared = np.bincount(run)[run] > 1
        order, run = order[shared], run[shared]
        for d in range(1, MIH_BAND + 1):
            same = run[d:] == run[:-d]
            if not same.any():
                break
            found.append(np.stack([order[:-d][same], order[d:][same]], 1))
    if not found:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(found)
    dist = np.bitwise_count(codes[pairs[:, 0]] ^ codes[pairs[:, 1]]).sum(1, dtype=np.int64)
    pairs = pairs[dist <= radius]
    return _unique_pairs(pairs[:, 0], pairs[:, 1])


def knn_pairs(
    vectors: np.ndarray, k: int, radius: float, near_k: int = 0, near_radius: float = 0.0
) -> np.ndarray:
    """Pairs among each unit vector's `k` nearest within cosine distance `radius`, or among
    its `near_k` nearest within `near_radius` (a copy is an image's nearest, even when far).

    Exact (faiss ``IndexFlatIP``) up to ``EXACT_KNN_MAX`` vectors. Above, faiss's PCA to
    ``SPECTRUM_PCA`` dimensions (trained on at most 20,000 of them) feeds an HNSW graph, which
    grows as n log n instead of n squared; PCA keeps Euclidean distances, which for unit
    vectors are ``sqrt(2 * cosine distance)``, and the radius is checked on the full vectors.
    """
    import faiss

    n, d = vectors.shape
    if n < 2:
        return np.zeros((0, 2), np.int64)
    x = np.ascontiguousarray(vectors, np.float32)
    kk = max(k, near_k)
    if n <= EXACT_KNN_MAX:
        index = faiss.IndexFlatIP(d)
    else:
        hnsw = faiss.IndexHNSWFlat(min(d, SPECTRUM_PCA), HNSW_M)
        hnsw.hnsw.efSearch = max(64, 4 * kk)
        index = hnsw
        if d > SPECTRUM_PCA:
            index = faiss.IndexPreTransform(faiss.PCAMatrix(d, SPECTRUM_PCA), hnsw)
            rng = np.random.default_rng(0)
            index.train(x[np.sort(rng.choice(n, min(n, 20_000), replace=False))])
    index.add(x)
    _, ids = index.search(x, min(kk + 1, n))
    rows = np.repeat(np.arange(n), ids.shape[1]).reshape(ids.shape)
    rank = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)  # 0 is (nearly always) itself
    ok = ids >= 0
    rows, ids, rank = rows[ok], ids[ok], rank[ok]
    cosine = 1.0 - np.einsum("ij,ij->i", x[rows], x[ids])
    keep = ((rank <= k) & (cosine <= radius)) | ((rank <= near_k) & (cosine <= near_radius))
    return _unique_pairs(rows[keep], ids[keep])


def candidate_pairs(fp: Fingerprints) -> np.ndarray:
    """Pairs worth verifying: close hashes, or close spectra or small thumbnails."""
    found = np.concatenate(
        [
            hamming_pairs(fp.hashes, HASH_RADIUS),
            knn_pairs(fp.spectra, SPECTRUM_K, SPECTRUM_RADIUS, NEAR_K, NEAR_RADIUS),
            knn_pairs(fp.lowres, LOWRES_K, LOWRES_RADIUS, NEAR_K, NEAR_RADIUS),
        ]
    )
    return _unique_pairs(found[:, 0], found[:, 1])


@dataclass
class NearDuplicates:
    """The pairs within the threshold, the threshold with its reason, and every candidate."""

    pairs: pd.DataFrame  # a, b, distance: closest first
    threshold: Threshold
    candidates: np.ndarray  # (m, 2) every verified candidate pair
    distances: np.ndarray  # (m,) their distances


def check_threshold(threshold: float | None) -> None:
    """A given threshold must be a distance from 0 to 2."""
    if threshold is not None and not 0.0 <= threshold < 2.0:
        raise UserError(
            f"--threshold {threshold}: give a distance from 0 to 2, or leave it out to take "
            "the one the data suggest"
        )


def near_duplicates(
    fp: Fingerprints, threshold: float | None = None, workers: int | None = None
) -> NearDuplicates:
    """Verified candidates and the pairs within `threshold` (None: from the data)."""
    check_threshold(threshold)
    pairs = candidate_pairs(fp)
    dist = verify_pairs(fp, pairs, workers)
    if threshold is None:
        chosen = choose_threshold(len(fp), pairs, dist)
    else:
        chosen = Threshold(float(threshold), f"distance threshold {threshold:g} (given)")
    keep = dist <= chosen.value
    out = pd.DataFrame({"a": pairs[keep, 0], "b": pairs[keep, 1], "distance": dist[keep]})
    out = out.sort_values(["distance", "a", "b"], kind="stable").reset_index(drop=True)
    return NearDuplicates(out, chosen, pairs, dist)


def find_near_duplicates(
    fp: Fingerprints, threshold: float | None = None, workers: int | None = None
) -> pd.DataFrame:
    """Near-duplicate pairs (a, b, distance) within `threshold` (None: from the data)."""
    return near_duplicates(fp, threshold, workers).pairs


def connected_groups(
    n: int, pairs: np.ndarray, extra_groups: Sequence[object] | None = None
) -> np.ndarray:
    """Component label (0..k-1) of each of `n` items joined by `pairs` and equal `extra_groups`.

    Labels are numbered in order of each component's first item, so they are stable.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    rows, cols, size = [pairs[:, 0]], [pairs[:, 1]], n
    if extra_groups is not None:
        codes, _ = pd.factorize(pd.Series(list(extra_groups)), use_na_sentinel=True)
        has = codes >= 0
        rows.append(np.arange(n)[has])
        cols.append(n + codes[has])
        size = n + (codes.max() + 1 if has.any() else 0)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    labels = labels[:n]
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    remap = np.empty(labels.max() + 1, np.int64)
    remap[np.unique(labels)[order]] = np.arange(len(order))
    return remap[labels]
