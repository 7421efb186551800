"""`medalist tune`: the search space, trials as runs, pruning, faults, workers on one study."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from conftest import TINY_CONFIG, assert_drawn_png, make_project, medalist

from medalist.config import load_config
from medalist.config.schema import Tune
from medalist.config.space import parse_space
from medalist.errors import UserError
from medalist.runs.rundir import ledger
from medalist.workflows.train import train
from medalist.workflows.tune import tune
from medalist.workflows.tune_trial import open_storage

TUNE = """\
tune:
  metric_folds: [0]
  space:
    train.lr: {type: float, low: 1e-4, high: 3.0e-2, log: true}
    train.weight_decay: {type: float, low: 0.0, high: 0.1}
  n_startup_trials: 1
  seed: 0
"""


def tune_project(root: Path, tune_text: str = TUNE) -> Path:
    return make_project(root / "proj", TINY_CONFIG + tune_text)


def load_trials(cfg: Path, study: str, storage: str | None = None) -> list:
    url = storage or f"sqlite:///{cfg.parent.parent / 'optuna.db'}"
    found = optuna.load_study(study_name=study, storage=open_storage(url, Tune()))
    return sorted(found.get_trials(deepcopy=False), key=lambda t: t.number)


@pytest.mark.slow
def test_each_trial_is_a_run_and_the_best_config_trains_every_fold(tmp_path: Path) -> None:
    cfg = tune_project(tmp_path, TUNE.replace("[0]", "[0, 1]") + "  pruner: none\n")
    project = cfg.parent.parent
    result = tune(cfg, trials=2)
    trials = load_trials(cfg, "baseline")
    assert [t.number for t in trials] == [0, 1]
    for t in trials:
        run = project / "runs" / f"baseline-trial{t.number:03d}"
        record = json.loads((run / "trial.json").read_text())
        assert (record["study"], record["trial"], record["state"]) == (
            "baseline",
            t.number,
            "complete",
        )
        assert t.user_attrs["run"] == run.name
        ran = yaml.safe_load((run / "config.yaml").read_text())
        assert ran["train"]["lr"] == pytest.approx(t.params["train.lr"])
        # two metric folds of two epochs: four steps, none reported over another
        assert sorted(t.intermediate_values) == [0, 1, 2, 3]
        folds = [json.loads((run / f"fold_{k}/result.json").read_text())["score"] for k in (0, 1)]
        assert t.value == pytest.approx(sum(folds) / 2)
    assert {f"baseline-trial00{n}" for n in (0, 1)} <= set(ledger(project)["name"])

    best = max(trials, key=lambda t: t.value)
    assert result.best["number"] == best.number
    assert {p.name for p in result.plots} >= {"baseline-history.png", "baseline-importances.png"}
    for plot in result.plots:
        assert_drawn_png(plot)
    assert set(result.importances) == {"train.lr", "train.weight_decay"}
    best_cfg = load_config(result.best_config)
    assert result.best_config == project / "configs" / "baseline-best.yaml"
    assert best_cfg.train.lr == pytest.approx(best.params["train.lr"])
    assert best_cfg.train.weight_decay == pytest.approx(best.params["train.weight_decay"])
    assert best_cfg.tune.space == {}, "the best config is for training, not another search"
    summary = train(result.best_config, name="best")
    assert summary.folds_done == [0, 1, 2] and summary.scores is not None

    table = ledger(project).set_index("name")
    assert table.loc["baseline-trial001", "trial"] == "baseline#1 complete"
    assert table.loc["best", "trial"] == ""
    shown = medalist("runs", "--project", str(project))
    assert "2 tune trial run(s) not shown" in shown.stdout
    names = lambda *a: list(  # noqa: E731
        pd.read_csv(io.StringIO(medalist("runs", "--project", str(project), "--csv", *a).stdout))[
            "name"
        ]
    )
    assert names() == ["best"]
    assert sorted(names("--trials")) == ["baseline-trial000", "baseline-trial001", "best"]

    again = tune(cfg, trials=1)
    assert [t.number for t in load_trials(cfg, "baseline")] == [0, 1, 2]
    assert again.counts == {"complete": 3}


def prune_every_trial_after_one_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accuracy never reaches 1.01: the real pruning callback stops each trial after epoch 1."""
    import medalist.workflows.tune_trial as tune_trial

    monkeypatch.setattr(
        tune_trial, "create_pruner", lambda t: optuna.pruners.ThresholdPruner(lower=1.01)
    )


def test_a_pruned_trial_stops_early_and_keeps_no_resume_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prune_every_trial_after_one_epoch(monkeypatch)
    cfg = tune_project(tmp_path)
    result = tune(cfg, ["train.epochs=3"], trials=1)
    (trial,) = load_trials(cfg, "baseline")
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    run = cfg.parent.parent / "runs" / "baseline-trial000"
    assert json.loads((run / "trial.json").read_text())["state"] == "pruned"
    assert not (run / "fold_0" / "last.ckpt").exists()
    assert result.best is None and result.best_config is None


