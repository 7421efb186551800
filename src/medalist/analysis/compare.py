"""Comparisons that decide: one run against another (beyond noise?), CV against the leaderboard.

`compare_runs` answers "did B beat A?" with the method written out in `METHOD`:

- The config change: both resolved configs are flattened (``train.lr``) and every differing
  key is listed; more than one key that affects training is flagged, because the verdict
  cannot say which change did it.
- Paired per-fold differences ``d_k`` (B minus A, signed so that positive means B is better,
  from ``higher_is_better`` in scores.json). Folds are paired only when both runs used the same
  fold of every id (their folds.csv match); otherwise Welch's t-test on the two sets of folds.
- The mean difference, its standard error ``sd(d) / sqrt(k)``, a two-sided paired t-test
  (``scipy.stats.ttest_rel``) and a sign test (``scipy.stats.binomtest``) for reference.
- Seed noise: when a run was trained with several seeds (``seed_std`` in scores.json), the
  mean difference must also exceed ``SEED_FACTOR`` times the larger seed std.
- Verdict: ``better`` (or ``worse``) when the mean difference has that sign, the t-test's
  p < ``ALPHA`` and the seed condition holds; otherwise ``within noise``.

`cv_lb_agreement` measures how well CV predicts the public leaderboard: Pearson and Spearman
correlation with the number of points (scipy.stats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.config import flatten
from medalist.errors import UserError
from medalist.io import read_ids_csv, read_json
from medalist.noise import ALPHA, SEED_FACTOR, judge, paired_test, sign_test  # noqa: F401
from medalist.runs import layout
from medalist.runs.rundir import RunDir, open_run_dir

# Keys that do not change what is trained or how it is scored.
NEUTRAL_PREFIXES = ("track.", "predict.", "data.num_workers", "train.threads", "data.cache")
METHOD = (
    "Method: paired per-fold differences d = B - A (signed so that d > 0 means B is better); "
    f"verdict 'better' or 'worse' when the two-sided paired t-test on d gives p < {ALPHA} and, "
    f"where seed repeats exist, |mean d| > {SEED_FACTOR:g} x the larger seed std; otherwise "
    "'within noise'. Folds differ between the runs -> Welch's t-test instead of the paired one."
)


@dataclass
class Comparison:
    """Everything `medalist compare` reports about run B against run A."""

    name_a: str
    name_b: str
    metric: str
    higher_is_better: bool
    changes: list[tuple[str, Any, Any]]
    folds_a: list[float]
    folds_b: list[float]
    paired: bool
    mean_a: float
    mean_b: float
    mean_diff: float
    std_error: float
    p_value: float
    sign_p: float
    seed_std: float | None
    verdict: str
    reasons: list[str] = field(default_factory=list)

    @property
    def training_changes(self) -> list[tuple[str, Any, Any]]:
        return [c for c in self.changes if not c[0].startswith(NEUTRAL_PREFIXES)]

    @property
    def several_changes(self) -> bool:
        return len(self.training_changes) > 1

    @property
    def diffs(self) -> list[float]:
        sign = 1.0 if self.higher_is_better else -1.0
        return [sign * (b - a) for a, b in zip(self.folds_a, self.folds_b, strict=False)]


def config_changes(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, value in a, value in b) for every flattened key that differs, sorted by key."""
    fa, fb = flatten(a), flatten(b)
    missing = object()
    out = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, missing), fb.get(key, missing)
        if va != vb:
            out.append((key, None if va is missing else va, None if vb is missing else vb))
    return out


def _scores(run: RunDir) -> dict[str, Any]:
    s = run.scores()
    if not s or not s.get("folds"):
        raise UserError(
            f"run {run.path} has no scores.json yet: finish it with medalist train --resume "
            f"{run.path}"
        )
    return s


def _same_folds(a: RunDir, b: RunDir) -> bool:
    fa, fb = a.file(layout.FOLDS), b.file(layout.FOLDS)
    if not (fa.is_file() and fb.is_file()):
        return False
    da = read_ids_csv(fa).sort_values("id").reset_index(drop=True)
    db = read_ids_csv(fb).sort_values("id").reset_index(drop=True)
    return da.equals(db)


def _seed_std(*scores: dict[str, Any]) -> float | None:
    stds = [float(s["seed_std"]) for s in scores if s.get("seed_std") is not None]
    return max(stds) if stds else None


