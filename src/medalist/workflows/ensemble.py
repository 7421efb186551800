"""`medalist ensemble RUN RUN ...`: blend finished runs, weights fitted on their OOF rows.

The practice: combine models that predict differently (architectures, data), once
each of them is good on its own. What a competitor needs to trust the blend is an honest CV:

- Every member must have finished every fold on the same folds (same fold of every id), so
  that each out-of-fold row was predicted by models that never saw it.
- Weights: non-negative, summing to 1, fitted by the task on the OOF rows (`fit_blend_weights`:
  a smooth loss of the blend for classification, `medalist.tasks.blend`; the metric of the
  runs' boxes fused by weighted boxes fusion for detection), or equal with ``--method mean``.
  The task combines the members (`combine`) and fits its post-processing on the blend.
- Honest CV: for each fold k the weights are refitted on the other folds' rows and the blend
  is scored on fold k's rows only (nested). Weights fitted and scored on the same rows are
  reported too, marked optimistic.
- Against the best member: paired per-fold differences, with the verdict rule of `medalist
  compare` (t-test, and twice the seed std where members had seed repeats). Every score in
  that comparison is computed from the OOF rows the same way, for members and blend alike.

The ensemble is a run directory like any other (`runs/<name>/`: ensemble.json, oof.csv,
scores.json, folds.csv, task.json, config.yaml of the first member, provenance.json), so
`medalist runs`, `compare`, `lb`, `select`, `predict` and `package` take it by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import read_ids_csv, write_csv, write_json, write_text
from medalist.runs import layout
from medalist.runs.rundir import RunDir, create_run_dir, open_run_dir
from medalist.tasks import Task, load_run_task

METHODS = ("fit", "mean")
WEAK_FACTOR = 2.0  # a member this many fold-stds below the best is flagged (improve it first)


@dataclass
class Member:
    run: RunDir
    cfg: Any
    task: Task
    oof: pd.DataFrame
    scores: dict[str, Any]

    @property
    def name(self) -> str:
        return self.run.name

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """(targets, predictions) of the member's OOF rows, as its task reads them."""
        dirs = self.run.seed_fold_dirs(self.cfg.cv.n_splits, self.cfg.train.seeds)
        return self.task.preds_from_oof(self.oof, dirs)


@dataclass
class EnsembleResult:
    """What `make_ensemble` wrote and measured."""

    run: RunDir
    method: str
    metric: str
    higher_is_better: bool
    members: list[str]
    weights: dict[str, float]
    member_folds: dict[str, list[float]]
    folds: list[float]
    fold_weights: list[list[float]]
    equal_folds: list[float]
    in_sample: float
    best_member: str
    mean_diff: float
    p_value: float
    verdict: str
    reasons: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.folds))

    @property
    def std(self) -> float:
        return float(np.std(self.folds))


def _open_member(path: Path) -> Member:
    run = open_run_dir(path)
    cfg = run.config()
    scores = run.scores()
    if run.ensemble() is not None:
        raise UserError(
            f"{run.name} is an ensemble: give its member runs instead "
            f"(listed in {run.file(layout.ENSEMBLE)})"
        )
    if not scores or not run.file(layout.OOF).is_file():
        raise UserError(
            f"run {run.name} has not finished every fold (no scores.json/oof.csv): "
            f"finish it with medalist train --resume {run.path}"
        )
    task = load_run_task(run, cfg)
    oof = read_ids_csv(run.file(layout.OOF))
    oof = oof.sort_values("id", kind="stable").reset_index(drop=True)
    return Member(run, cfg, task, oof, scores)


def open_members(paths: list[Path]) -> list[Member]:
    """The member runs, checked to blend honestly: same task, metric, ids and folds."""
    if len(paths) < 2:
        raise UserError("give two or more runs to blend (medalist ensemble RUN RUN ...)")
    members = [_open_member(p) for p in paths]
    names = [m.name for m in members]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UserError(f"run {twice!r} is given twice: name each member once")
    first = members[0]
    for m in members[1:]:
        if m.task.target_signature() != first.task.target_signature():
            mine, theirs = m.task.target_signature(), first.task.target_signature()
            raise UserError(
                f"run {m.name} predicts other targets than {first.name} "
                f"({' '.join(map(str, mine))} against {' '.join(map(str, theirs))})"
                ": blend runs of the same competition task"
            )
        if m.scores.get("metric") != first.scores.get("metric"):
            raise UserError(
                f"run {m.name} is scored with {m.scores.get('metric')}, {first.name} with "
                f"{first.scores.get('metric')}: blend runs of the same metric"
            )
        if not m.oof["id"].equals(first.oof["id"]):
            raise UserError(
                f"runs {first.name} and {m.name} hold different training ids in oof.csv: blend "
                "runs trained on the same data"
            )
        moved = int((m.oof["fold"].to_numpy() != first.oof["fold"].to_numpy()).sum())
        if moved:
            raise UserError(
                f"runs {first.name} and {m.name} put {moved} ids in different folds: the blend's "
                "CV would score rows some member trained on; train them with the same cv settings"
            )
    return members


def _fold_scores(task: Task, y: np.ndarray, pred: np.ndarray, folds: np.ndarray) -> list[float]:
    return [float(task.score(y[folds == k], pred[folds == k])) for k in np.unique(folds)]


