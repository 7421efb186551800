"""`medalist lb` and `medalist select`: CV against the leaderboard, and the two final picks.

The rule: trust your CV. Rank finished runs by CV. When CV and the public LB
agree poorly (Spearman < `POOR_SPEARMAN` over at least `MIN_POINTS` runs), hedge: pick the best
CV and the best public LB. Among runs whose CV is within noise of a pick, prefer one that can
be reproduced (clean commit or saved diff.patch, seeds recorded, every fold done); picks that
can't be reproduced are marked with what is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from medalist.analysis.compare import correlation, plot_cv_vs_lb
from medalist.errors import UserError
from medalist.runs import layout
from medalist.runs.leaderboard import read_leaderboard
from medalist.runs.rundir import RunDir, project_runs

POOR_SPEARMAN = 0.5
MIN_POINTS = 4
RULE = (
    f"Rank by CV (trust your CV). If CV and public LB agree poorly (Spearman < {POOR_SPEARMAN} "
    f"with >= {MIN_POINTS} scored runs), take the best CV and the best public LB. Within noise "
    "of a pick (its seed std, else its fold std / sqrt(folds)), prefer a reproducible run."
)


def reproducibility(run: RunDir, scores: dict[str, Any], n_splits: int) -> list[str]:
    """What is missing to reproduce a run (empty when nothing is)."""
    missing = []
    prov = run.provenance()
    git = prov.get("git") or {}
    if not git.get("commit"):
        missing.append("no git commit recorded")
    elif git.get("dirty") and not run.file(layout.DIFF).is_file():
        missing.append("dirty tree without diff.patch")
    if not (prov.get("seeds") or scores.get("seeds")):
        missing.append("seeds not recorded")
    if len(scores.get("folds") or []) < n_splits:
        missing.append("not every fold is done")
    blend = run.ensemble()
    for member in blend["members"] if blend else []:
        member_run = RunDir(run.path.parent / member)
        if not member_run.file(layout.CONFIG).is_file():
            missing.append(f"member {member} is missing")
            continue
        member_scores = member_run.scores() or {}
        lacks = reproducibility(member_run, member_scores, n_splits)
        missing += [f"member {member}: {m}" for m in lacks]
    return missing


def run_table(project: Path) -> pd.DataFrame:
    """Every run of the project, oldest first: CV, seed spread, LB scores, reproducibility."""
    project = Path(project)
    board = read_leaderboard(project).set_index("run")
    rows = []
    for run, cfg in project_runs(project):
        scores = run.scores() or {}
        prov = run.provenance()
        lb = board.loc[run.name] if run.name in board.index else None
        folds = scores.get("folds") or []
        missing = reproducibility(run, scores, cfg.cv.n_splits)
        rows.append(
            {
                "run": run.name,
                "started": prov.get("started_at") or "",
                "metric": scores.get("metric", cfg.competition.metric),
                "higher_is_better": scores.get("higher_is_better"),
                "cv": scores.get("mean") if scores else None,
                "cv_std": scores.get("std") if scores else None,
                "n_folds": len(folds),
                "seed_std": scores.get("seed_std"),
                "n_seeds": len(scores.get("seeds") or []),
                "public": _num(lb["public"]) if lb is not None else None,
                "private": _num(lb["private"]) if lb is not None else None,
                "comment": (lb["comment"] if lb is not None else "") or "",
                "reproducible": not missing,
                "missing": "; ".join(missing),
            }
        )
    cols = [
        "run", "started", "metric", "higher_is_better", "cv", "cv_std", "n_folds", "seed_std",
        "n_seeds", "public", "private", "comment", "reproducible", "missing",
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=cols)
    for c in ("cv", "cv_std", "seed_std", "public", "private"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    return table.sort_values(["started", "run"], kind="stable").reset_index(drop=True)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _direction(table: pd.DataFrame) -> bool:
    known = table["higher_is_better"].dropna()
    return bool(known.iloc[0]) if len(known) else True


@dataclass
class LBSummary:
    """CV against LB for every scored run, their correlation, the plot."""

    table: pd.DataFrame
    public: dict[str, Any]
    private: dict[str, Any]
    plot: Path | None
    metric: str


def lb_summary(project: Path, *, plot: bool = True) -> LBSummary:
    """The CV-vs-LB table of scored runs, Pearson/Spearman with counts, plots/cv_vs_lb.png."""
    table = run_table(project)
    scored = table.dropna(subset=["cv"])
    scored = scored[scored["public"].notna() | scored["private"].notna()].reset_index(drop=True)
    pub = scored.dropna(subset=["public"])
    priv = scored.dropna(subset=["private"])
    metric = str(table["metric"].iloc[0]) if len(table) else "score"
    path = None
    if plot and len(scored):
        path = plot_cv_vs_lb(scored, Path(project) / "plots" / "cv_vs_lb.png", metric)
    return LBSummary(
        table=scored,
        public=correlation(pub["cv"].to_numpy(float), pub["public"].to_numpy(float)),
        private=correlation(priv["cv"].to_numpy(float), priv["private"].to_numpy(float)),
        plot=path,
        metric=metric,
    )


@dataclass
class Pick:
    run: str
    reason: str
    cv: float
    public: float | None
    reproducible: bool
    missing: str


@dataclass
class Selection:
    """The two final submissions, why, and the evidence."""

    picks: list[Pick]
    agreement: dict[str, Any]
    poor_agreement: bool
    rule: str
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _noise(row: pd.Series) -> float:
    if pd.notna(row["seed_std"]) and row["seed_std"] > 0:
        return float(row["seed_std"])
    if pd.notna(row["cv_std"]) and row["n_folds"] > 0:
        return float(row["cv_std"]) / math.sqrt(row["n_folds"])
    return 0.0


def _prefer_reproducible(ranked: pd.DataFrame, pos: int, hib: bool) -> tuple[int, str]:
    """The reproducible run within noise of ranked row `pos`, when that row can't be rerun."""
    row = ranked.iloc[pos]
    if row["reproducible"]:
        return pos, ""
    noise = _noise(row)
    for j in range(len(ranked)):
        alt = ranked.iloc[j]
        gap = (row["cv"] - alt["cv"]) if hib else (alt["cv"] - row["cv"])
        if j != pos and alt["reproducible"] and 0 <= gap <= noise:
            return j, f"; preferred to {row['run']} (not reproducible, CV within noise)"
    return pos, ""


