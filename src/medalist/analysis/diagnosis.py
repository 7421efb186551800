"""Read learning curves: a verdict per fold and for the run, with its evidence and next steps.

A fold's history (one row per epoch: train_loss, val_loss, the competition metric) gets one
verdict, checked in this order; the first rule that holds wins:

1. `unstable`: a train or validation loss is NaN or infinite; or the train loss of some epoch
   is more than SPIKE_FACTOR (2x) the lowest train loss before it (and higher by more than
   SPIKE_MIN_RISE = 10% of the first epoch's train loss, so noise near zero is not a spike); or
   the last train loss is more than DIVERGE_FACTOR (1.5x) its minimum (same floor); or the
   validation loss jumps to more than VAL_SPIKE_FACTOR (3x) its earlier minimum and halves
   again the next epoch (a spike, not a trend).
2. `underfits` (2 epochs or more): the train loss never fell more than UNDERFIT_DROP (10%)
   below the first epoch's, or it never got below UNDERFIT_CHANCE (90%) of the loss of a
   constant guess (ln K for K-class cross-entropy, 1 for the standardised MSE of regression)
   when that is known.
3. `overfits`: the validation loss ends more than OVERFIT_RISE (10%) above its minimum, reached
   at an earlier epoch (the "best epoch"), while the train loss kept falling after it; or, with
   4 epochs or more, a widening gap: over the second half of the epochs the train loss fell by
   more than GAP_TRAIN_DROP (30%) while the validation loss fell by less than GAP_VAL_DROP (2%).
4. `too_short`: a single epoch; or the last epoch improved the best validation loss so far, or
   the best metric so far, by more than TOO_SHORT_GAIN (2%, relative).
5. `fits`: none of the above; train and validation loss both came down and settled.

The run's verdict: `unstable` when any fold is; otherwise the verdict most folds share, ties
going to the more serious one (underfits, overfits, too_short, fits). docs/diagnosis.md has the
same rules with the reasoning behind the next steps.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from medalist.advice import step

SPIKE_FACTOR = 2.0
SPIKE_MIN_RISE = 0.10
DIVERGE_FACTOR = 1.5
VAL_SPIKE_FACTOR = 3.0
UNDERFIT_DROP = 0.10
UNDERFIT_CHANCE = 0.90
OVERFIT_RISE = 0.10
GAP_TRAIN_DROP = 0.30
GAP_VAL_DROP = 0.02
TOO_SHORT_GAIN = 0.02

VERDICTS = ("unstable", "underfits", "overfits", "too_short", "fits")

THRESHOLDS = {
    "spike_factor": SPIKE_FACTOR,
    "spike_min_rise": SPIKE_MIN_RISE,
    "diverge_factor": DIVERGE_FACTOR,
    "val_spike_factor": VAL_SPIKE_FACTOR,
    "underfit_drop": UNDERFIT_DROP,
    "underfit_chance": UNDERFIT_CHANCE,
    "overfit_rise": OVERFIT_RISE,
    "gap_train_drop": GAP_TRAIN_DROP,
    "gap_val_drop": GAP_VAL_DROP,
    "too_short_gain": TOO_SHORT_GAIN,
}


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), digits)


def _best_metric_epoch(history: pd.DataFrame, metric: str | None, higher: bool) -> int | None:
    if not metric or metric not in history or not history[metric].notna().any():
        return None
    values = history[metric]
    row = values.idxmax() if higher else values.idxmin()
    return int(history.loc[row, "epoch"])


def _spike(values: np.ndarray, factor: float, floor: float) -> int | None:
    """Index of the first value above `factor` x the lowest earlier value (and by > floor)."""
    for i in range(1, len(values)):
        low = values[:i].min()
        if values[i] > factor * low and values[i] - low > floor:
            return i
    return None


def _unstable(train: np.ndarray, val: np.ndarray, epochs: np.ndarray) -> str | None:
    for name, v in (("train", train), ("validation", val)):
        bad = ~np.isfinite(v)
        if bad.any():
            return f"the {name} loss is {v[bad][0]} at epoch {int(epochs[bad][0])}"
    floor = SPIKE_MIN_RISE * train[0]
    i = _spike(train, SPIKE_FACTOR, floor)
    if i is not None:
        return (
            f"the train loss jumps to {train[i]:.4g} at epoch {int(epochs[i])}, more than "
            f"{SPIKE_FACTOR:g}x its earlier low of {train[:i].min():.4g}"
        )
    if train[-1] > DIVERGE_FACTOR * train.min() and train[-1] - train.min() > floor:
        return (
            f"the train loss climbs back to {train[-1]:.4g} at the end, "
            f"{train[-1] / train.min():.1f}x its low of {train.min():.4g}: diverging"
        )
    for i in range(1, len(val) - 1):
        low = val[:i].min()
        if val[i] > VAL_SPIKE_FACTOR * low and val[i + 1] < val[i] / 2:
            return (
                f"the validation loss spikes to {val[i]:.4g} at epoch {int(epochs[i])} "
                f"({val[i] / low:.1f}x its earlier low) and falls back the next epoch"
            )
    return None


def _underfits(train: np.ndarray, chance_loss: float | None) -> str | None:
    if len(train) < 2:
        return None  # one epoch shows no trend: that is too_short
    drop = (train[0] - train.min()) / train[0] if train[0] > 0 else 1.0
    if drop < UNDERFIT_DROP:
        return (
            f"the train loss fell only {drop:.0%} (from {train[0]:.4g} to at best "
            f"{train.min():.4g}); the model can't fit its own training data"
        )
    if chance_loss is not None and train.min() > UNDERFIT_CHANCE * chance_loss:
        return (
            f"the train loss never got below {train.min():.4g}, while a constant guess scores "
            f"{chance_loss:.4g}: the model learnt next to nothing"
        )
    return None


def _overfits(train: np.ndarray, val: np.ndarray, epochs: np.ndarray) -> str | None:
    b = int(np.argmin(val))
    rise = val[-1] / val[b] - 1 if val[b] > 0 else 0.0
    if b < len(val) - 1 and rise > OVERFIT_RISE and train[-1] < train[b]:
        return (
            f"the validation loss was lowest at epoch {int(epochs[b])} ({val[b]:.4g}) and ends "
            f"{rise:.0%} higher ({val[-1]:.4g}) while the train loss kept falling "
            f"({train[b]:.4g} -> {train[-1]:.4g})"
        )
    if len(train) >= 4:
        mid = len(train) // 2
        t_drop = (train[mid] - train[-1]) / train[mid] if train[mid] > 0 else 0.0
        v_drop = (val[mid] - val[-1]) / val[mid] if val[mid] > 0 else 0.0
        if t_drop > GAP_TRAIN_DROP and v_drop < GAP_VAL_DROP:
            return (
                f"a widening gap: since epoch {int(epochs[mid])} the train loss fell "
                f"{t_drop:.0%} but the validation loss only {max(v_drop, 0.0):.0%} "
                f"(val/train {val[-1] / max(train[-1], 1e-12):.1f}x at the end)"
            )
    return None


def _gain(last: float, best_before: float, higher: bool) -> float:
    scale = max(abs(best_before), 1e-8)
    return (last - best_before) / scale if higher else (best_before - last) / scale


def _too_short(
    val: np.ndarray, metric: np.ndarray | None, higher: bool, metric_name: str | None
) -> str | None:
    if len(val) < 2:
        return "only one epoch: a curve needs at least two to show a trend"
    gain = _gain(val[-1], val[:-1].min(), higher=False)
    if gain > TOO_SHORT_GAIN:
        return (
            f"the last epoch still lowered the validation loss by {gain:.1%} "
            f"({val[:-1].min():.4g} -> {val[-1]:.4g})"
        )
    if metric is not None and np.isfinite(metric).all():
        best = metric[:-1].max() if higher else metric[:-1].min()
        gain = _gain(metric[-1], best, higher)
        if gain > TOO_SHORT_GAIN:
            return (
                f"the last epoch still improved {metric_name} by {gain:.1%} "
                f"({best:.4g} -> {metric[-1]:.4g})"
            )
    return None


def diagnose_history(
    history: pd.DataFrame,
    metric: str | None = None,
    higher_is_better: bool = True,
    chance_loss: float | None = None,
) -> dict[str, Any]:
    """The verdict of one fold's epoch history, with the reason and the numbers behind it."""
    h = history.sort_values("epoch").reset_index(drop=True)
    epochs = h["epoch"].to_numpy()
    train = h["train_loss"].to_numpy(dtype=float)
    val = h["val_loss"].to_numpy(dtype=float)
    m = h[metric].to_numpy(dtype=float) if metric and metric in h else None
    verdict, reason = "unstable", _unstable(train, val, epochs)
    checks = (
        ("underfits", lambda: _underfits(train, chance_loss)),
        ("overfits", lambda: _overfits(train, val, epochs)),
        ("too_short", lambda: _too_short(val, m, higher_is_better, metric)),
    )
    for name, check in checks:
        if reason is not None:
            break
        verdict, reason = name, check()
    if reason is None:
        verdict, reason = "fits", "train and validation loss came down and settled"
    finite_val = np.where(np.isfinite(val), val, np.inf)
    best_val = int(np.argmin(finite_val)) if np.isfinite(finite_val).any() else None
    evidence = {
        "epochs": int(len(h)),
        "train_loss_first": _r(train[0]),
        "train_loss_min": _r(np.nanmin(train)) if np.isfinite(train).any() else None,
        "train_loss_last": _r(train[-1]),
        "val_loss_first": _r(val[0]),
        "val_loss_min": _r(finite_val[best_val]) if best_val is not None else None,
        "val_loss_last": _r(val[-1]),
        "best_val_loss_epoch": int(epochs[best_val]) if best_val is not None else None,
        "best_metric_epoch": _best_metric_epoch(h, metric, higher_is_better),
        "metric_last": _r(m[-1]) if m is not None else None,
        "chance_loss": _r(chance_loss),
    }
    if m is not None and evidence["best_metric_epoch"] is not None:
        evidence["metric_best"] = _r(float(m[epochs == evidence["best_metric_epoch"]][0]))
    return {"verdict": verdict, "reason": reason, "evidence": evidence}