def compare_runs(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Run B against run A: config changes, per-fold differences, verdict (see METHOD)."""
    from scipy import stats

    a, b = open_run_dir(run_a), open_run_dir(run_b)
    sa, sb = _scores(a), _scores(b)
    if sa.get("metric") != sb.get("metric"):
        raise UserError(
            f"runs {a.name} and {b.name} are scored with different metrics "
            f"({sa.get('metric')} and {sb.get('metric')}); compare runs of the same metric"
        )
    hib = bool(sb.get("higher_is_better", sa.get("higher_is_better", True)))
    changes = config_changes(*comparable_settings(a, b))
    fa, fb = [float(x) for x in sa["folds"]], [float(x) for x in sb["folds"]]
    paired = len(fa) == len(fb) and _same_folds(a, b)
    sign = 1.0 if hib else -1.0
    if paired:
        d = sign * (np.array(fb) - np.array(fa))
        mean, se, p = paired_test(d)
        sp = sign_test(d)
    else:
        mean = sign * (float(np.mean(fb)) - float(np.mean(fa)))
        se = math.sqrt(np.var(fa, ddof=1) / len(fa) + np.var(fb, ddof=1) / len(fb))
        p = float(stats.ttest_ind(fb, fa, equal_var=False).pvalue)
        sp = math.nan
    seed_std = _seed_std(sa, sb)
    verdict, reasons = judge(mean, p, seed_std)
    if not paired:
        reasons.insert(0, "folds differ between the runs: unpaired Welch t-test")
    return Comparison(
        name_a=a.name,
        name_b=b.name,
        metric=str(sa["metric"]),
        higher_is_better=hib,
        changes=changes,
        folds_a=fa,
        folds_b=fb,
        paired=paired,
        mean_a=float(np.mean(fa)),
        mean_b=float(np.mean(fb)),
        mean_diff=mean,
        std_error=se,
        p_value=p,
        sign_p=sp,
        seed_std=seed_std,
        verdict=verdict,
        reasons=reasons,
    )


def comparable_settings(a: RunDir, b: RunDir) -> tuple[dict[str, Any], dict[str, Any]]:
    """What to diff between two runs: their saved configs, or, when one is an ensemble (whose
    config.yaml is only its first member's), what each blends: one `ensemble` key."""
    if a.ensemble() is None and b.ensemble() is None:
        return read_yaml(a.file(layout.CONFIG)), read_yaml(b.file(layout.CONFIG))
    return {"ensemble": _blend_text(a)}, {"ensemble": _blend_text(b)}


def _blend_text(run: RunDir) -> str:
    """`a 0.62 + b 0.38 (fit)` for an ensemble, the run's name for a trained run."""
    blend = run.ensemble()
    if blend is None:
        return run.name
    weights = blend.get("weights") or {}
    parts = [f"{m} {float(weights.get(m, 0.0)):.2f}" for m in blend.get("members", [])]
    return " + ".join(parts) + f" ({blend.get('method')})"


def read_yaml(path: Path) -> dict[str, Any]:
    """A run's saved config as a plain mapping; a damaged one is a UserError naming the line."""
    from medalist.config.load import _read_yaml

    return _read_yaml(Path(path))


def correlation(x: np.ndarray, y: np.ndarray) -> dict[str, float | int | None]:
    """Pearson and Spearman correlation of two score lists, with the number of points."""
    from scipy import stats

    n = len(x)
    out: dict[str, float | int | None] = {"n": n, "pearson": None, "spearman": None}
    if n >= 3 and np.std(x) > 0 and np.std(y) > 0:
        out["pearson"] = float(stats.pearsonr(x, y).statistic)
        out["spearman"] = float(stats.spearmanr(x, y).statistic)
    return out


def plot_cv_vs_lb(table: pd.DataFrame, path: Path, metric: str) -> Path:
    """Scatter of CV against public (and private) LB, one labelled point per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medalist.io import atomic_write

    fig, ax = plt.subplots(figsize=(6, 5))
    pub = table.dropna(subset=["cv", "public"])
    ax.scatter(pub["cv"], pub["public"], label="public LB")
    for r in pub.itertuples():
        ax.annotate(
            str(r.run), (r.cv, r.public), fontsize=8, xytext=(3, 3), textcoords="offset points"
        )
    if "private" in table and table["private"].notna().any():
        priv = table.dropna(subset=["cv", "private"])
        ax.scatter(priv["cv"], priv["private"], marker="x", label="private LB")
    lo = np.nanmin(np.r_[pub["cv"], pub["public"]]) if len(pub) else 0.0
    hi = np.nanmax(np.r_[pub["cv"], pub["public"]]) if len(pub) else 1.0
    ax.plot([lo, hi], [lo, hi], ls=":", c="grey", lw=1, label="CV = LB")
    ax.set_xlabel(f"CV ({metric})")
    ax.set_ylabel(f"leaderboard ({metric})")
    ax.set_title("CV against leaderboard")
    ax.legend(loc="best")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110), mode="wb")
    plt.close(fig)
    return path


def read_scores(run: RunDir) -> dict[str, Any]:
    """scores.json of a run, or {} when it has none."""
    f = run.file(layout.SCORES)
    return read_json(f) if f.is_file() else {}
