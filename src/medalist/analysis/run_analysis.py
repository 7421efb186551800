"""Analyse a run directory: verdicts from the learning curves, plots, error analysis, and the
suggestions they lead to, written as `diagnosis.json`, `plots/` and `analysis/` in the run.

Works on whatever the run holds: folds still running or never started are left out (and listed),
and the plots that don't apply to a task (a confusion matrix for regression) are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist import plots
from medalist.advice import step
from medalist.analysis import diagnosis as dg
from medalist.errors import UserError
from medalist.io import read_ids_csv, write_csv, write_json
from medalist.runs import layout
from medalist.runs.rundir import RunDir, open_run_dir
from medalist.tasks import Task, load_run_task
from medalist.tasks.base import AnalysisPage

DOWNSCALE_FACTOR = 2.0


def read_histories(run: RunDir, n_splits: int) -> dict[int, pd.DataFrame]:
    """fold -> epoch history, for every fold that has trained at least one epoch."""
    out = {}
    for k in range(n_splits):
        f = run.fold_dir(k) / layout.HISTORY
        if f.is_file():
            h = pd.read_csv(f)
            if len(h):
                out[k] = h.sort_values("epoch").reset_index(drop=True)
    return out


def _metric(run: RunDir, cfg: Any) -> tuple[str, bool]:
    scores = run.scores()
    if scores:
        return scores["metric"], bool(scores["higher_is_better"])
    from medalist.tasks.metrics import get_metric

    m = get_metric(cfg.competition.metric, cfg.competition.metric_direction)
    return m.name, m.higher_is_better


def diagnose_folds(
    run: RunDir, cfg: Any, histories: dict[int, pd.DataFrame], metric: str, higher: bool, task: Task
) -> list[dict[str, Any]]:
    """The verdict, evidence, next steps, epoch time and peak memory of each fold with history."""
    chance = task.chance_loss(cfg)
    folds = []
    for k, h in histories.items():
        d = dg.diagnose_history(h, metric, higher, chance)
        best = d["evidence"]["best_val_loss_epoch"]
        folds.append(
            {
                "fold": k,
                "finished": run.fold_done(k),
                **d,
                **dg.resources(h),
                "next_steps": _next_steps(d["verdict"], cfg, best, task),
            }
        )
    return folds


def _next_steps(verdict: str | None, cfg: Any, best: int | None, task: Task) -> list[dict]:
    return dg.next_steps(verdict, cfg, best, task.next_step_overrides(verdict or ""))


def _summary(verdict: str, folds: list[dict[str, Any]]) -> str:
    same = [f for f in folds if f["verdict"] == verdict]
    lead = same[0] if same else folds[0]
    return f"{verdict} in {len(same)} of {len(folds)} folds; fold {lead['fold']}: {lead['reason']}"


def _image_lookup(cfg: Any) -> dict[str, Path] | None:
    from medalist.data.tables import image_paths, load_train

    try:
        train = load_train(cfg)
    except UserError:
        return None
    paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
    return dict(zip(train[cfg.competition.id_column].astype(str), paths, strict=True))


def error_analysis(run: RunDir, cfg: Any, task: Task, folds: list[int]) -> dict[str, Any]:
    """Plots and tables of what the model gets wrong (the task's error-analysis page), and the
    suggestions they lead to."""
    out: dict[str, Any] = {"plots": [], "tables": [], "skipped": {}, "suggestions": []}
    oof = load_oof(run, folds)
    lookup = _image_lookup(cfg)
    if lookup is not None:
        out["suggestions"] += image_size_suggestion(
            list(lookup.values()), min(cfg.data.height_width)
        )
    if oof is None or oof.empty:
        out["skipped"]["error analysis"] = "no finished fold has out-of-fold predictions yet"
        return out

    def plot(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        fn(*args, path=run.plot(name), **kwargs)
        out["plots"].append(f"{layout.PLOTS}/{name}")

    def table(name: str, df: pd.DataFrame) -> None:
        write_csv(run.analysis(name), df)
        out["tables"].append(f"{layout.ANALYSIS}/{name}")

    page = AnalysisPage(
        run.path, cfg, oof, folds, lookup or {}, plot, table, out["skipped"], out["suggestions"]
    )
    task.error_analysis(page)
    return out


def load_oof(run: RunDir, folds: list[int]) -> pd.DataFrame | None:
    """The out-of-fold predictions of the finished folds (oof.csv once the run is complete)."""
    merged = run.file(layout.OOF)
    if merged.is_file():
        return read_ids_csv(merged)
    parts = [run.fold_dir(k) / layout.FOLD_OOF for k in folds]
    parts = [p for p in parts if p.is_file()]
    return pd.concat([read_ids_csv(p) for p in parts], ignore_index=True) if parts else None


def image_size_suggestion(
    paths: list[Path], image_size: int, sample: int = 20
) -> list[dict[str, Any]]:
    """A larger input when the images are much larger than what the model sees."""
    from PIL import Image

    sizes = []
    for p in paths[:sample]:
        try:
            with Image.open(p) as img:
                sizes.append(min(img.size))
        except OSError:
            continue
    if not sizes:
        return []
    typical = int(np.median(sizes))
    if typical < DOWNSCALE_FACTOR * image_size:
        return []
    bigger = min(typical, image_size * 2)
    s = step(
        "a larger input size keeps small objects and fine detail",
        f"data.image_size={bigger}",
    )
    s["reason"] = (
        f"the images are about {typical}px on their short side and the model sees "
        f"{image_size}px: detail {typical / image_size:.1f}x finer than that is lost"
    )
    return [s]


def analyse_run(run_dir: Path) -> dict[str, Any]:
    """Write diagnosis.json, plots/ and analysis/ for a (finished or partial) run; return the
    diagnosis."""
    run = open_run_dir(run_dir)
    cfg = run.config()
    if not run.has_task():
        raise UserError(f"{run.path}: no {layout.TASK}; the run never started training")
    state = run.task_state()
    task = load_run_task(run, cfg)
    metric, higher = _metric(run, cfg)
    n_splits = cfg.cv.n_splits
    blend = run.ensemble()
    if blend is not None:
        return _analyse_ensemble(run, cfg, task, blend, metric, higher)
    histories = read_histories(run, n_splits)
    if not histories:
        raise UserError(
            f"{run.path}: no fold has finished an epoch yet (no fold_*/history.csv); "
            "train first, or wait for the first epoch"
        )
    folds = diagnose_folds(run, cfg, histories, metric, higher, task)
    verdict = dg.run_verdict([f["verdict"] for f in folds])
    plots.plot_learning_curves(histories, metric, run.plot("learning_curves.png"), higher)
    finished = [f["fold"] for f in folds if f["finished"]]
    errors = error_analysis(run, cfg, task, finished)
    best_epochs = [f["evidence"]["best_val_loss_epoch"] for f in folds if f["verdict"] == verdict]
    best = int(np.median(best_epochs)) if best_epochs and None not in best_epochs else None
    epoch_s = [f["mean_epoch_s"] for f in folds if f["mean_epoch_s"] is not None]
    peak_mb = [f["peak_mem_mb"] for f in folds if f["peak_mem_mb"] is not None]
    gpus = run.provenance().get("device", {}).get("gpus")
    on_gpu = bool(gpus) and cfg.train.accelerator in ("auto", "gpu", "cuda")
    diagnosis = {
        **_header(run, state["kind"], metric, higher, n_splits),
        "folds_analysed": sorted(histories),
        "folds_finished": finished,
        "folds_missing": [k for k in range(n_splits) if k not in histories],
        "complete": len(finished) == n_splits,
        "verdict": verdict,
        "summary": _summary(verdict, folds),
        "next_steps": _next_steps(verdict, cfg, best, task),
        "suggestions": errors["suggestions"],
        "folds": folds,
        "resources": {
            "mean_epoch_s": round(float(np.mean(epoch_s)), 3) if epoch_s else None,
            "peak_mem_mb": round(float(max(peak_mb)), 1) if peak_mb else None,
            "memory_kind": "GPU memory allocated" if on_gpu else "process RSS on the CPU",
        },
        "plots": [f"{layout.PLOTS}/learning_curves.png", *errors["plots"]],
        "tables": errors["tables"],
        "skipped": errors["skipped"],
        "thresholds": {
            **dg.THRESHOLDS,
            **task.analysis_thresholds,
            "downscale_factor": DOWNSCALE_FACTOR,
        },
    }
    write_json(run.file(layout.DIAGNOSIS), diagnosis)
    return diagnosis


def _header(run: RunDir, kind: str, metric: str, higher: bool, n_splits: int) -> dict[str, Any]:
    """The keys every diagnosis.json starts with."""
    return {
        "run": run.name,
        "kind": kind,
        "metric": metric,
        "higher_is_better": higher,
        "n_splits": n_splits,
    }


def _analyse_ensemble(
    run: RunDir,
    cfg: Any,
    task: Task,
    blend: dict[str, Any],
    metric: str,
    higher: bool,
) -> dict[str, Any]:
    """An ensemble has no epochs to diagnose: its blend, its honest CV against the best
    member, and the error analysis of its out-of-fold rows."""
    n_splits = cfg.cv.n_splits
    errors = error_analysis(run, cfg, task, list(range(n_splits)))
    scores = run.scores() or {}
    best = scores.get("against_best") or {}
    weights = blend.get("weights") or {}
    parts = " + ".join(f"{m} ({float(weights.get(m, 0)):.2f})" for m in blend.get("members", []))
    summary = (
        f"blend of {parts}, weights by {blend.get('method')}; honest CV "
        f"{scores.get('mean', float('nan')):.4f} +- {scores.get('std', float('nan')):.4f}; "
        f"against the best member {best.get('run')}: {best.get('verdict')} "
        f"(mean difference per fold {best.get('mean_diff', float('nan')):+.4f})"
    )
    if best.get("verdict") == "better":
        steps = [{"step": "ship the blend", "command": f"medalist package {run.path} --check"}]
    else:
        steps = [
            {
                "step": f"the blend does not beat {best.get('run')} beyond noise: submit that run, "
                "or blend runs that differ more (other backbones, image sizes, data)",
                "command": None,
            }
        ]
    diagnosis = {
        **_header(run, task.kind, metric, higher, n_splits),
        "folds_analysed": [],
        "folds_finished": list(range(n_splits)),
        "folds_missing": [],
        "complete": True,
        "verdict": "ensemble",
        "summary": summary,
        "next_steps": steps,
        "suggestions": errors["suggestions"],
        "folds": [],
        "resources": {"mean_epoch_s": None, "peak_mem_mb": None, "memory_kind": ""},
        "plots": errors["plots"],
        "tables": errors["tables"],
        "skipped": {**errors["skipped"], "learning curves": "an ensemble trains no epochs"},
        "thresholds": {},
    }
    write_json(run.file(layout.DIAGNOSIS), diagnosis)
    return diagnosis


def render_verdict(diagnosis: dict[str, Any], max_steps: int = 3) -> str:
    """A few plain-text lines: the run's verdict, its reason, what to try next, time and memory."""
    d = diagnosis
    folds = ", ".join(
        f"{f['fold']}: {f['verdict']}" + ("" if f["finished"] else " (unfinished)")
        for f in d["folds"]
    )
    lines = [f"verdict: {d['verdict']} (folds {folds})", f"  {d['summary']}"]
    if not d["complete"]:
        lines.append(f"  partial run: {len(d['folds_finished'])} of {d['n_splits']} folds finished")
    for s in d["next_steps"][:max_steps]:
        lines.append(f"  next: {s['step']}" + (f"  ->  {s['command']}" if s["command"] else ""))
    for s in d["suggestions"][:max_steps]:
        lines.append(f"  errors: {s['step']}" + (f"  ->  {s['command']}" if s["command"] else ""))
    r = d["resources"]
    if r["mean_epoch_s"] is not None:
        mem = (
            f", peak memory {r['peak_mem_mb']:.0f} MB ({r['memory_kind']})"
            if r["peak_mem_mb"]
            else ""
        )
        lines.append(f"  {r['mean_epoch_s']:.2f} s per epoch{mem}")
    lines.append("  details: diagnosis.json, plots/ and analysis/ in the run directory")
    return "\n".join(lines)
