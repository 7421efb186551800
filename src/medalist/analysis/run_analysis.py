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

from medalist.analysis import diagnosis as dg
from medalist.analysis import error_analysis as ea
from medalist.analysis import plots
from medalist.errors import UserError
from medalist.io import write_csv, write_json
from medalist.runs.rundir import RunDir, open_run_dir

N_WORST = 16
THUMBNAIL = 128


def read_histories(run: RunDir, n_splits: int) -> dict[int, pd.DataFrame]:
    """fold -> epoch history, for every fold that has trained at least one epoch."""
    out = {}
    for k in range(n_splits):
        f = run.file(f"fold_{k}/history.csv")
        if f.is_file():
            h = pd.read_csv(f)
            if len(h):
                out[k] = h.sort_values("epoch").reset_index(drop=True)
    return out


def _metric(run: RunDir, cfg: Any) -> tuple[str, bool]:
    scores = run.scores()
    if scores:
        return scores["metric"], bool(scores["higher_is_better"])
    from medalist.engine.metrics import get_metric

    m = get_metric(cfg.competition.metric, cfg.competition.metric_direction)
    return m.name, m.higher_is_better


def diagnose_folds(
    run: RunDir, cfg: Any, histories: dict[int, pd.DataFrame], metric: str, higher: bool, kind: str
) -> list[dict[str, Any]]:
    """The verdict, evidence, next steps, epoch time and peak memory of each fold with history."""
    classes = run.task_state().get("classes", [])
    chance = dg.chance_loss(kind, len(classes), cfg.train.loss, cfg.train.focal_gamma)
    folds = []
    for k, h in histories.items():
        d = dg.diagnose_history(h, metric, higher, chance)
        done = run.file(f"fold_{k}/result.json").is_file()
        best = d["evidence"]["best_val_loss_epoch"]
        folds.append(
            {
                "fold": k,
                "finished": done,
                **d,
                **dg.resources(h),
                "next_steps": dg.next_steps(d["verdict"], cfg, best, kind),
            }
        )
    return folds


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


def _thumbnail(path: Path | None, channels: int) -> np.ndarray | None:
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            arr = np.asarray(img)
    except OSError:
        return None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _mask_errors(
    run: RunDir, cfg: Any, oof: pd.DataFrame, folds: list[int], lookup: dict, plot: Any, table: Any
) -> None:
    """Segmentation: the lowest-scoring images, drawn with the true mask in green and the
    prediction in red (overlap yellow)."""
    from medalist.data.images import load_resized
    from medalist.tasks.segment import OOF_MASKS

    metric = oof.columns[-1]
    worst = oof.sort_values([metric, "id"], kind="stable").head(N_WORST)
    table("worst_predictions.csv", worst.reset_index(drop=True))
    size = cfg.data.image_size
    state = run.task_state()
    threshold = 0.5  # the threshold the per-image scores were computed at
    masks, rows = {}, {}
    for k in folds:
        folder = run.file(f"fold_{k}")
        if (folder / OOF_MASKS).is_file():
            masks[k] = np.load(folder / OOF_MASKS, mmap_mode="r")
            ids = pd.read_csv(folder / "oof.csv")["id"].astype(str)
            rows.update({(k, i): r for r, i in enumerate(ids)})
    train_masks = _train_masks(cfg, state, set(worst["id"].astype(str)))
    images, titles = [], []
    for i, fold, score in zip(worst["id"].astype(str), worst["fold"], worst[metric], strict=True):
        path = lookup.get(i)
        if path is None or (fold, i) not in rows:
            images.append(None)
        else:
            grey = load_resized(path, size, 3).astype(np.float32).mean(axis=2) * 0.6
            rgb = np.repeat(grey[:, :, None], 3, axis=2)
            truth = train_masks.get(i, np.zeros((size, size), np.uint8)) > 0
            pred = np.asarray(masks[fold][rows[(fold, i)]]) >= threshold
            if pred.ndim == 3:  # several classes: drawn together
                truth, pred = truth.any(axis=0), pred.any(axis=0)
            color = np.zeros_like(rgb)
            color[truth, 1], color[pred, 0] = 255, 255
            drawn = truth | pred
            rgb[drawn] = 0.4 * rgb[drawn] + 0.6 * color[drawn]
            images.append(rgb.clip(0, 255).astype(np.uint8))
        titles.append(f"{i}\n{metric} {score:.2f}")
    plot(
        "worst_predictions.png",
        plots.plot_image_grid,
        images,
        titles,
        suptitle=f"lowest {metric} out of fold (truth green, prediction red, both yellow; "
        f"threshold {threshold:g})",
    )


