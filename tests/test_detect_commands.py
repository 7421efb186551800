"""The commands of a competition on a detection project: `check` judged by the boxes, `train`
resumed after a kill, folds trained apart and merged, seed repeats, and leak, tune, lb, select
and review on detection runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from detect_data import DETECT_CONFIG, make_detect_project
from test_check import ShuffledLabels

import medalist.workflows.check as check_module
from medalist.workflows.check import run_check
from medalist.workflows.train import train

pytest.importorskip("ensemble_boxes", reason="detection needs ensemble-boxes (pyproject)")


# ---- medalist check -------------------------------------------------------------------------
@pytest.mark.slow
def test_check_passes_when_a_tiny_fcos_finds_every_box_of_the_batch(tmp_path: Path) -> None:
    config = make_detect_project(tmp_path, apart=True)
    result = run_check(config, ["train.lr=3e-3"], max_steps=120)
    assert result.passed, result.reason
    assert "every true box found at IoU 0.5" in result.reason
    assert len(result.losses) < 120  # it stopped once the boxes were found
    # FCOS's loss stays far above the 0.05 a classifier's check waits for.
    assert min(result.losses) > 10 * result.threshold


@pytest.mark.slow
def test_check_fails_on_detection_when_the_boxes_are_shuffled_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_detect_project(tmp_path, apart=True)
    monkeypatch.setattr(check_module, "ImageDataset", ShuffledLabels)
    result = run_check(config, ["train.lr=3e-3"], max_steps=60)
    assert not result.passed and len(result.losses) == 60
    assert "can't memorise" in result.reason and "every true box" in result.reason


TUNE = """\
tune:
  metric_folds: [0, 1]
  space:
    train.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
  seed: 0
"""


# ---- train: resume, folds apart, seeds ----------------------------------------------------------
class KillAtEpoch(L.Callback):
    """Interrupts training (as Ctrl-C would) once `epoch` (0-based) begins."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def assert_same_oof(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(
        pd.read_csv(a / "oof.csv"), pd.read_csv(b / "oof.csv"), check_exact=True
    )
    for k in (0, 1):
        with (
            np.load(a / f"fold_{k}" / "oof_boxes.npz") as x,
            np.load(b / f"fold_{k}" / "oof_boxes.npz") as y,
        ):
            assert np.array_equal(x["boxes"], y["boxes"]) and np.array_equal(
                x["counts"], y["counts"]
            )


@pytest.mark.slow
def test_a_detection_run_resumed_or_merged_ends_with_the_oof_of_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    config = make_detect_project(
        tmp_path / "p", DETECT_CONFIG.replace("epochs: 1", "epochs: 2"), n_train=12, n_test=3
    )
    whole = train(config, name="whole")
    # Killed in fold 1 after its first epoch: fold 0 is done, fold 1 has only last.ckpt.
    with pytest.raises(SystemExit):  # medalist train's exit on an interrupt
        train(config, name="killed", callbacks=lambda k: [KillAtEpoch(1)] if k == 1 else [])
    killed = config.parent.parent / "runs" / "killed"
    assert (killed / "fold_1" / "last.ckpt").is_file()
    assert not (killed / "fold_1" / "result.json").exists()
    r = medalist("train", "--resume", str(killed))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "fold 0: done already" in r.stdout
    # Fold 1 went on from its checkpoint: the resumed process trained its second epoch only.
    assert re.findall(r"^fold 1 \| epoch (\d+)/2 ", r.stdout, re.M) == ["2"], r.stdout
    assert_same_oof(killed, whole.run.path)
    scores = json.loads((killed / "scores.json").read_text())
    assert scores["folds"] == whole.scores["folds"] and scores["oof"] == whole.scores["oof"]

    # Folds trained apart (another machine trains fold 1), copied back and merged.
    split = train(config, name="split", folds="0").run.path
    shutil.copytree(tmp_path / "p", tmp_path / "machine2", symlinks=True)
    train(None, resume=tmp_path / "machine2" / "runs" / "split", folds="1")
    shutil.copytree(tmp_path / "machine2" / "runs" / "split" / "fold_1", split / "fold_1")
    r = medalist("train", "--merge", str(split))
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_oof(split, whole.run.path)


@pytest.mark.slow
def test_detection_commands_on_seed_repeats_lb_select_review_leak_and_tune(tmp_path: Path) -> None:
    config = make_detect_project(tmp_path, DETECT_CONFIG + TUNE, n_train=12, n_test=3)
    r = medalist("leak", str(config), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "near-duplicate" in r.stdout
    r = medalist("train", str(config), "--seeds", "2", "--name", "seeds", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "runs" / "seeds"
    assert (run / "fold_1_seed1" / "oof_boxes.npz").is_file()
    scores = json.loads((run / "scores.json").read_text())
    assert len(scores["seed_scores"]) == 2 and scores["seed_std"] >= 0
    oof = pd.read_csv(run / "oof.csv")
    assert oof["n_true"].sum() > 0 and len(oof) == 12
    r = medalist("tune", str(config), "--trials", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "runs" / "baseline-trial000" / "scores.json").is_file()
    for args in (["lb", "runs/seeds", "0.41"], ["lb", "runs/baseline-trial000", "0.35"]):
        r = medalist(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
    r = medalist("lb", cwd=tmp_path)
    assert r.returncode == 0 and "CV vs public LB" in r.stdout, r.stderr[-2000:]
    r = medalist("select", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seeds" in r.stdout
    r = medalist("review", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    review = (tmp_path / "review.md").read_text()
    assert "seeds" in review and "baseline-trial000" in review
