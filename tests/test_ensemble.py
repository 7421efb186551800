"""`medalist ensemble`: weights from OOF rows, an honest CV, and a run that predicts and ships."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import medalist

from medalist.runs.rundir import RunDir, ledger
from medalist.tasks.blend import blend, blend_loss, fit_weights
from medalist.workflows.ensemble import honest_folds, make_ensemble
from medalist.workflows.select import reproducibility


def noisy_copy(run: Path, name: str, noise: float, seed: int = 0) -> Path:
    """A second run: the same folds, its OOF probabilities mixed with noise, its models'
    heads shifted towards the last class (so its test predictions differ too)."""
    other = run.parent / name
    shutil.copytree(run, other)
    oof = pd.read_csv(other / "oof.csv")
    cols = [c for c in oof.columns if c.startswith("pred_")]
    rng = np.random.default_rng(seed)
    p = (1 - noise) * oof[cols].to_numpy() + noise * rng.dirichlet(np.ones(len(cols)), len(oof))
    oof[cols] = p
    oof.to_csv(other / "oof.csv", index=False)
    for k in range(3):
        ckpt = torch.load(other / f"fold_{k}/best.ckpt", weights_only=False)
        ckpt["state_dict"]["model.fc.bias"] += torch.tensor([0.0, 0.0, 0.5])
        torch.save(ckpt, other / f"fold_{k}/best.ckpt")
    (other / "submission.csv").unlink(missing_ok=True)
    return other


# ---- the blend itself -----------------------------------------------------------------------


def test_fitted_weights_favour_the_member_that_predicts_well_and_beat_equal_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 300)
    w = fit_weights("multiclass", y, [good, noise])
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert w[0] > 0.9
    fitted = blend_loss("multiclass", y, blend([good, noise], w))
    assert fitted < blend_loss("multiclass", y, blend([good, noise], [0.5, 0.5]))


def test_weights_for_a_regression_target_minimise_the_squared_error():
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    a = y + rng.normal(scale=0.1, size=500)
    b = y + rng.normal(scale=1.0, size=500)
    w = fit_weights("regression", y, [a, b])
    # inverse-variance weighting: about 100 : 1
    assert w[0] == pytest.approx(100 / 101, abs=0.02)


def test_honest_cv_never_fits_the_weights_on_the_fold_it_scores():
    seen = []
    folds = np.repeat([0, 1, 2], [10, 20, 30])
    y = np.zeros(60, int)
    p = np.tile([0.6, 0.4], (60, 1))

    class Task:  # records the rows it fits weights on, and scores by counting rows
        def fit_blend_weights(self, y, preds):
            seen.append(len(y))
            return np.array([0.5, 0.5])

        def combine(self, preds, weights):
            return blend(preds, weights)

        def score(self, yt, pred):
            return float(len(yt))  # the number of rows scored

    scores, _ = honest_folds(Task(), y, [p, p], folds, "fit")
    assert seen == [50, 40, 30]  # fitted on the other folds' rows only
    assert scores == [10.0, 20.0, 30.0]  # scored on the held fold's rows only


# ---- the command on trained runs ------------------------------------------------------------


def test_ensemble_writes_a_run_with_weights_honest_cv_and_a_verdict(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.8)
    project = trained_run.parent.parent
    r = medalist("ensemble", "base", "other", "--name", "ens", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "ensemble CV" in r.stdout and "against the best run (base)" in r.stdout
    ens = RunDir(project / "runs" / "ens")
    spec = json.loads(ens.file("ensemble.json").read_text())
    assert spec["members"] == ["base", "other"] and spec["method"] == "fit"
    assert spec["weights"]["base"] > spec["weights"]["other"]
    assert sum(spec["weights"].values()) == pytest.approx(1.0)
    assert len(spec["fold_weights"]) == 3
    scores = ens.scores()
    assert len(scores["folds"]) == 3 and scores["mean"] == pytest.approx(np.mean(scores["folds"]))
    assert set(scores["members"]) == {"base", "other"}
    assert scores["against_best"]["run"] == "base"
    oof = pd.read_csv(ens.file("oof.csv"))
    base = pd.read_csv(trained_run / "oof.csv").sort_values("id").reset_index(drop=True)
    noisy = pd.read_csv(other / "oof.csv").sort_values("id").reset_index(drop=True)
    cols = [c for c in base.columns if c.startswith("pred_")]
    want = spec["weights"]["base"] * base[cols] + spec["weights"]["other"] * noisy[cols]
    assert np.allclose(oof.sort_values("id")[cols].to_numpy(), want.to_numpy())
    row = ledger(project).set_index("name").loc["ens"]
    assert row["backbone"] == "ensemble: base + other" and row["folds_done"] == "3/3"


def test_predicting_an_ensemble_blends_its_members_test_predictions(trained_run: Path):
    from medalist.workflows.inference import run_test_predictions as test_predictions
    from medalist.workflows.predict import predict

    other = noisy_copy(trained_run, "other", noise=0.3)
    result = make_ensemble([trained_run, other], name="ens")
    sub = predict(result.run.path)
    members = [test_predictions(RunDir(p)) for p in (trained_run, other)]
    want = blend([m.preds for m in members], [result.weights["base"], result.weights["other"]])
    assert np.allclose(sub.preds, want)
    assert not np.allclose(members[0].preds, members[1].preds)  # the blend is not trivial
    assert (result.run.path / "submission.csv").is_file()


def test_equal_weights_with_method_mean_and_the_honest_cv_equals_the_in_sample_one(
    trained_run: Path,
):
    other = noisy_copy(trained_run, "other", noise=0.5)
    result = make_ensemble([trained_run, other], name="avg", method="mean")
    assert result.weights == {"base": 0.5, "other": 0.5}
    assert result.folds == result.equal_folds


def test_compare_and_select_see_an_ensemble_as_its_members(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.3)
    project = trained_run.parent.parent
    make_ensemble([trained_run, other], name="ens")
    r = medalist("compare", "base", "ens", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "1 key(s) differ" in r.stdout  # one change: what is blended, not the copied config
    assert "ensemble: 'base' -> 'base 0." in r.stdout and "+ other 0." in r.stdout
    ens = RunDir(project / "runs" / "ens")
    missing = reproducibility(ens, ens.scores(), 3)
    (other / "config.yaml").rename(other / "config.off")
    assert "member other is missing" in reproducibility(ens, ens.scores(), 3)
    assert "member other is missing" not in missing


def test_packaging_an_ensemble_ships_its_members_with_its_weights(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from medalist.kaggle.package import PackageOptions, create_package

    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    other = noisy_copy(trained_run, "other", noise=0.3)
    result = make_ensemble([trained_run, other], name="ens")
    opts = PackageOptions(competition="shapes-demo", out=tmp_path / "pkg")
    package = create_package([result.run.path], opts)
    assert [e["name"] for e in package.manifest["runs"]] == ["base", "other"]
    assert package.manifest["weights"] == pytest.approx(result.weights)
    assert package.manifest["task"] == json.loads(result.run.file("task.json").read_text())


# ---- bad input: one line, exit 2, nothing written -------------------------------------------


def _refused(project: Path, *args: str) -> str:
    before = sorted(p.name for p in (project / "runs").iterdir())
    r = medalist("ensemble", *args, cwd=project)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (project / "runs").iterdir()) == before
    return r.stderr


def test_runs_on_different_folds_are_refused(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.3)
    oof = pd.read_csv(other / "oof.csv")
    oof.loc[:2, "fold"] = (oof.loc[:2, "fold"] + 1) % 3
    oof.to_csv(other / "oof.csv", index=False)
    err = _refused(trained_run.parent.parent, "base", "other")
    assert "3 ids in different folds" in err and "same cv settings" in err


def test_an_unfinished_run_is_refused(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.3)
    (other / "scores.json").unlink()
    err = _refused(trained_run.parent.parent, "base", "other")
    assert "has not finished every fold" in err and "--resume" in err


def test_one_run_or_the_same_run_twice_is_refused(trained_run: Path):
    project = trained_run.parent.parent
    assert "two or more runs" in _refused(project, "base")
    assert "given twice" in _refused(project, "base", "base")
    assert "not found" in _refused(project, "base", "nope")


def test_runs_of_another_task_are_refused(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.3)
    task = json.loads((other / "task.json").read_text())
    task["classes"] = task["classes"][:2] + ["zebra"]
    (other / "task.json").write_text(json.dumps(task))
    assert "predicts other targets" in _refused(trained_run.parent.parent, "base", "other")


def test_an_unknown_method_is_refused(trained_run: Path):
    noisy_copy(trained_run, "other", noise=0.3)
    err = _refused(trained_run.parent.parent, "base", "other", "--method", "median")
    assert "--method 'median'" in err and "fit" in err


def test_predicting_an_ensemble_whose_member_is_gone_is_a_clear_error(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.3)
    result = make_ensemble([trained_run, other], name="ens")
    shutil.rmtree(other)
    r = medalist("predict", str(result.run.path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "member run" in r.stderr and "other" in r.stderr
    assert not (result.run.path / "submission.csv").exists()


def test_report_of_an_ensemble_shows_the_blend_and_its_error_analysis(trained_run: Path):
    other = noisy_copy(trained_run, "other", noise=0.3)
    result = make_ensemble([trained_run, other], name="ens")
    r = medalist("report", str(result.run.path))
    assert r.returncode == 0, r.stderr
    html = (result.run.path / "report.html").read_text()
    assert "blend of base (" in html and "against the best member base" in html
    assert "confusion matrix" in html.lower() and "Verdict per fold" not in html
    diagnosis = json.loads((result.run.path / "diagnosis.json").read_text())
    assert diagnosis["verdict"] == "ensemble"
    assert "plots/confusion_matrix.png" in diagnosis["plots"]
