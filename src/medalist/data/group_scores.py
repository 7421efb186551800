"""How strongly a grouping ties images together: the figures behind medalist.data.groups.

Figures are computed on descriptor vectors (unit length), with nothing pairwise in Python:

- ``separation``: the mean squared distance of pairs of images in different groups over that
  of pairs in one group, from per-group sums (1 for a grouping unrelated to the images);
- ``nn_same``: the share of images whose nearest neighbour (faiss, through the leak search's
  kNN) is in their own group, beside ``chance``, that share for a random grouping of the same
  sizes, and ``z``, the excess in binomial standard deviations.

A grouping is strong when ``nn_same`` beats chance by ``MIN_LIFT`` and ``MIN_Z`` standard
deviations and ``separation`` is at least ``MIN_SEPARATION``. Clusters are fitted to the
descriptors, so they would pass that test on any data: they are judged against the same
clustering of the descriptors with each column shuffled (structure removed), must be tight
(``MIN_CLUSTER_NN`` of the images have their nearest neighbour in their cluster), and count only
when the test images are farther from the training images than those are from each other
(``novelty_ratio`` at least ``MIN_TEST_RATIO``): clusters that recur in the test set are kinds
of images, such as the classes, not sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medalist.data.leak import knn_pairs

MIN_LIFT = 0.1  # nn_same - chance
MIN_Z = 5.0
MIN_SEPARATION = 1.05
CLUSTER_MARGIN = 1.5  # separation over that of the structure-free clustering
MIN_TEST_RATIO = 1.25
MIN_CLUSTER_NN = 0.9  # scenes: nearly every image's nearest neighbour is in its cluster
MAX_SHARE = 0.5  # the largest group's share of the rows, for folds to be made
PCA_DIMS = 32


@dataclass
class GroupCandidate:
    """One grouping found, with its figures; `labels` has one group per training row."""

    column: str
    source: str  # name | exif | size | cluster
    how: str
    labels: np.ndarray | None  # None: measured on a sample only (clusters in `medalist new`)
    n_groups: int
    separation: float = float("nan")
    nn_same: float = float("nan")
    chance: float = float("nan")
    z: float = float("nan")
    strong: bool = False
    usable: bool = True
    note: str = ""
    null_separation: float | None = None  # clusters: the structure-free clustering's
    null_nn_same: float | None = None

    def figures(self) -> str:
        """The candidate in one phrase: groups, closeness, nearest neighbours."""
        text = (
            f"{self.n_groups} groups; images of one group are {self.separation:.1f}x closer than "
            f"images of different groups; {self.nn_same:.0%} have their nearest neighbour in "
            f"their own group ({self.chance:.0%} by chance)"
        )
        if self.null_separation is not None:
            text += (
                f"; the same clustering of structure-free descriptors: "
                f"{self.null_separation:.1f}x, {self.null_nn_same:.0%}"
            )
        return text

    def verdict(self) -> str:
        """strong, weak, or why it cannot make folds."""
        if not self.usable:
            return f"not usable: {self.note}"
        return "strong" if self.strong else "weak" + (f" ({self.note})" if self.note else "")


# --------------------------------------------------------------------------------------------
# scoring


def separation(x: np.ndarray, codes: np.ndarray) -> float:
    """Mean squared distance of pairs in different groups over that of pairs in one group."""
    x = np.asarray(x, np.float64)
    n, k = len(x), int(codes.max()) + 1
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, codes, x)
    sq = (x**2).sum(1)
    # sum over ordered pairs of |xi - xj|^2 = 2 m sum|xi|^2 - 2 |sum xi|^2, per group and overall
    within = float((2 * counts * np.bincount(codes, sq, k) - 2 * (sums**2).sum(1)).sum())
    total = 2 * n * sq.sum() - 2 * float((x.sum(0) ** 2).sum())
    pairs_within = float((counts * (counts - 1)).sum())
    pairs_between = n * (n - 1) - pairs_within
    if pairs_within == 0 or pairs_between == 0 or within <= 0:
        return float("nan") if pairs_within == 0 or pairs_between == 0 else float("inf")
    return ((total - within) / pairs_between) / (within / pairs_within)


def nearest_neighbours(x: np.ndarray) -> np.ndarray:
    """Each unit vector's nearest other vector (faiss, through the leak search's kNN)."""
    nn = np.arange(len(x))
    if len(x) < 2:
        return nn
    pairs = knn_pairs(x, 1, 2.0)
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])
    b = np.concatenate([pairs[:, 1], pairs[:, 0]])
    d = -np.einsum("ij,ij->i", x[a], x[b])
    order = np.lexsort((d, a))
    a, b = a[order], b[order]
    first = np.r_[True, a[1:] != a[:-1]]
    nn[a[first]] = b[first]
    return nn


def nn_agreement(nn: np.ndarray, codes: np.ndarray) -> tuple[float, float, float]:
    """Share of items whose nearest neighbour shares their group, chance share, and z."""
    n = len(codes)
    counts = np.bincount(codes).astype(np.float64)
    chance = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    same = float((codes[nn] == codes).mean())
    z = (same - chance) * n / math.sqrt(max(n * chance * (1 - chance), 1e-9))
    return same, chance, z


def _usable(codes: np.ndarray, n_splits: int, target: np.ndarray | None) -> str:
    """Why a grouping can't make folds ("" when it can)."""
    counts = np.bincount(codes)
    if len(counts) < n_splits:
        return f"fewer groups than the {n_splits} folds"
    if counts.max() > MAX_SHARE * len(codes):
        return f"one group holds {counts.max() / len(codes):.0%} of the images"
    if target is not None:
        pure = pd.Series(target).groupby(codes).nunique().max() == 1
        if pure and len(counts) <= pd.Series(target).nunique():
            return "the groups are the classes (it repeats the target)"
    return ""


