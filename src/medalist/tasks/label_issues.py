"""Labels that look wrong: confident learning on out-of-fold probabilities, and its analogue
for masks.

Classification follows Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty
in Dataset Labels" (JAIR 2021), written from the paper:

- the threshold of class j is the class's average self-confidence: the mean predicted
  probability of j over the rows labelled j;
- the confident joint C[i, j] counts the rows labelled i whose probability of class j reaches
  t_j (the likeliest such class when several do); a row with no class at its threshold is not
  counted;
- calibrated, each row i of C is scaled to the number of rows labelled i; off its diagonal it
  estimates how many rows labelled i belong to class j;
- `prune_by_noise_rate` (the default): for every pair i != j, flag that many rows labelled i,
  those with the largest margin p_j - p_i; `prune_by_class`: for every class i, the
  sum over j != i of them, those with the lowest p_i; `both`: rows flagged by both;
  `confident_learning`: the rows off the diagonal of C itself;
- a row whose given label is also the model's most likely class is never flagged, and each
  class keeps at least MIN_KEEP rows;
- flagged rows are ranked by self-confidence (the probability of the given label, lowest first)
  or by normalised margin ((p_given - max other p + 1) / 2, lowest first).

A multilabel target is ranked label by label, each as a binary problem.

Masks: the pixel classes are background and object. A pixel is confidently object when its
probability reaches the mean probability over the given object pixels, confidently background
when 1 - p reaches the mean over the given background pixels. Each image is scored by
1 - Dice between the given mask and the model's confident labels, on the confident pixels only;
an image is flagged when that disagreement is at least MASK_FLAG.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class LabelIssues:
    """What a task found: how many units it examined (rows, pairs, images), the suspect ones
    most suspicious first, the method in words, and the thresholds it used."""

    examined: int
    unit: str
    table: pd.DataFrame
    method: str
    thresholds: dict[str, float] = field(default_factory=dict)
    noun: str = "labels"


FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning")
RANKINGS = ("self_confidence", "normalized_margin")
MIN_KEEP = 1
MASK_FLAG = 0.5
# Probabilities stored as float32 or float16 can sit a hair under their own class mean.
TOLERANCE = 1e-6


def class_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per class, the mean predicted probability of that class over the rows labelled with it
    (infinite for a class no row has: it can never be confident)."""
    k = probs.shape[1]
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros(k)
    np.add.at(sums, labels, probs[np.arange(len(labels)), labels])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.inf)