def resources(history: pd.DataFrame) -> dict[str, float | None]:
    """Mean seconds per epoch and peak memory (MB) of one fold's history."""
    out: dict[str, float | None] = {"mean_epoch_s": None, "peak_mem_mb": None}
    if "time_s" in history and history["time_s"].notna().any():
        out["mean_epoch_s"] = _r(history["time_s"].mean(), 3)
    if "peak_mem_mb" in history and history["peak_mem_mb"].notna().any():
        out["peak_mem_mb"] = _r(history["peak_mem_mb"].max(), 1)
    return out


def run_verdict(fold_verdicts: list[str]) -> str | None:
    """`unstable` if any fold is; else the most common verdict, ties to the more serious one."""
    if not fold_verdicts:
        return None
    if "unstable" in fold_verdicts:
        return "unstable"
    counts = Counter(fold_verdicts)
    return max(counts, key=lambda v: (counts[v], -VERDICTS.index(v)))


def next_steps(
    verdict: str | None,
    cfg: Any,
    best_epoch: int | None = None,
    task_steps: list[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """The usual remedies for a verdict, with the one-override command to try each;
    `task_steps` are the task's own (advice, override) pairs for it (`next_step_overrides`)."""
    t, m = cfg.train, cfg.model
    if verdict == "overfits":
        steps = [
            step(
                f"stop earlier: validation was best at epoch {best_epoch} (best.ckpt already "
                "keeps that epoch's weights; fewer epochs also shortens the schedule)",
                f"train.epochs={best_epoch}" if best_epoch else None,
            ),
            step(
                "regularise: stronger weight decay",
                f"train.weight_decay={t.weight_decay * 5 or 0.05:g}",
            ),
            step("add dropout before the classifier", f"model.drop_rate={max(0.3, m.drop_rate):g}"),
            step("stochastic depth (drop path)", "model.drop_path_rate=0.1"),
            *(step(text, override) for text, override in task_steps),
            step(
                "more augmentation: add data.augment steps (Affine, RandomBrightnessContrast, "
                "CoarseDropout)"
            ),
            step(f"a smaller model than {m.backbone}: set model.backbone to a smaller timm model"),
        ]
    elif verdict == "underfits":
        steps = [
            step(
                "run the sanity check: a pipeline that can't overfit one batch has a bug; it also "
                "draws the inputs as the model sees them (checks/<time>/plots/input_batch.png)",
                command="medalist check CONFIG",
            ),
            step(
                "check preprocessing (images, normalisation data.mean/data.std, labels matching "
                "images) and post-processing (class order, prediction columns) for bugs"
            ),
            step(
                f"the learning rate may be too small: try 3x (now {t.lr:g})",
                f"train.lr={t.lr * 3:.3g}",
            ),
            step("or too large: try a third", f"train.lr={t.lr / 3:.3g}"),
            step("if the model itself is the problem, try another backbone rather than dig in"),
        ]
    elif verdict == "unstable":
        steps = [
            step(f"lower the learning rate (now {t.lr:g})", f"train.lr={t.lr / 3:.3g}"),
            step("clip gradients", "train.grad_clip=1.0"),
            step("a longer warm-up", f"train.warmup_epochs={max(1.0, t.warmup_epochs * 2):g}"),
            step(
                "check inputs and targets for NaN or extreme values; with 16-bit mixed precision "
                "try bf16 or 32-bit",
                "train.precision=32" if t.precision == "16-mixed" else None,
            ),
        ]
    elif verdict == "too_short":
        steps = [step("train longer: it was still improving", f"train.epochs={t.epochs * 2}")]
    elif verdict == "fits":
        steps = [
            step(
                "read the error analysis (plots/per_class.png, analysis/confused_pairs.csv, "
                "plots/worst_predictions.png) to see what it gets wrong"
            ),
            step(
                "then one change at a time: a larger input size",
                f"data.image_size={cfg.data.scaled_size(2)}",
            ),
            step("a larger backbone, then a hyperparameter search (medalist tune)"),
        ]
    else:
        steps = []
    return steps