def _train_masks(cfg: Any, state: dict[str, Any], ids: set[str]) -> dict[str, np.ndarray]:
    """The true masks of the training images `ids` (only those are decoded)."""
    from medalist.data.tables import load_train
    from medalist.tasks.segment import SegmentTask

    train = load_train(cfg)
    train = train[train[cfg.competition.id_column].astype(str).isin(ids)]
    masks = SegmentTask.from_state(cfg, state).encode(train)
    return dict(zip(train[cfg.competition.id_column].astype(str), masks, strict=True))


def error_analysis(
    run: RunDir,
    cfg: Any,
    kind: str,
    classes: list[Any],
    folds: list[int],
    thresholds: list[float] | None = None,
) -> dict[str, Any]:
    """Plots and tables of what the model gets wrong, and the suggestions they lead to."""
    out: dict[str, Any] = {"plots": [], "tables": [], "skipped": {}, "suggestions": []}
    oof = ea.load_oof(run.path, folds)
    lookup = _image_lookup(cfg)
    if lookup is not None:
        out["suggestions"] += ea.image_size_suggestion(list(lookup.values()), cfg.data.image_size)
    if oof is None or oof.empty:
        out["skipped"]["error analysis"] = "no finished fold has out-of-fold predictions yet"
        return out

    def plot(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        fn(*args, path=run.file(f"plots/{name}"), **kwargs)
        out["plots"].append(f"plots/{name}")

    def table(name: str, df: pd.DataFrame) -> None:
        write_csv(run.file(f"analysis/{name}"), df)
        out["tables"].append(f"analysis/{name}")

    if kind == "mask":
        _mask_errors(run, cfg, oof, folds, lookup or {}, plot, table)
        out["skipped"]["per-class, precision-recall and confusion plots"] = "masks: no classes"
        return out
    y, p = ea.oof_arrays(oof, kind, classes)

    if kind in ("multiclass", "multilabel"):
        onehot = np.eye(len(classes), dtype=int)[y] if kind == "multiclass" else y.astype(int)
        per_class = ea.per_class_table(y, p, kind, classes, thresholds)
        table("per_class.csv", per_class)
        plot("per_class.png", plots.plot_per_class, per_class)
        plot("pr_curves.png", plots.plot_pr_curves, onehot, p, classes)
        out["suggestions"] = (
            ea.rare_class_suggestions(per_class, kind, cfg.train.loss) + out["suggestions"]
        )
    else:
        out["skipped"]["per-class and precision-recall plots"] = f"{kind}: there are no classes"
    if kind == "multiclass":
        plot("confusion_matrix.png", plots.plot_confusion_matrix, y, p.argmax(axis=1), classes)
        table("confused_pairs.csv", ea.confused_pairs(y, p, classes))
    else:
        out["skipped"]["confusion matrix and confused pairs"] = (
            f"{kind}: {'labels are not exclusive' if kind == 'multilabel' else 'no classes'}"
        )
    worst = ea.worst_predictions(oof, kind, classes, N_WORST, thresholds)
    table("worst_predictions.csv", worst)
    images = [
        _thumbnail((lookup or {}).get(str(i)), cfg.model.in_chans) for i in worst["id"].astype(str)
    ]
    conf = [f" ({c:.2f})" if c == c else "" for c in worst["confidence"]]
    titles = [
        f"{i}\ntrue {t}\npred {pr}{c}"
        for i, t, pr, c in zip(worst["id"], worst["true"], worst["predicted"], conf, strict=True)
    ]
    wrong = worst["true"] != worst["predicted"]
    plot(
        "worst_predictions.png",
        plots.plot_image_grid,
        images,
        titles,
        suptitle=f"highest-loss out-of-fold predictions ({len(oof)} rows, folds {folds})",
        colors=["tab:red" if w else "black" for w in wrong],
    )
    return out


def analyse_run(run_dir: Path) -> dict[str, Any]:
    """Write diagnosis.json, plots/ and analysis/ for a (finished or partial) run; return the
    diagnosis."""
    run = open_run_dir(run_dir)
    cfg = run.config()
    if not run.file("task.json").is_file():
        raise UserError(f"{run.path}: no task.json; the run never started training")
    state = run.task_state()
    kind, classes = state["kind"], list(state.get("classes", []))
    metric, higher = _metric(run, cfg)
    n_splits = cfg.cv.n_splits
    blend = run.ensemble()
    if blend is not None:
        return _analyse_ensemble(run, cfg, state, blend, metric, higher)
    histories = read_histories(run, n_splits)
    if not histories:
        raise UserError(
            f"{run.path}: no fold has finished an epoch yet (no fold_*/history.csv); "
            "train first, or wait for the first epoch"
        )
    folds = diagnose_folds(run, cfg, histories, metric, higher, kind)
    verdict = dg.run_verdict([f["verdict"] for f in folds])
    plots.plot_learning_curves(histories, metric, run.file("plots/learning_curves.png"), higher)
    finished = [f["fold"] for f in folds if f["finished"]]
    errors = error_analysis(run, cfg, kind, classes, finished, state.get("thresholds"))
    best_epochs = [f["evidence"]["best_val_loss_epoch"] for f in folds if f["verdict"] == verdict]
    best = int(np.median(best_epochs)) if best_epochs and None not in best_epochs else None
    epoch_s = [f["mean_epoch_s"] for f in folds if f["mean_epoch_s"] is not None]
    peak_mb = [f["peak_mem_mb"] for f in folds if f["peak_mem_mb"] is not None]
    gpus = run.provenance().get("device", {}).get("gpus")
    on_gpu = bool(gpus) and cfg.train.accelerator in ("auto", "gpu", "cuda")
    diagnosis = {
        **_header(run, kind, metric, higher, n_splits),
        "folds_analysed": sorted(histories),
        "folds_finished": finished,
        "folds_missing": [k for k in range(n_splits) if k not in histories],
        "complete": len(finished) == n_splits,
        "verdict": verdict,
        "summary": _summary(verdict, folds),
        "next_steps": dg.next_steps(verdict, cfg, best, kind),
        "suggestions": errors["suggestions"],
        "folds": folds,
        "resources": {
            "mean_epoch_s": round(float(np.mean(epoch_s)), 3) if epoch_s else None,
            "peak_mem_mb": round(float(max(peak_mb)), 1) if peak_mb else None,
            "memory_kind": "GPU memory allocated" if on_gpu else "process RSS on the CPU",
        },
        "plots": ["plots/learning_curves.png", *errors["plots"]],
        "tables": errors["tables"],
        "skipped": errors["skipped"],
        "thresholds": {**dg.THRESHOLDS, **ea.THRESHOLDS},
    }
    write_json(run.file("diagnosis.json"), diagnosis)
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
    state: dict[str, Any],
    blend: dict[str, Any],
    metric: str,
    higher: bool,
) -> dict[str, Any]:
    """An ensemble has no epochs to diagnose: its blend, its honest CV against the best
    member, and the error analysis of its out-of-fold rows."""
    kind, classes, n_splits = state["kind"], list(state.get("classes", [])), cfg.cv.n_splits
    errors = error_analysis(run, cfg, kind, classes, list(range(n_splits)), state.get("thresholds"))
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
        **_header(run, kind, metric, higher, n_splits),
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
    write_json(run.file("diagnosis.json"), diagnosis)
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