def confident_guess(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per row, the likeliest class whose probability reaches its threshold; -1 when none does."""
    above = probs >= thresholds[None, :] - TOLERANCE
    guess = np.where(above, probs, -np.inf).argmax(axis=1)
    return np.where(above.any(axis=1), guess, -1)


def confident_joint(labels: np.ndarray, guess: np.ndarray, k: int) -> np.ndarray:
    """C[i, j]: rows labelled i whose confident guess is j."""
    joint = np.zeros((k, k), dtype=np.int64)
    counted = guess >= 0
    np.add.at(joint, (labels[counted], guess[counted]), 1)
    return joint


def calibrate_joint(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The confident joint with each row scaled to the number of rows that carry its label."""
    counts = np.bincount(labels, minlength=joint.shape[0]).astype(np.float64)
    totals = joint.sum(axis=1).astype(np.float64)
    scale = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return joint * scale[:, None]


def ranking_scores(labels: np.ndarray, probs: np.ndarray, rank_by: str) -> np.ndarray:
    """Per row, how much the model believes its given label (lower is more suspicious)."""
    rows = np.arange(len(labels))
    own = probs[rows, labels]
    if rank_by == "self_confidence":
        return own
    others = probs.copy()
    others[rows, labels] = -np.inf
    return (own - others.max(axis=1) + 1.0) / 2.0


def _lowest(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the `n` smallest values, ties by position (so the result is reproducible)."""
    return np.lexsort((np.arange(len(values)), values))[:n] if n > 0 else np.zeros(0, np.int64)


def _prune_counts(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows to flag per (given, true) pair: the calibrated joint off its diagonal, rounded, and
    scaled down where it would leave a class fewer than MIN_KEEP rows."""
    prune = np.rint(calibrate_joint(joint, labels)).astype(np.int64)
    np.fill_diagonal(prune, 0)
    counts = np.bincount(labels, minlength=len(joint))
    for i, row in enumerate(prune):
        budget = max(int(counts[i]) - MIN_KEEP, 0)
        if row.sum() > budget:
            prune[i] = np.floor(row * budget / row.sum()).astype(np.int64)
    return prune


def find_issues(labels: np.ndarray, probs: np.ndarray, filter_by: str) -> np.ndarray:
    """A boolean mask of the rows whose given label the model confidently contradicts."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    guess = confident_guess(probs, class_thresholds(labels, probs))
    if filter_by == "confident_learning":
        flagged = (guess >= 0) & (guess != labels)
    else:
        prune = _prune_counts(confident_joint(labels, guess, k), labels)
        by_rate, by_class = np.zeros(n, bool), np.zeros(n, bool)
        for i in range(k):
            rows = np.flatnonzero(labels == i)
            for j in np.flatnonzero(prune[i]):
                margin = probs[rows, j] - probs[rows, i]
                by_rate[rows[_lowest(-margin, int(prune[i, j]))]] = True
            by_class[rows[_lowest(probs[rows, i], int(prune[i].sum()))]] = True
        flagged = {"prune_by_noise_rate": by_rate, "prune_by_class": by_class}.get(
            filter_by, by_rate & by_class
        )
    return flagged & (probs.argmax(axis=1) != labels)


@dataclass
class Issues:
    """The outcome of confident learning on one set of (labels, probabilities)."""

    flagged: np.ndarray  # bool per row
    scores: np.ndarray  # ranking score per row, lower is more suspicious
    suggested: np.ndarray  # the model's likeliest class per row
    thresholds: np.ndarray  # per class

    def order(self) -> np.ndarray:
        """Positions of the flagged rows, most suspicious first."""
        rows = np.flatnonzero(self.flagged)
        return rows[np.lexsort((rows, self.scores[rows]))]


def label_issues(labels: np.ndarray, probs: np.ndarray, filter_by: str, rank_by: str) -> Issues:
    """Confident learning on integer labels and (n, classes) probabilities."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    return Issues(
        flagged=find_issues(labels, probs, filter_by),
        scores=ranking_scores(labels, probs, rank_by),
        suggested=probs.argmax(axis=1),
        thresholds=class_thresholds(labels, probs),
    )


def rank_all(labels: np.ndarray, probs: np.ndarray, rank_by: str) -> np.ndarray:
    """Every row's position, most suspicious first by the ranking score alone."""
    scores = ranking_scores(np.asarray(labels, np.int64), np.asarray(probs, np.float64), rank_by)
    return np.lexsort((np.arange(len(scores)), scores))


def issue_table(
    ids: pd.Series,
    folds: pd.Series,
    labels: np.ndarray,
    probs: np.ndarray,
    classes: list[object],
    filter_by: str,
    rank_by: str,
) -> tuple[pd.DataFrame, Issues]:
    """The flagged rows, most suspicious first: id, fold, given and suggested label, the model's
    probability of each (self_confidence, suggested_confidence), the ranking score and rank."""
    found = label_issues(labels, probs, filter_by, rank_by)
    at = found.order()
    given, suggested = np.asarray(labels)[at], found.suggested[at]
    table = pd.DataFrame(
        {
            "id": ids.to_numpy()[at],
            "fold": folds.to_numpy()[at],
            "given_label": [classes[i] for i in given],
            "suggested_label": [classes[i] for i in suggested],
            "self_confidence": probs[at, given],
            "suggested_confidence": probs[at, suggested],
            "score": found.scores[at],
            "rank": np.arange(1, len(at) + 1),
        }
    )
    return table, found


def multilabel_issue_table(
    ids: pd.Series,
    folds: pd.Series,
    targets: np.ndarray,
    probs: np.ndarray,
    labels: list[object],
    filter_by: str,
    rank_by: str,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Each label as its own binary problem (absent / present); the flagged (row, label) pairs
    of all labels ranked together, with the label in a `label` column; and each label's
    threshold for "present"."""
    parts, thresholds = [], {}
    for j, name in enumerate(labels):
        y = np.asarray(targets[:, j]).round().astype(np.int64)
        p = np.clip(np.asarray(probs[:, j], dtype=np.float64), 0.0, 1.0)
        table, found = issue_table(
            ids, folds, y, np.stack([1 - p, p], axis=1), [0, 1], filter_by, rank_by
        )
        thresholds[str(name)] = float(found.thresholds[1])
        parts.append(table.assign(label=name))
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["score", "rank", "label"], kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    columns = ["id", "fold", "label", "given_label", "suggested_label", "self_confidence"]
    return table[[*columns, "suggested_confidence", "score", "rank"]], thresholds


# ---- masks ----------------------------------------------------------------------------------
@dataclass
class MaskThresholds:
    """Running sums for the two pixel classes' average self-confidence."""

    object_sum: float = 0.0
    object_count: int = 0
    background_sum: float = 0.0
    background_count: int = 0

    def add(self, given: np.ndarray, probs: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Count a batch of given masks (0/1) and their probability masks (`valid`: the
        pixels to count, index masks' non-void ones; None: all)."""
        on = given > 0
        off = ~on if valid is None else ~on & valid
        on = on if valid is None else on & valid
        p = probs.astype(np.float64)
        self.object_sum += float(p[on].sum())
        self.object_count += int(on.sum())
        self.background_sum += float((1.0 - p[off]).sum())
        self.background_count += int(off.sum())

    @property
    def values(self) -> tuple[float, float]:
        """(object threshold on p, background threshold on 1 - p); inf when a class is absent."""
        obj = self.object_sum / self.object_count if self.object_count else np.inf
        bg = self.background_sum / self.background_count if self.background_count else np.inf
        return float(obj), float(bg)


def confident_pixels(
    probs: np.ndarray, thresholds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(confident, confidently object) per pixel of a probability mask; a pixel that reaches
    both thresholds (a weak model's) is object when p >= 0.5."""
    t_obj, t_bg = thresholds
    p = np.asarray(probs, dtype=np.float32)
    sure_obj = p >= t_obj - TOLERANCE
    sure_bg = (1.0 - p) >= t_bg - TOLERANCE
    return sure_obj | sure_bg, sure_obj & (~sure_bg | (p >= 0.5))


def mask_disagreement(
    given: np.ndarray,
    probs: np.ndarray,
    thresholds: tuple[float, float],
    valid: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per image of (n, H, W) given masks and probability masks: the given and the confidently
    predicted area (fractions of the image), the fraction of confident pixels, their Dice and
    the disagreement 1 - Dice, and the confident pixels whose given class the model contradicts
    (a fraction of the image). With `valid` (n, H, W), only those pixels count (index masks'
    void pixels are left out), and the fractions are of them."""
    n = len(given)
    g = given.reshape(n, -1) > 0
    confident, predicted = confident_pixels(probs.reshape(n, -1), thresholds)
    if valid is not None:
        v = valid.reshape(n, -1)
        g, confident = g & v, confident & v
    g_c, p_c = g & confident, predicted & confident
    both = (g_c & p_c).sum(axis=1)
    size = g_c.sum(axis=1) + p_c.sum(axis=1)
    dice = np.divide(2.0 * both, size, out=np.ones(n), where=size > 0)

    def share(a: np.ndarray) -> np.ndarray:
        if valid is None:
            return a.mean(axis=1)
        counted = v.sum(axis=1)
        return np.divide(a.sum(axis=1), counted, out=np.zeros(n), where=counted > 0)

    return pd.DataFrame(
        {
            "given_area": share(g),
            "suggested_area": share(p_c),
            "confident_fraction": share(confident),
            "confident_dice": dice,
            "disagreement": 1.0 - dice,
            "contradicted_fraction": share(g_c ^ p_c),
        }
    )


def rank_masks(table: pd.DataFrame) -> pd.DataFrame:
    """The images (or image-class pairs) flagged, most disagreement first, then the most
    contradicted pixels, then by id; with their rank."""
    flagged = table[table["disagreement"] >= MASK_FLAG]
    keys = ["disagreement", "contradicted_fraction", "id"]
    out = flagged.sort_values(keys, ascending=[False, False, True], kind="stable")
    return out.reset_index(drop=True).assign(rank=np.arange(1, len(out) + 1))


def chunks(n: int, size: int = 256) -> Iterable[slice]:
    """Slices of `size` rows covering range(n): bounded memory for pixel arrays."""
    return (slice(start, min(start + size, n)) for start in range(0, n, size))