def select_final(project: Path) -> Selection:
    """Recommend two final submissions by the rule in RULE."""
    table = run_table(project)
    done = table.dropna(subset=["cv"]).reset_index(drop=True)
    if done.empty:
        raise UserError(
            f"no finished run under {Path(project) / 'runs'}: train one (medalist train CONFIG)"
        )
    hib = _direction(done)
    ranked = done.sort_values("cv", ascending=not hib, kind="stable").reset_index(drop=True)
    pub = ranked.dropna(subset=["public"])
    agreement = correlation(pub["cv"].to_numpy(float), pub["public"].to_numpy(float))
    rho = agreement["spearman"]
    poor = agreement["n"] >= MIN_POINTS and rho is not None and rho < POOR_SPEARMAN
    notes = []
    if agreement["n"] < MIN_POINTS:
        notes.append(
            f"only {agreement['n']} run(s) have a public LB score: too few to judge CV-LB "
            f"agreement (>= {MIN_POINTS} needed), so CV decides"
        )
    first, why = _prefer_reproducible(ranked, 0, hib)
    picks = [_pick(ranked.iloc[first], "best CV" + why)]
    if poor and len(pub):
        best_lb = pub.sort_values("public", ascending=not hib, kind="stable").iloc[0]
        if best_lb["run"] != picks[0].run:
            picks.append(_pick(best_lb, f"best public LB (CV-LB Spearman {rho:.2f} is poor)"))
    if len(picks) < 2:
        rest = ranked[ranked["run"] != picks[0].run].reset_index(drop=True)
        if len(rest):
            second, why = _prefer_reproducible(rest, 0, hib)
            picks.append(_pick(rest.iloc[second], "second-best CV" + why))
        else:
            notes.append("only one finished run: the second submission has no candidate")
    return Selection(picks, agreement, bool(poor), RULE, ranked, notes)


def _pick(row: pd.Series, reason: str) -> Pick:
    return Pick(
        run=str(row["run"]),
        reason=reason,
        cv=float(row["cv"]),
        public=None if pd.isna(row["public"]) else float(row["public"]),
        reproducible=bool(row["reproducible"]),
        missing=str(row["missing"] or ""),
    )
