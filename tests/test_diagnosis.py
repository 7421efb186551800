"""Learning-curve verdicts on histories with known answers, and the analysis of run directories."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, make_project
from PIL import Image

from medalist.analysis import diagnosis as dg
from medalist.analysis import run_analysis
from medalist.analysis.run_analysis import analyse_run, render_verdict
from medalist.config import load_config
from medalist.errors import UserError
from medalist.tasks import classify_analysis as ea
from medalist.tasks.classify import chance_loss

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def history(train: list[float], val: list[float], metric: list[float] | None = None):
    n = len(train)
    return pd.DataFrame(
        {
            "epoch": np.arange(1, n + 1),
            "train_loss": train,
            "val_loss": val,
            "accuracy": metric if metric is not None else np.linspace(0.5, 0.6, n),
            "lr": 1e-3,
            "time_s": 2.0,
            "peak_mem_mb": np.linspace(100, 120, n),
        }
    )


def verdict(train, val, metric=None, chance=None) -> dict:
    return dg.diagnose_history(history(train, val, metric), "accuracy", True, chance)


# ---- verdicts on synthetic curves ------------------------------------------------------------


def test_nan_loss_is_unstable() -> None:
    d = verdict([1.0, 0.8, 0.6, 0.5], [1.0, 0.9, float("nan"), 0.7])
    assert d["verdict"] == "unstable"
    assert "nan" in d["reason"] and "epoch 3" in d["reason"]


def test_train_loss_spike_is_unstable_and_names_the_epoch() -> None:
    d = verdict([1.0, 0.5, 0.3, 1.4, 0.3, 0.25], [1.0, 0.7, 0.5, 1.2, 0.5, 0.45])
    assert d["verdict"] == "unstable"
    assert "epoch 4" in d["reason"]


def test_train_loss_climbing_back_is_unstable() -> None:
    d = verdict([1.0, 0.6, 0.5, 0.62, 0.7, 0.8], [1.0, 0.7, 0.6, 0.65, 0.7, 0.8])
    assert d["verdict"] == "unstable"
    assert "diverging" in d["reason"]


def test_validation_loss_spike_that_recovers_is_unstable() -> None:
    d = verdict([1.0, 0.7, 0.5, 0.4, 0.35], [1.0, 0.6, 2.5, 0.55, 0.5])
    assert d["verdict"] == "unstable"
    assert "validation loss spikes" in d["reason"]


def test_train_loss_that_barely_falls_underfits() -> None:
    d = verdict([1.10, 1.09, 1.08, 1.07, 1.06], [1.1, 1.1, 1.09, 1.09, 1.09])
    assert d["verdict"] == "underfits"
    assert d["evidence"]["train_loss_first"] == pytest.approx(1.10)


def test_train_loss_stuck_near_a_constant_guess_underfits() -> None:
    train, val = [2.0, 1.6, 1.3, 1.1, 1.05], [2.0, 1.7, 1.4, 1.2, 1.15]
    chance = math.log(3)
    assert verdict(train, val, chance=chance)["verdict"] == "underfits"
    assert verdict(train, val, chance=None)["verdict"] != "underfits"


def test_validation_loss_turning_up_while_train_falls_overfits_and_names_best_epoch() -> None:
    train = [1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08]
    val = [1.0, 0.8, 0.65, 0.6, 0.62, 0.7, 0.8, 0.9]
    d = verdict(train, val)
    assert d["verdict"] == "overfits"
    assert d["evidence"]["best_val_loss_epoch"] == 4
    assert "epoch 4" in d["reason"]


def test_widening_gap_overfits() -> None:
    d = verdict([1.0, 0.8, 0.6, 0.4, 0.25, 0.15], [1.0, 0.9, 0.85, 0.84, 0.84, 0.835])
    assert d["verdict"] == "overfits"
    assert "widening gap" in d["reason"]


def test_still_improving_last_epoch_is_too_short() -> None:
    d = verdict([1.0, 0.7, 0.5, 0.4, 0.3], [1.0, 0.8, 0.7, 0.6, 0.5])
    assert d["verdict"] == "too_short"
    assert "last epoch" in d["reason"]


def test_metric_still_improving_at_the_last_epoch_is_too_short() -> None:
    train, val = [1.0, 0.6, 0.45, 0.4, 0.38], [1.0, 0.7, 0.6, 0.58, 0.579]
    d = verdict(train, val, metric=[0.5, 0.7, 0.8, 0.82, 0.88])
    assert d["verdict"] == "too_short"
    assert "accuracy" in d["reason"]


def test_one_epoch_is_too_short_even_near_chance() -> None:
    assert verdict([1.0], [1.1])["verdict"] == "too_short"
    assert verdict([1.09], [1.1], chance=math.log(3))["verdict"] == "too_short"


def test_curves_that_came_down_and_settled_fit() -> None:
    train = [1.0, 0.6, 0.4, 0.35, 0.33, 0.32]
    val = [1.0, 0.7, 0.55, 0.52, 0.515, 0.514]
    d = verdict(train, val, metric=[0.5, 0.7, 0.8, 0.82, 0.825, 0.826])
    assert d["verdict"] == "fits"
    assert d["evidence"]["best_val_loss_epoch"] == 6


def test_run_verdict_is_unstable_if_any_fold_is_else_the_majority() -> None:
    assert dg.run_verdict(["fits", "fits", "unstable"]) == "unstable"
    assert dg.run_verdict(["fits", "overfits", "overfits"]) == "overfits"
    assert dg.run_verdict(["fits", "overfits"]) == "overfits"  # a tie goes to the serious one
    assert dg.run_verdict([]) is None


def test_chance_loss_is_that_of_a_constant_guess() -> None:
    assert chance_loss("multiclass", 4, "auto", 2.0) == pytest.approx(math.log(4))
    assert chance_loss("multiclass", 4, "focal", 2.0) == pytest.approx(0.75**2 * math.log(4))
    assert chance_loss("regression", 0, "auto", 2.0) == 1.0
    assert chance_loss("multilabel", 3, "auto", 2.0) is None


def test_every_suggested_override_is_a_valid_config(tiny_project: Path) -> None:
    cfg = load_config(tiny_project)
    steps = [s for v in dg.VERDICTS for s in dg.next_steps(v, cfg, best_epoch=3)]
    table = pd.DataFrame({"class": ["a", "b", "c"], "count": [100, 90, 10], "f1": [0.9, 0.9, 0.2]})
    steps += ea.rare_class_suggestions(table, "multiclass", "auto")
    overrides = [s["override"] for s in steps if s["override"]]
    assert {"train.epochs=3", "train.loss=focal", "train.loss=weighted_ce"} <= set(overrides)
    for o in overrides:
        load_config(tiny_project, [o])  # raises UserError on a bad key or value


# ---- suggestions from the error analysis -----------------------------------------------------


def test_rare_classes_doing_worse_suggest_focal_loss_and_class_weights() -> None:
    table = pd.DataFrame(
        {"class": ["a", "b", "c", "d"], "count": [200, 180, 190, 20], "f1": [0.9, 0.85, 0.9, 0.3]}
    )
    found = ea.rare_class_suggestions(table, "multiclass", "auto")
    assert [s["override"] for s in found][:2] == ["train.loss=focal", "train.loss=weighted_ce"]
    assert "d" in found[0]["reason"]
    assert ea.rare_class_suggestions(table, "multiclass", "focal")[0]["override"] == (
        "train.loss=weighted_ce"
    )
    balanced = table.assign(count=[100, 100, 100, 100])
    assert ea.rare_class_suggestions(balanced, "multiclass", "auto") == []
    rare_but_fine = table.assign(f1=[0.9, 0.88, 0.9, 0.89])
    assert ea.rare_class_suggestions(rare_but_fine, "multiclass", "auto") == []


def test_images_much_larger_than_the_input_suggest_a_larger_image_size(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (256, 200)).save(p)
        paths.append(p)
    [s] = run_analysis.image_size_suggestion(paths, image_size=64)
    assert s["override"] == "data.image_size=128"
    assert run_analysis.image_size_suggestion(paths, image_size=128) == []


# ---- whole runs ------------------------------------------------------------------------------


def test_analysis_of_a_run_gives_every_fold_a_verdict_and_writes_every_plot(
    trained_run: Path,
) -> None:
    d = analyse_run(trained_run)
    assert json.loads((trained_run / "diagnosis.json").read_text())["verdict"] == d["verdict"]
    assert [f["fold"] for f in d["folds"]] == [0, 1, 2]
    for f in d["folds"]:
        assert f["verdict"] in dg.VERDICTS and f["reason"]
        assert f["mean_epoch_s"] > 0 and f["peak_mem_mb"] > 0
    assert d["verdict"] == dg.run_verdict([f["verdict"] for f in d["folds"]])
    for name in ("learning_curves", "confusion_matrix", "pr_curves", "per_class"):
        assert f"plots/{name}.png" in d["plots"]
    assert "plots/worst_predictions.png" in d["plots"]
    for p in d["plots"]:
        assert (trained_run / p).read_bytes()[:8] == PNG_MAGIC
    oof = pd.read_csv(trained_run / "oof.csv")
    per_class = pd.read_csv(trained_run / "analysis/per_class.csv")
    assert per_class["count"].sum() == len(oof)
    pred = oof[[c for c in oof.columns if c.startswith("pred_")]].to_numpy().argmax(axis=1)
    pairs = pd.read_csv(trained_run / "analysis/confused_pairs.csv")
    assert pairs["count"].sum() == int((pred != oof["target"].to_numpy()).sum())
    text = render_verdict(d)
    assert d["verdict"] in text and "s per epoch" in text


def test_partial_run_is_diagnosed_from_the_folds_it_has(trained_run: Path) -> None:
    shutil.rmtree(trained_run / "fold_2")
    (trained_run / "fold_1" / "result.json").unlink()  # fold 1 stopped mid-way
    for name in ("oof.csv", "scores.json"):
        (trained_run / name).unlink()
    d = analyse_run(trained_run)
    assert [f["fold"] for f in d["folds"]] == [0, 1]
    assert d["folds_missing"] == [2] and d["folds_finished"] == [0] and not d["complete"]
    worst = pd.read_csv(trained_run / "analysis/worst_predictions.csv")
    assert set(worst["fold"]) == {0}
    assert "partial run" in render_verdict(d)


def test_analysing_a_folder_that_is_not_a_run_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a run directory"):
        analyse_run(tmp_path)


def test_analysing_a_run_without_any_epoch_is_a_user_error(trained_run: Path) -> None:
    for k in range(3):
        (trained_run / f"fold_{k}" / "history.csv").unlink()
    with pytest.raises(UserError, match="no fold has finished an epoch"):
        analyse_run(trained_run)


def _synthetic_run(root: Path, kind: str) -> Path:
    """A project whose run holds made-up histories and OOF predictions of the given kind."""
    rng = np.random.default_rng(0)
    labels = ["cat", "dog", "sky"]
    target = labels if kind == "multilabel" else "score"
    config = TINY_CONFIG.replace("target_column: label", f"target_column: {target}")
    config = config.replace(
        "metric: accuracy", "metric: rmse" if kind == "regression" else "metric: f1"
    )
    cfg_path = make_project(root, config_text=config)
    train = pd.read_csv(root / "data" / "train.csv")
    n = len(train)
    y = rng.integers(0, 2, (n, 3)) if kind == "multilabel" else rng.normal(5, 2, n)
    if kind == "multilabel":
        train[labels] = y
    else:
        train["score"] = y
    train.to_csv(root / "data" / "train.csv", index=False)
    run = root / "runs" / "synthetic"
    run.mkdir(parents=True)
    cfg = load_config(cfg_path)
    from medalist.config import dump_config

    (run / "config.yaml").write_text(dump_config(cfg))
    state = {
        "kind": kind,
        "target_columns": labels if kind == "multilabel" else ["score"],
        "classes": labels if kind == "multilabel" else [],
    }
    (run / "task.json").write_text(json.dumps(state))
    folds = np.arange(n) % 3
    metric = "f1" if kind == "multilabel" else "rmse"
    for k in range(3):
        (run / f"fold_{k}").mkdir()
        h = history([1.0, 0.6, 0.4, 0.38], [1.0, 0.7, 0.6, 0.59]).rename(
            columns={"accuracy": metric}
        )
        h.to_csv(run / f"fold_{k}" / "history.csv", index=False)
        rows = folds == k
        oof = pd.DataFrame({"id": train["id"][rows], "fold": k})
        if kind == "multilabel":
            for j, c in enumerate(labels):
                oof[f"target_{c}"] = y[rows, j]
                oof[f"pred_{c}"] = np.clip(y[rows, j] * 0.6 + rng.uniform(0, 0.4, rows.sum()), 0, 1)
        else:
            oof["target"] = y[rows]
            oof["pred"] = y[rows] + rng.normal(0, 1, rows.sum())
        oof.to_csv(run / f"fold_{k}" / "oof.csv", index=False)
        result = {"fold": k, "score": 0.5, "best_epoch": 4, "epochs": 4, "seconds": 8.0}
        (run / f"fold_{k}" / "result.json").write_text(json.dumps(result))
    return run


def test_multilabel_run_gets_per_label_analysis_but_no_confusion_matrix(tmp_path: Path) -> None:
    run = _synthetic_run(tmp_path / "proj", "multilabel")
    d = analyse_run(run)
    assert "plots/confusion_matrix.png" not in d["plots"]
    assert {"plots/pr_curves.png", "plots/per_class.png", "plots/worst_predictions.png"} <= set(
        d["plots"]
    )
    assert "confusion matrix and confused pairs" in d["skipped"]
    assert list(pd.read_csv(run / "analysis/per_class.csv")["class"]) == ["cat", "dog", "sky"]
    assert not (run / "analysis/confused_pairs.csv").exists()


def test_regression_run_gets_curves_and_worst_errors_only(tmp_path: Path) -> None:
    run = _synthetic_run(tmp_path / "proj", "regression")
    d = analyse_run(run)
    assert d["plots"] == ["plots/learning_curves.png", "plots/worst_predictions.png"]
    assert d["folds"][0]["evidence"]["chance_loss"] == 1.0
    worst = pd.read_csv(run / "analysis/worst_predictions.csv")
    assert worst["loss"].is_monotonic_decreasing
    assert all(f["verdict"] in dg.VERDICTS for f in d["folds"])