def honest_folds(
    task: Task, y: np.ndarray, preds: list[np.ndarray], folds: np.ndarray, method: str
) -> tuple[list[float], list[list[float]]]:
    """Per-fold scores of the blend with weights fitted without that fold (nested CV)."""
    scores, weights = [], []
    for k in np.unique(folds):
        held, rest = folds == k, folds != k
        w = (
            task.fit_blend_weights(y[rest], [p[rest] for p in preds])
            if method == "fit"
            else np.full(len(preds), 1.0 / len(preds))
        )
        scores.append(float(task.score(y[held], task.combine([p[held] for p in preds], w))))
        weights.append([float(x) for x in w])
    return scores, weights


def make_ensemble(
    paths: list[Path], *, name: str | None = None, method: str = "fit"
) -> EnsembleResult:
    """Blend the runs at `paths` into a new ensemble run directory; see the module's doc."""
    from medalist.noise import judge, paired_test

    if method not in METHODS:
        raise UserError(f"--method {method!r}: use fit (weights from OOF) or mean (equal)")
    members = open_members(paths)
    first = members[0]
    task, cfg = first.task, first.cfg
    loaded = [m.predictions() for m in members]
    y, preds = loaded[0][0], [p for _, p in loaded]
    folds = first.oof["fold"].to_numpy()
    hib = bool(first.scores.get("higher_is_better", task.metric.higher_is_better))
    sign = 1.0 if hib else -1.0

    member_folds = {
        m.name: _fold_scores(task, y, p, folds) for m, p in zip(members, preds, strict=True)
    }
    equal = np.full(len(members), 1.0 / len(members))
    weights = task.fit_blend_weights(y, preds) if method == "fit" else equal
    blended = task.combine(preds, weights)
    honest, fold_weights = honest_folds(task, y, preds, folds, method)
    best = max(members, key=lambda m: sign * float(np.mean(member_folds[m.name])))
    diffs = sign * (np.array(honest) - np.array(member_folds[best.name]))
    mean_diff, _, p_value = paired_test(diffs)
    seed_stds = [float(m.scores["seed_std"]) for m in members if m.scores.get("seed_std")]
    verdict, reasons = judge(mean_diff, p_value, max(seed_stds) if seed_stds else None)

    notes = []
    best_mean, best_std = (
        float(np.mean(member_folds[best.name])),
        float(np.std(member_folds[best.name])),
    )
    for m, w in zip(members, weights, strict=True):
        gap = sign * (best_mean - float(np.mean(member_folds[m.name])))
        if m is not best and gap > WEAK_FACTOR * max(best_std, 1e-12):
            notes.append(
                f"{m.name} is {gap:.4g} below the best run ({best.name}), more than "
                f"{WEAK_FACTOR:g} x its fold std: improve the single "
                "models first, a weak member rarely helps the blend"
            )
        if method == "fit" and w < 0.01:
            notes.append(f"{m.name} gets weight {w:.3f}: it adds nothing to this blend")

    run = create_run_dir(cfg, name or f"ensemble-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    names = [m.name for m in members]
    spec = {
        "members": names,
        "weights": {n: float(w) for n, w in zip(names, weights, strict=True)},
        "method": method,
        "objective": "none (equal weights)" if method == "mean" else task.blend_objective,
        "fold_weights": fold_weights,
    }
    write_json(run.file(layout.ENSEMBLE), spec)
    write_text(run.file(layout.CONFIG), first.run.file(layout.CONFIG).read_text())
    if first.run.file(layout.FOLDS).is_file():
        write_csv(run.file(layout.FOLDS), read_ids_csv(first.run.file(layout.FOLDS)))
    final_task = type(task).from_state(cfg, task.state())
    postprocess = final_task.fit_postprocess(y, blended, folds)
    oof = final_task.blend_oof(first.oof, y, blended)  # at the thresholds fitted on the blend
    write_json(run.file(layout.TASK), final_task.state())
    in_sample = float(task.score(y, blended))
    equal_folds = _fold_scores(task, y, task.combine(preds, equal), folds)
    scores = {
        "metric": task.metric.name,
        "higher_is_better": hib,
        "folds": honest,
        "mean": float(np.mean(honest)),
        "std": float(np.std(honest)),
        "oof": in_sample,
        "in_sample_note": "oof: weights fitted and scored on the same rows (optimistic)",
        "equal_weights": {"folds": equal_folds, "mean": float(np.mean(equal_folds))},
        "members": {n: {"folds": f, "mean": float(np.mean(f))} for n, f in member_folds.items()},
        "against_best": {
            "run": best.name,
            "mean_diff": mean_diff,
            "p_value": p_value,
            "verdict": verdict,
        },
    }
    scores.update(postprocess)
    write_csv(run.file(layout.OOF), oof)
    write_json(run.file(layout.SCORES), scores)
    write_json(run.file(layout.PROVENANCE), _provenance(members, cfg.root))
    return EnsembleResult(
        run=run,
        method=method,
        metric=task.metric.name,
        higher_is_better=hib,
        members=names,
        weights=spec["weights"],
        member_folds=member_folds,
        folds=honest,
        fold_weights=fold_weights,
        equal_folds=equal_folds,
        in_sample=in_sample,
        best_member=best.name,
        mean_diff=mean_diff,
        p_value=p_value,
        verdict=verdict,
        reasons=reasons,
        notes=notes,
    )


def _provenance(members: list[Member], root: Path) -> dict[str, Any]:
    """The ensemble's code state now, and each member's provenance (for reproducibility)."""
    from medalist.runs.provenance import git_state

    member_prov = {m.name: m.run.provenance() for m in members}
    return {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(root),
        "seeds": {n: p.get("seeds") for n, p in member_prov.items()},
        "members": {n: {"git": p.get("git")} for n, p in member_prov.items()},
    }