POOR_AFTER_GOOD = """\
tune:
  metric_folds: [0]
  space:
    train.weight_decay: {{type: categorical, choices: [0.0]}}
  pruner: {pruner}
  pruner_startup_trials: 1
  n_warmup_epochs: {warmup}
  seed: 0
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pruner", "warmup", "good_trials", "reported"),
    [("median", 1, 1, [0, 1]), ("median", 2, 1, [0, 1, 2]), ("hyperband", 1, 2, [0, 1, 2])],
)
def test_the_median_and_hyperband_pruners_stop_a_poor_trial_once_past_their_warm_up(
    tmp_path: Path, pruner: str, warmup: int, good_trials: int, reported: list[int]
) -> None:
    """Good trials (lr 1e-2: accuracy 0.33, 0.67, 0.75, 0.83 by epoch), then a poor one
    (lr 1e-6: 0.33, 0.33, 0.42, 0.42). The median pruner stops it at the first epoch past its
    warm-up where it trails the finished trial (epoch 1 is a tie); Hyperband's first rung is
    n_warmup_epochs + 1 epochs in, where the poor trial ranks below the good one that reached
    it (the first finished trial only sizes the rungs, so it takes two good trials)."""
    cfg = tune_project(tmp_path, POOR_AFTER_GOOD.format(pruner=pruner, warmup=warmup))
    tune(cfg, ["train.lr=1e-2", "train.epochs=4"], trials=good_trials)
    result = tune(cfg, ["train.lr=1e-6", "train.epochs=4"], trials=1)
    trials = load_trials(cfg, "baseline")
    assert [t.state.name for t in trials] == ["COMPLETE"] * good_trials + ["PRUNED"]
    poor = trials[-1]
    assert sorted(poor.intermediate_values) == reported
    assert poor.user_attrs["stopped_because"] == f"{pruner} pruner"
    run = cfg.parent.parent / "runs" / f"baseline-trial{poor.number:03d}"
    assert json.loads((run / "trial.json").read_text())["state"] == "pruned"
    assert not (run / "fold_0" / "last.ckpt").exists()
    assert result.counts == {"complete": good_trials, "pruned": 1}


@pytest.mark.slow
def test_the_same_study_run_twice_in_one_process_repeats_its_trials_exactly(
    tmp_path: Path,
) -> None:
    import numpy as np

    cfg = tune_project(tmp_path)
    for study in ("first", "again"):
        tune(cfg, ["train.epochs=2"], trials=3, study=study)
    first, again = load_trials(cfg, "first"), load_trials(cfg, "again")
    assert [t.params for t in first] == [t.params for t in again]
    assert [t.value for t in first] == [t.value for t in again]
    runs = cfg.parent.parent / "runs"
    for k in range(3):
        a, b = (pd.read_csv(runs / f"{s}-trial{k:03d}/fold_0/oof.csv") for s in ("first", "again"))
        num = a.select_dtypes("number").columns
        assert np.array_equal(a[num].to_numpy(), b[num].to_numpy())  # bit for bit, not close


@pytest.mark.slow
def test_a_pruned_trial_closes_its_mlflow_runs_as_killed_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    prune_every_trial_after_one_epoch(monkeypatch)
    cfg = tune_project(tmp_path)
    tune(cfg, ["train.epochs=3", "track.backends=[mlflow]"], trials=1)
    run = cfg.parent.parent / "runs" / "baseline-trial000"
    ids = json.loads((run / "tracking.json").read_text())
    client = MlflowClient(f"sqlite:///{cfg.parent.parent / 'mlruns.db'}")
    for key in ("parent", "fold_0"):
        info = client.get_run(ids[key])
        assert info.info.status == "KILLED", key  # not left RUNNING for ever
        assert "prun" in info.data.tags["medalist.stopped"].lower()


def test_a_trial_whose_loss_is_nan_is_pruned_with_the_reason_and_the_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medalist.engine.module import FoldModule

    original = FoldModule.training_step

    def nan_when_lr_is_huge(self: FoldModule, batch: tuple, batch_idx: int) -> object:
        x, y = batch
        return original(self, (x * float("nan") if self.cfg.train.lr > 1 else x, y), batch_idx)

    monkeypatch.setattr(FoldModule, "training_step", nan_when_lr_is_huge)
    space = TUNE.replace(
        "    train.lr: {type: float, low: 1e-4, high: 3.0e-2, log: true}\n"
        "    train.weight_decay: {type: float, low: 0.0, high: 0.1}\n",
        "    train.lr: {type: categorical, choices: [3.0e-3, 5.0]}\n",
    )
    cfg = tune_project(tmp_path, space + "  sampler: grid\n")
    result = tune(cfg, trials=2)
    trials = load_trials(cfg, "baseline")
    states = {t.params["train.lr"]: t for t in trials}
    assert states[5.0].state == optuna.trial.TrialState.PRUNED
    assert "loss is nan" in states[5.0].user_attrs["stopped_because"]
    assert states[3.0e-3].state == optuna.trial.TrialState.COMPLETE
    assert result.best["params"] == {"train.lr": 3.0e-3}
    record = json.loads(
        (cfg.parent.parent / "runs" / states[5.0].user_attrs["run"] / "trial.json").read_text()
    )
    assert record["state"] == "pruned" and "nan" in record["reason"]


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_it_failed_and_retried_and_the_study_goes_on(
    tmp_path: Path,
) -> None:
    cfg = tune_project(tmp_path)
    project = cfg.parent.parent
    heartbeat = ["tune.heartbeat_interval=1", "tune.grace_period=2"]
    args = ["tune", str(cfg), "--trials", "1", "train.epochs=200", *heartbeat]
    worker = subprocess.Popen(
        [sys.executable, "-c", "from medalist.cli import main; main()", *args],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    history = project / "runs" / "baseline-trial000" / "fold_0" / "history.csv"
    deadline = time.monotonic() + 120
    while not history.is_file() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert history.is_file() and worker.poll() is None, "the worker should be mid-trial"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    # Until the killed trial's heartbeat is older than the grace period (2 s) by the database's
    # clock (whole seconds in SQLite): the check Optuna's fail_stale_trials makes.
    storage = open_storage(f"sqlite:///{project / 'optuna.db'}", load_config(cfg, heartbeat).tune)
    study_id = storage.get_study_id_from_name("baseline")
    deadline = time.monotonic() + 60
    while not storage._get_stale_trial_ids(study_id):
        assert time.monotonic() < deadline, "the killed trial's heartbeat never went stale"
        time.sleep(0.2)

    result = tune(cfg, heartbeat, trials=2)
    trials = load_trials(cfg, "baseline")
    assert [t.number for t in trials] == [0, 1, 2]
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].system_attrs["failed_trial"] == 0, "trial 1 retries the killed trial 0"
    assert trials[1].params == trials[0].params
    killed = json.loads((project / "runs" / "baseline-trial000" / "trial.json").read_text())
    assert killed["state"] == "fail"
    assert result.counts == {"fail": 1, "complete": 2}


@pytest.mark.slow
def test_two_local_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    cfg = tune_project(tmp_path)
    project = cfg.parent.parent
    done = medalist("tune", str(cfg), "--trials", "2", "--workers", "2", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    trials = load_trials(cfg, "baseline")
    assert [t.number for t in trials] == [0, 1]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert done.stdout.count("[worker 0]") == 1 and done.stdout.count("[worker 1]") == 1
    assert "best: trial" in done.stdout and "optuna-dashboard sqlite:///" in done.stdout
    assert (project / "configs" / "baseline-best.yaml").is_file()


SPACE_ERRORS = {
    "unknown key": ("trian.lr: {type: float, low: 1e-4, high: 1e-2}", "did you mean train.lr"),
    "no dot": ("lr: {type: float, low: 1e-4, high: 1e-2}", "did you mean train.lr"),
    "section": ("train: {type: float, low: 1e-4, high: 1e-2}", "train is a section"),
    "fixed": ("cv.seed: {type: int, low: 0, high: 3}", "can't change cv.*"),
    "bad type": ("train.lr: {type: floot, low: 1e-4, high: 1e-2}", "type = 'floot'"),
    "bad field": ("train.lr: {type: float, lo: 1e-4, high: 1e-2}", "did you mean low"),
    "no high": ("train.lr: {type: float, low: 1e-4}", "needs high"),
    "low > high": ("train.lr: {type: float, low: 1e-2, high: 1e-4}", "low <= high"),
    "not a number": ("train.lr: {type: float, low: small, high: 1e-4}", "low = 'small'"),
    "not whole": ("train.epochs: {type: int, low: 1.5, high: 4}", "whole numbers"),
    "log from 0": ("train.lr: {type: float, low: 0, high: 1e-2, log: true}", "low > 0"),
    "log not bool": ("train.lr: {type: float, low: 1e-4, high: 1e-2, log: 2}", "log = 2"),
    "no choices": ("model.backbone: {type: categorical, choices: []}", "needs choices"),
    "bad choice": ("model.backbone: {type: categorical, choices: [[1]]}", "choice [1]"),
    "invalid value": ("train.lr: {type: float, low: 0, high: 1e-2}", "low 0.0 is not a valid"),
    "invalid choice": ("train.scheduler: {type: categorical, choices: [step]}", "'step' is not"),
}


@pytest.mark.parametrize("name", SPACE_ERRORS)
def test_a_bad_search_space_is_an_error_that_names_the_key(tmp_path: Path, name: str) -> None:
    spec, expected = SPACE_ERRORS[name]
    cfg = tune_project(tmp_path, f"tune:\n  space:\n    {spec}\n")
    with pytest.raises(UserError) as err:
        parse_space(load_config(cfg), f"config {cfg}")
    message = str(err.value)
    assert expected in message and f"config {cfg}: tune.space " in message
    assert "\n" not in message


def test_space_values_read_as_yaml_strings_still_count_as_numbers(tmp_path: Path) -> None:
    cfg = tune_project(tmp_path)  # low: 1e-4 is a string to YAML 1.1
    space = parse_space(load_config(cfg))
    assert space["train.lr"].low == pytest.approx(1e-4) and space["train.lr"].log


@pytest.mark.parametrize("name", ["unknown key", "low > high"])
def test_a_bad_search_space_stops_the_command_before_anything_is_written(
    tmp_path: Path, name: str
) -> None:
    spec, expected = SPACE_ERRORS[name]
    cfg = tune_project(tmp_path, f"tune:\n  space:\n    {spec}\n")
    done = medalist("tune", str(cfg), "--trials", "1", cwd=cfg.parent.parent)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "tune.space" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (cfg.parent.parent / "optuna.db").exists()


CLI_ERRORS = {
    "missing fold": (TUNE.replace("[0]", "[7]"), [], "fold 7 does not exist"),
    "grid of floats": (TUNE + "  sampler: grid\n", [], "train.lr is continuous"),
    "trials missing": (TUNE, None, "--trials N"),
    "no trials": (TUNE, ["--trials", "0"], "--trials 0"),
    "study name": (TUNE, ["--study", "a b"], "--study 'a b'"),
    "storage": (TUNE, ["--storage", "nosuch://x"], "--storage nosuch://x"),
    "no server": (TUNE, ["--storage", "postgresql://me:secret@127.0.0.1:9/db"], "me:***@"),
}


@pytest.mark.parametrize("name", CLI_ERRORS)
def test_bad_tune_settings_and_options_are_one_line_errors(tmp_path: Path, name: str) -> None:
    text, options, expected = CLI_ERRORS[name]
    cfg = tune_project(tmp_path, text)
    if options is None:
        args = []
    else:
        args = options if "--trials" in options else ["--trials", "1", *options]
    done = medalist("tune", str(cfg), *args, cwd=cfg.parent.parent)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "secret" not in done.stderr


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("tune:\n  sampler: tpe\n", {}, "tune.space is empty"),
        (TUNE.replace("[0]", "[0, 0]"), {}, "names a fold twice"),
        (TUNE, {"workers": 0}, "--workers 0"),
        (TUNE, {"timeout": -1.0}, "--timeout -1"),
    ],
)
def test_more_bad_settings_are_user_errors(
    tmp_path: Path, text: str, kwargs: dict, expected: str
) -> None:
    cfg = tune_project(tmp_path, text)
    with pytest.raises(UserError, match=expected.replace("*", "\\*")):
        tune(cfg, trials=1, **kwargs)


def test_a_study_that_scores_another_way_is_not_continued(tmp_path: Path) -> None:
    cfg = tune_project(tmp_path)
    project = cfg.parent.parent
    url = f"sqlite:///{project / 'optuna.db'}"
    optuna.create_study(study_name="baseline", storage=url, direction="minimize")
    done = medalist("tune", str(cfg), "--trials", "1", cwd=project)
    assert done.returncode == 2 and "study baseline" in done.stderr
    assert "was made to minimize" in done.stderr and "Traceback" not in done.stderr
    optuna.create_study(study_name="other", storage=url, direction="maximize").set_user_attr(
        "metric_folds", [1]
    )
    with pytest.raises(UserError, match=r"study other .* metric_folds = \[1\]"):
        tune(cfg, trials=1, study="other")
    (project / "runs" / "fresh-trial000").mkdir(parents=True)
    with pytest.raises(UserError, match="fresh-trial000 exists but is not a trial of study fresh"):
        tune(cfg, trials=1, study="fresh")


def test_cmaes_without_its_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether or not cmaes is installed here, this process can't import it (and the test runs).
    monkeypatch.setitem(sys.modules, "cmaes", None)
    cfg = tune_project(tmp_path, TUNE + "  sampler: cmaes\n")
    with pytest.raises(UserError, match="pip install cmaes"):
        tune(cfg, trials=1)
    assert not (cfg.parent.parent / "runs").exists()
