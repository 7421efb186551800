"""Is a difference between two sets of per-fold scores real? The paired t-test over folds, and the
rule `medalist compare` applies (significant at ALPHA, and larger than SEED_FACTOR x the seed
std when seed repeats measured it). Used by compare, ensemble, smoothing and post-processing."""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
SEED_FACTOR = 2.0


def paired_test(diffs: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard error, two-sided p of the one-sample t-test against 0) of `diffs`."""
    from scipy import stats

    k = len(diffs)
    mean = float(np.mean(diffs)) if k else math.nan
    if k < 2:
        return mean, math.nan, math.nan
    se = float(np.std(diffs, ddof=1) / math.sqrt(k))
    if se == 0.0:
        return mean, 0.0, (1.0 if mean == 0.0 else 0.0)
    return mean, se, float(stats.ttest_1samp(diffs, 0.0).pvalue)


def sign_test(diffs: np.ndarray) -> float:
    """Two-sided sign test p-value of the non-zero differences."""
    from scipy import stats

    pos, neg = int((diffs > 0).sum()), int((diffs < 0).sum())
    return float(stats.binomtest(pos, pos + neg, 0.5).pvalue) if pos + neg else 1.0


def judge(
    mean_diff: float, p_value: float, seed_std: float | None, alpha: float = ALPHA
) -> tuple[str, list[str]]:
    """The verdict on a signed mean difference, and the reasons for it."""
    reasons = []
    if math.isnan(p_value):
        return "within noise", ["too few folds to test the difference"]
    significant = p_value < alpha
    reasons.append(f"t-test p = {p_value:.3g} ({'<' if significant else '>='} {alpha})")
    beats_seeds = True
    if seed_std is not None:
        floor = SEED_FACTOR * seed_std
        beats_seeds = abs(mean_diff) > floor
        reasons.append(
            f"|mean diff| {abs(mean_diff):.4g} {'>' if beats_seeds else '<='} "
            f"{SEED_FACTOR:g} x seed std = {floor:.4g}"
        )
    if significant and beats_seeds and mean_diff != 0:
        return ("better" if mean_diff > 0 else "worse"), reasons
    return "within noise", reasons
