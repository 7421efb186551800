"""Specification of `medalist compare`: config changes, per-fold differences, the verdict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import medalist

from medalist.analysis.compare import compare_runs, config_changes, judge


def fake_run(project: Path, name: str, folds: list[float], *, base: Path, **extra) -> Path:
    """A run directory with `base`'s config (edited by `extra` config keys) and given scores."""
    run = project / "runs" / name
    run.mkdir(parents=True)
    cfg = yaml.safe_load((base / "config.yaml").read_text())
    for key, value in extra.pop("config", {}).items():
        section, k = key.split(".")
        cfg[section][k] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copy(base / "folds.csv", run / "folds.csv")
    scores = {"metric": "accuracy", "higher_is_better": True, "folds": folds}
    scores.update({"mean": sum(folds) / len(folds), "std": 0.0, "seeds": [0], **extra})
    (run / "scores.json").write_text(json.dumps(scores))
    return run


def test_config_changes_lists_each_differing_key_with_both_values():
    a = {"train": {"lr": 0.001, "epochs": 10}, "model": {"backbone": "resnet18"}}
    b = {"train": {"lr": 0.0003, "epochs": 10}, "model": {"backbone": "resnet34"}}
    assert config_changes(a, b) == [
        ("model.backbone", "resnet18", "resnet34"),
        ("train.lr", 0.001, 0.0003),
    ]
    assert config_changes(a, a) == []


def test_consistent_gain_on_every_fold_is_better(trained_run: Path):
    project = trained_run.parent.parent
    a = fake_run(project, "a", [0.80, 0.82, 0.81, 0.79, 0.80], base=trained_run)
    b = fake_run(
        project, "b", [0.85, 0.86, 0.86, 0.84, 0.85], base=trained_run, config={"train.lr": 0.01}
    )
    c = compare_runs(a, b)
    assert c.paired and c.verdict == "better"
    assert c.changes == [("train.lr", 0.003, 0.01)] and not c.several_changes
    assert c.mean_diff == pytest.approx(0.048, abs=1e-9)
    assert compare_runs(b, a).verdict == "worse"


def test_mixed_fold_differences_are_within_noise(trained_run: Path):
    project = trained_run.parent.parent
    a = fake_run(project, "a", [0.80, 0.82, 0.81, 0.79, 0.80], base=trained_run)
    b = fake_run(project, "b", [0.83, 0.80, 0.82, 0.78, 0.81], base=trained_run)
    assert compare_runs(a, b).verdict == "within noise"


def test_a_gain_smaller_than_twice_the_seed_std_is_within_noise(trained_run: Path):
    project = trained_run.parent.parent
    a = fake_run(project, "a", [0.80, 0.82, 0.81], base=trained_run, seed_std=0.02)
    b = fake_run(project, "b", [0.83, 0.85, 0.84], base=trained_run, seed_std=0.01)
    c = compare_runs(a, b)
    assert c.seed_std == 0.02 and c.verdict == "within noise"
    assert any("seed std" in r for r in c.reasons)
    judged, _ = judge(0.03, 0.001, None)
    assert judged == "better"  # the same gain without seed noise recorded


def test_lower_is_better_metric_turns_the_sign(trained_run: Path):
    project = trained_run.parent.parent
    a = fake_run(project, "a", [0.50, 0.52, 0.51], base=trained_run, higher_is_better=False)
    b = fake_run(project, "b", [0.40, 0.41, 0.41], base=trained_run, higher_is_better=False)
    c = compare_runs(a, b)
    assert c.verdict == "better" and c.mean_diff > 0


def test_runs_with_different_folds_are_compared_unpaired(trained_run: Path):
    project = trained_run.parent.parent
    a = fake_run(project, "a", [0.80, 0.82, 0.81], base=trained_run)
    b = fake_run(project, "b", [0.90, 0.91, 0.92], base=trained_run)
    folds = pd.read_csv(b / "folds.csv")
    folds["fold"] = (folds["fold"] + 1) % 3
    folds.to_csv(b / "folds.csv", index=False)
    c = compare_runs(a, b)
    assert not c.paired and "Welch" in c.reasons[0]


def test_several_training_keys_changed_are_flagged(trained_run: Path):
    project = trained_run.parent.parent
    a = fake_run(project, "a", [0.8, 0.8, 0.8], base=trained_run)
    b = fake_run(
        project, "b", [0.8, 0.8, 0.8], base=trained_run,
        config={"train.lr": 0.01, "train.epochs": 3, "track.backends": ["mlflow"]},
    )  # fmt: skip
    c = compare_runs(a, b)
    assert len(c.changes) == 3 and len(c.training_changes) == 2 and c.several_changes


def test_compare_cli_prints_changes_folds_verdict_and_method(trained_run: Path):
    project = trained_run.parent.parent
    fake_run(project, "b", [0.9, 0.95, 0.9], base=trained_run, config={"train.lr": 0.01})
    r = medalist("compare", "base", "b", "--project", str(project))
    assert r.returncode == 0, r.stderr
    assert "train.lr: 0.003 -> 0.01" in r.stdout
    assert "verdict:" in r.stdout and "Method: paired per-fold differences" in r.stdout


def test_compare_with_an_unknown_run_exits_2_naming_it(trained_run: Path):
    r = medalist("compare", "base", "nope", "--project", str(trained_run.parent.parent))
    assert r.returncode == 2 and "run 'nope' not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_compare_with_an_unfinished_run_says_to_resume_it(trained_run: Path):
    project = trained_run.parent.parent
    b = fake_run(project, "b", [0.9], base=trained_run)
    (b / "scores.json").unlink()
    r = medalist("compare", "base", "b", "--project", str(project))
    assert r.returncode == 2 and "no scores.json" in r.stderr and "--resume" in r.stderr
    assert "Traceback" not in r.stderr


def test_compare_runs_of_different_metrics_is_refused(trained_run: Path):
    project = trained_run.parent.parent
    b = fake_run(project, "b", [0.9, 0.9, 0.9], base=trained_run, metric="f1_macro")
    r = medalist("compare", "base", str(b), "--project", str(project))
    assert r.returncode == 2 and "different metrics" in r.stderr and "Traceback" not in r.stderr
