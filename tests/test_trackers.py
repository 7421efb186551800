"""Trackers chosen by `track.backends`: each one's offline output, read back with that
tracker's own library, holds the run's params, per-epoch metrics per fold, CV and plots; and
a tracker that fails never stops the run.

The run is a fake (two folds of three epochs, a plot), driven through the loggers the way
Lightning drives them; one test trains the tiny model for real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, make_project
from lightning.pytorch.loggers.logger import Logger
from PIL import Image

from medalist.config import load_config
from medalist.errors import UserError
from medalist.io import write_json
from medalist.runs.rundir import RunDir
from medalist.runs.tracker_backends import CsvMirror, TensorBoardMirror
from medalist.runs.tracking import create_tracker

FOLDS, EPOCHS, STEPS_PER_EPOCH = 2, 3, 10
METRIC = "accuracy"
LR = 0.003  # train.lr in TINY_CONFIG


def _history(fold: int) -> pd.DataFrame:
    epochs = np.arange(1, EPOCHS + 1)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 1.5 / epochs + fold,
            "val_loss": 1.7 / epochs + fold,
            METRIC: 0.3 + 0.2 * epochs - 0.1 * fold,
            "lr": [1e-3] * EPOCHS,
            "time_s": [0.5] * EPOCHS,
        }
    )


SCORES = {
    "metric": METRIC,
    "higher_is_better": True,
    "folds": [float(_history(k)[METRIC].max()) for k in range(FOLDS)],
}
SCORES["mean"] = float(np.mean(SCORES["folds"]))
SCORES["std"] = float(np.std(SCORES["folds"]))


def fake_run(root: Path, backends: str) -> tuple:
    """A project with one run whose folds have a history, a plot and scores.json."""
    (root / "configs").mkdir(parents=True)
    cfg_path = root / "configs" / "baseline.yaml"
    cfg_path.write_text(TINY_CONFIG.replace("backends: [none]", f"backends: [{backends}]"))
    cfg = load_config(cfg_path)
    run = RunDir(root / "runs" / "r1")
    (run.path / "plots").mkdir(parents=True)
    write_json(run.file("provenance.json"), {"started_at": "2026-01-01T00:00:00+00:00"})
    for k in range(FOLDS):
        (run.path / f"fold_{k}").mkdir()
        _history(k).to_csv(run.file(f"fold_{k}/history.csv"), index=False)
    pixels = np.zeros((12, 16, 3), np.uint8)
    pixels[:, :8] = 255
    Image.fromarray(pixels).save(run.file("plots/learning_curves.png"))
    write_json(run.file("scores.json"), SCORES)
    return cfg, run


def drive(
    tracker, run: RunDir, *, single_logger_api: bool = False, scores: dict | None = None
) -> None:
    """What train() does with a tracker, the loggers fed as Lightning feeds them."""
    for k in range(FOLDS):
        if single_logger_api:
            one = tracker.fold_logger(k)
            loggers = [one] if one else []
        else:
            loggers = tracker.fold_loggers(k)
        for lg in loggers:
            lg.log_hyperparams({})
        for row in _history(k).to_dict("records"):
            metrics = {m: row[m] for m in ("train_loss", "val_loss", METRIC)}
            for lg in loggers:
                lg.log_metrics({**metrics, "epoch": row["epoch"] - 1}, row["epoch"] * 10)
        for lg in loggers:
            lg.finalize("success")
        result = {"fold": k, "score": SCORES["folds"][k], "best_epoch": EPOCHS}
        tracker.end_fold(k, {**result, "epochs": EPOCHS, "seconds": 1.5})
    tracker.finish(scores or SCORES, [run.file("scores.json"), run.path / "plots"])


def _close(a, b) -> bool:
    return np.allclose(np.asarray(a, float), np.asarray(b, float))


# ---------------------------------------------------------------------------------------------


def test_csv_tracker_writes_params_per_epoch_metrics_per_fold_and_the_cv(tmp_path):
    cfg, run = fake_run(tmp_path, "csv")
    drive(create_tracker(cfg, run), run)

    folder = tmp_path / "tracking" / "r1"
    params = pd.read_csv(folder / "params.csv").set_index("key")["value"]
    assert float(params["train.lr"]) == LR
    metrics = pd.read_csv(folder / "metrics.csv")
    for k in range(FOLDS):
        rows = metrics[metrics["fold"] == k]
        assert _close(rows["val_loss"], _history(k)["val_loss"])
        assert list(rows["epoch"]) == list(range(1, EPOCHS + 1))
    summary = pd.read_csv(folder / "summary.csv").iloc[0]
    assert summary["cv_mean"] == pytest.approx(SCORES["mean"])
    assert summary["fold_1"] == pytest.approx(SCORES["folds"][1])


def test_csv_tracker_replaces_a_resumed_folds_rows_instead_of_doubling_them(tmp_path):
    cfg, run = fake_run(tmp_path, "csv")
    drive(create_tracker(cfg, run), run)

    resumed = create_tracker(cfg, run)  # --resume: a new process finishes fold 1 again
    resumed.end_fold(1, {"fold": 1, "score": 0.5, "best_epoch": 2, "epochs": 3, "seconds": 1})

    metrics = pd.read_csv(tmp_path / "tracking" / "r1" / "metrics.csv")
    assert sorted(metrics.groupby("fold").size().tolist()) == [EPOCHS, EPOCHS]
    folds = pd.read_csv(tmp_path / "tracking" / "r1" / "folds.csv").set_index("fold")
    assert folds.loc[1, "score"] == 0.5 and len(folds) == FOLDS


def test_tensorboard_event_files_read_back_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, run = fake_run(tmp_path, "tensorboard")
    drive(create_tracker(cfg, run), run)

    def events(path: Path) -> EventAccumulator:
        acc = EventAccumulator(str(path), size_guidance={"images": 0, "tensors": 0})
        acc.Reload()
        return acc

    for k in range(FOLDS):
        acc = events(tmp_path / "tb" / "r1" / f"fold_{k}")
        val = acc.Scalars("val_loss")
        assert _close([e.value for e in val], _history(k)["val_loss"])
        assert [e.step for e in val] == [e * STEPS_PER_EPOCH for e in range(1, EPOCHS + 1)]
        assert acc.Scalars("fold_score")[0].value == pytest.approx(SCORES["folds"][k])
        hparams = (tmp_path / "tb" / "r1" / f"fold_{k}" / "hparams.yaml").read_text()
        assert "train.lr" in hparams
    cv = events(tmp_path / "tb" / "r1" / "cv")
    assert cv.Scalars("cv_mean")[0].value == pytest.approx(SCORES["mean"])
    assert _close([e.value for e in cv.Scalars("cv_fold")], SCORES["folds"])
    assert "plots/learning_curves.png" in cv.Tags()["images"]
    assert cv.Images("plots/learning_curves.png")[0].width == 16


@pytest.mark.slow
def test_wandb_offline_run_files_read_back_by_wandb(tmp_path):
    cfg, run = fake_run(tmp_path, "wandb")
    drive(create_tracker(cfg, run), run)

    wandb_cli = Path(sys.executable).parent / "wandb"
    runs = {}
    for folder in (tmp_path / "wandb").glob("offline-run-*"):
        out = subprocess.run(
            [str(wandb_cli), "leet", "inspect", "--json", str(folder)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        (head,) = [r["run"] for r in records if r["type"] == "run"]
        runs[head["display_name"]] = (head, records)
    assert sorted(runs) == ["r1/cv", "r1/fold_0", "r1/fold_1"]
    for k in range(FOLDS):
        head, records = runs[f"r1/fold_{k}"]
        assert head["run_group"] == "r1"
        assert head["config"]["update"]["train"]["lr"] == LR
        history = [r["history"]["item"] for r in records if r["type"] == "history"]
        assert _close([h["val_loss"] for h in history if "val_loss" in h], _history(k)["val_loss"])
        summary = {}
        for r in records:
            if r["type"] == "summary":
                summary.update(r["summary"]["update"])
        assert summary["fold_score"] == pytest.approx(SCORES["folds"][k])
    _, records = runs["r1/cv"]
    summary = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"]["update"])
    assert summary["cv_mean"] == pytest.approx(SCORES["mean"])
    files = [f["path"] for r in records if r["type"] == "files" for f in r["files"]["files"]]
    assert any(f.startswith("media/images/plots/learning_curves") for f in files)
    assert "scores.json" in files


@pytest.mark.slow
def test_comet_offline_archives_read_back_by_comet(tmp_path):
    from comet_ml.messages import MetricMessage, ParameterMessage
    from comet_ml.offline import unzip_offline_archive

    cfg, run = fake_run(tmp_path, "comet")
    drive(create_tracker(cfg, run), run)

    experiments = {}
    for archive in (tmp_path / "comet").glob("*.zip"):
        folder = Path(unzip_offline_archive(str(archive)))
        lines = (folder / "messages.json").read_text().splitlines()
        messages = [json.loads(line) for line in lines]
        shutil.rmtree(folder)
        name = next(
            m["payload"]["value"]
            for m in messages
            if m["type"] == "log_other" and m["payload"]["key"] == "Name"
        )
        experiments[name] = messages
    assert sorted(experiments) == ["r1/cv", "r1/fold_0", "r1/fold_1"]

    def metrics(messages, name):
        return [
            m["payload"]["metric"]["metricValue"]
            for m in messages
            if m["type"] == MetricMessage.type and m["payload"]["metric"]["metricName"] == name
        ]

    for k in range(FOLDS):
        messages = experiments[f"r1/fold_{k}"]
        assert _close(metrics(messages, "val_loss"), _history(k)["val_loss"])
        assert metrics(messages, "fold_score") == [pytest.approx(SCORES["folds"][k])]
        params = {}
        for m in messages:
            if m["type"] == ParameterMessage.type:
                p = m["payload"].get("param") or m["payload"]["params"]  # "params": a list value
                params[p["paramName"]] = p["paramValue"]
        assert float(params["train.lr"]) == LR
    cv = experiments["r1/cv"]
    assert metrics(cv, "cv_mean") == [pytest.approx(SCORES["mean"])]
    assert _close(metrics(cv, "cv_fold"), SCORES["folds"])
    uploads = [m for m in cv if m["type"] == "file_upload"]
    assert any("learning_curves" in json.dumps(m) for m in uploads)


@pytest.mark.slow
def test_neptune_offline_operations_read_back_by_neptune(tmp_path):
    from neptune.core.components.queue.disk_queue import DiskQueue
    from neptune.internal.operation import Operation

    cfg, run = fake_run(tmp_path, "neptune")
    drive(create_tracker(cfg, run), run)

    (folder,) = (tmp_path / ".neptune" / "offline").iterdir()
    with DiskQueue(folder, lambda op: op.to_dict(), Operation.from_dict, threading.RLock()) as q:
        ops = []
        while batch := q.get_batch(1000):
            ops += [element.obj for element in batch]
    by_path: dict[tuple, list] = {}
    for op in ops:
        by_path.setdefault(tuple(op.path), []).append(op)

    assert by_path[("params", "train", "lr")][0].value == LR
    for k in range(FOLDS):
        values = [v for op in by_path[(f"fold_{k}", "val_loss")] for v in op.values]
        assert _close([v.value for v in values], _history(k)["val_loss"])
        assert [v.step for v in values] == list(range(1, EPOCHS + 1))
        assert by_path[(f"fold_{k}", "fold_score")][0].value == pytest.approx(SCORES["folds"][k])
    assert by_path[("cv", "mean")][0].value == pytest.approx(SCORES["mean"])
    (plot,) = by_path[("files", "plots", "learning_curves")]
    assert Path(plot.file_path).name == "learning_curves.png"


@pytest.mark.slow
def test_mlflow_keeps_a_parent_run_and_a_child_per_fold(tmp_path):
    from mlflow import MlflowClient

    cfg, run = fake_run(tmp_path, "mlflow")
    by_group = {"mean": 0.625, "std": 0.125}  # the CV per submission row (submission_by)
    drive(create_tracker(cfg, run), run, scores={**SCORES, "by_group": by_group})

    ids = json.loads(run.file("tracking.json").read_text())
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    parent = client.get_run(ids["parent"])
    assert parent.data.params["train.lr"] == str(LR)
    assert parent.data.metrics["cv_mean"] == pytest.approx(SCORES["mean"])
    assert parent.data.metrics["cv_by_group_mean"] == 0.625
    assert parent.data.metrics["cv_by_group_std"] == 0.125
    for k in range(FOLDS):
        child = client.get_run(ids[f"fold_{k}"])
        assert child.data.tags["mlflow.parentRunId"] == ids["parent"]
        history = client.get_metric_history(ids[f"fold_{k}"], "val_loss")
        assert _close([m.value for m in history], _history(k)["val_loss"])
    artifacts = {a.path for a in client.list_artifacts(ids["parent"], "plots")}
    assert "plots/learning_curves.png" in artifacts


def test_single_logger_api_still_gets_every_epoch_into_every_tracker(tmp_path, monkeypatch):
    """A caller that takes one logger: the other trackers log the epochs from history.csv."""
    from lightning.pytorch.loggers import CSVLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # the first tracker hands out a live logger; TensorBoard, second, gets none
    live = lambda self, fold: CSVLogger(tmp_path / "live", name="r1", version=f"fold_{fold}")  # noqa: E731
    monkeypatch.setattr(CsvMirror, "_fold_logger", live)
    cfg, run = fake_run(tmp_path, "csv, tensorboard")
    drive(create_tracker(cfg, run), run, single_logger_api=True)

    for k in range(FOLDS):
        acc = EventAccumulator(str(tmp_path / "tb" / "r1" / f"fold_{k}"))
        acc.Reload()
        val = acc.Scalars("val_loss")
        assert _close([e.value for e in val], _history(k)["val_loss"])
        assert [e.step for e in val] == list(range(1, EPOCHS + 1))  # replayed: step = epoch
        live = pd.read_csv(tmp_path / "live" / "r1" / f"fold_{k}" / "metrics.csv")
        assert _close(live["val_loss"], _history(k)["val_loss"])  # the first one saw them live


class BrokenLogger(Logger):
    name, version = "broken", 0

    def log_metrics(self, metrics, step=None):
        raise ConnectionError("tracker server went away")

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def test_a_failing_tracker_warns_once_and_the_others_carry_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TensorBoardMirror, "_fold_logger", lambda self, fold: BrokenLogger())
    cfg, run = fake_run(tmp_path, "tensorboard, csv")

    drive(create_tracker(cfg, run), run)  # raises nothing

    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "TensorBoard" in warnings[0] and "tracker server went away" in warnings[0]
    assert "the run goes on" in warnings[0]
    metrics = pd.read_csv(tmp_path / "tracking" / "r1" / "metrics.csv")
    assert len(metrics) == FOLDS * EPOCHS


def test_unknown_tracker_in_the_config_is_a_user_error(tmp_path):
    cfg = make_project(tmp_path, TINY_CONFIG.replace("backends: [none]", "backends: [wandbb]"))
    with pytest.raises(UserError, match="track.backends"):
        load_config(cfg)


@pytest.mark.slow
def test_real_training_run_mirrors_each_epoch_to_tensorboard_and_csv(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from medalist.workflows.train import train

    config = TINY_CONFIG.replace("backends: [none]", "backends: [tensorboard, csv]")
    summary = train(make_project(tmp_path, config), name="real")

    metrics = pd.read_csv(tmp_path / "tracking" / "real" / "metrics.csv")
    for k in range(3):
        history = pd.read_csv(summary.run.file(f"fold_{k}/history.csv"))
        acc = EventAccumulator(str(tmp_path / "tb" / "real" / f"fold_{k}"))
        acc.Reload()
        assert _close([e.value for e in acc.Scalars("val_loss")], history["val_loss"])
        assert _close(metrics[metrics["fold"] == k]["val_loss"], history["val_loss"])
    summary_csv = pd.read_csv(tmp_path / "tracking" / "real" / "summary.csv")
    assert summary_csv["cv_mean"].iloc[0] == pytest.approx(summary.scores["mean"])