def score(
    column: str,
    source: str,
    how: str,
    labels: np.ndarray,
    x: np.ndarray,
    nn: np.ndarray,
    idx: np.ndarray,
    n_splits: int,
    target: np.ndarray | None,
) -> GroupCandidate:
    """A candidate's figures on the scored rows `idx` (x and nn are of those rows)."""
    codes = pd.factorize(pd.Series(labels[idx]))[0]
    all_codes = pd.factorize(pd.Series(labels))[0]
    cand = GroupCandidate(column, source, how, labels, int(all_codes.max()) + 1)
    cand.note = _usable(all_codes, n_splits, target)
    cand.usable = not cand.note
    cand.separation = separation(x, codes)
    cand.nn_same, cand.chance, cand.z = nn_agreement(nn, codes)
    cand.strong = bool(
        cand.z >= MIN_Z
        and cand.nn_same - cand.chance >= MIN_LIFT
        and cand.separation >= MIN_SEPARATION
    )
    if cand.usable and np.isnan(cand.separation):
        cand.note = f"no two of the {len(idx)} images scored share a group"
    return cand


def _cluster_sizes(m: int, n_splits: int) -> list[int]:
    lo, hi = n_splits, max(n_splits, m // 4)
    wanted = (2 * n_splits, round(math.sqrt(m)), round(m / 10))
    return sorted({min(max(k, lo), hi) for k in wanted})


def cluster_candidate(
    x: np.ndarray,
    labelled_all: bool,
    sample: np.ndarray,
    n_splits: int,
    target: np.ndarray | None,
    test_ratio: float | None,
    seed: int,
) -> GroupCandidate | None:
    """KMeans clusters of the descriptors, judged against the same clustering without structure.

    The number of clusters is the one (of a few) whose silhouette most beats that of the
    descriptors with each column shuffled; the figures are in the PCA space both were fitted in.
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    xs = x[sample]
    m = len(xs)
    if m < 4 * n_splits:
        return None
    # At most m / 5 dimensions: fewer samples than that leave the shuffled null no emptier.
    pca = PCA(max(2, min(PCA_DIMS, m // 5, x.shape[1])), random_state=seed).fit(xs)
    z = pca.transform(xs)
    rng = np.random.default_rng(seed)
    null = np.column_stack([rng.permutation(col) for col in z.T])
    with threadpool_limits(1):  # a few small fits: OpenMP's threads cost more than they save
        k, km, km0 = _best_clustering(z, null, n_splits, seed)
        labels = None
        if labelled_all:
            labels = np.array([f"c{c}" for c in km.predict(pca.transform(x))], dtype=object)
    how = f"{k} KMeans clusters of the images' scene descriptors (spectrum and grey histogram)"
    sample_labels = np.array([f"c{c}" for c in km.labels_], dtype=object)
    y = None if target is None else target[sample]
    nn = nearest_neighbours(_unit(z))
    cand = score("group_cluster", "cluster", how, sample_labels, z, nn, np.arange(m), n_splits, y)
    cand.labels, cand.n_groups = labels, k
    cand.null_separation = separation(null, km0.labels_)
    cand.null_nn_same = nn_agreement(nearest_neighbours(_unit(null)), km0.labels_)[0]
    tight = bool(
        cand.separation >= CLUSTER_MARGIN * cand.null_separation
        and cand.nn_same >= max(cand.null_nn_same + 2 * MIN_LIFT, MIN_CLUSTER_NN)
    )
    cand.strong = tight and test_ratio is not None and test_ratio >= MIN_TEST_RATIO
    if not tight:
        cand.note = "not much tighter than clusters of structure-free descriptors"
    elif test_ratio is None:
        cand.note = "no test images to tell sources from kinds of images that recur in the test"
    elif test_ratio < MIN_TEST_RATIO:
        cand.note = f"test images are as close to training images ({test_ratio:.2f}x)"
    if labels is None and cand.usable:
        cand.usable, cand.note = False, "measured on a sample: medalist leak labels every image"
    return cand


def _best_clustering(
    z: np.ndarray, null: np.ndarray, n_splits: int, seed: int
) -> tuple[int, Any, Any]:
    """(k, fit on z, fit on null) for the k whose silhouette most beats the null's."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    m, fits = len(z), []
    for k in _cluster_sizes(m, n_splits):
        km, km0 = (KMeans(k, n_init=3, random_state=seed).fit(d) for d in (z, null))
        s = min(m, 2000)
        gain = silhouette_score(z, km.labels_, sample_size=s, random_state=seed)
        gain -= silhouette_score(null, km0.labels_, sample_size=s, random_state=seed)
        fits.append((gain, k, km, km0))
    _, k, km, km0 = max(fits, key=lambda f: f[0])
    return k, km, km0


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def novelty_ratio(train_x: np.ndarray, test_x: np.ndarray) -> float | None:
    """Median distance of test images to their nearest training image over that of training
    images to their nearest other training image (about 1 when test is drawn like train)."""
    import faiss

    if len(test_x) == 0 or len(train_x) < 2:
        return None
    index = faiss.IndexFlatIP(train_x.shape[1])
    index.add(np.ascontiguousarray(train_x, np.float32))
    cos_test = index.search(np.ascontiguousarray(test_x, np.float32), 1)[0][:, 0]
    k = min(len(train_x), 8)
    cos_train = index.search(np.ascontiguousarray(train_x, np.float32), k)[0]
    d_test, d_train = (np.sqrt(np.maximum(2.0 - 2.0 * c, 0.0)) for c in (cos_test, cos_train))
    # The nearest other picture: itself and exact copies (a leak of their own) are left out.
    d_train = np.where(d_train > 1e-3, d_train, np.inf).min(1)
    d_train = d_train[np.isfinite(d_train)]
    if len(d_train) == 0:
        return None
    return float(np.median(d_test) / max(float(np.median(d_train)), 1e-6))
