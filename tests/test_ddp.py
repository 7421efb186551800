"""Training past one process: DDP on 2 CPU processes (gloo), and folds trained apart then merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, medalist

from medalist.workflows.train import train


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gives_the_oof_of_one_process(tmp_path: Path) -> None:
    # A model without BatchNorm: on the CPU each process keeps its own BatchNorm statistics
    # (SyncBatchNorm needs GPUs), everything else must match one process exactly.
    config = make_project(tmp_path / "p")
    base = ["cv.n_splits=2", "model.backbone=test_vit", "data.image_size=32"]
    one = train(config, base, name="one", folds="0")
    two = train(config, [*base, "train.devices=2", "train.accelerator=cpu"], name="two", folds="0")
    a = pd.read_csv(one.run.path / "fold_0" / "oof.csv")
    b = pd.read_csv(two.run.path / "fold_0" / "oof.csv")
    assert list(a["id"]) == list(b["id"]), "every validation row once, in the same order"
    cols = [c for c in a.columns if c.startswith("pred_")]
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), atol=1e-4)
    ha = pd.read_csv(one.run.path / "fold_0" / "history.csv")
    hb = pd.read_csv(two.run.path / "fold_0" / "history.csv")
    np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(ha["val_loss"], hb["val_loss"], rtol=1e-4)


@pytest.mark.slow
def test_folds_trained_apart_merge_into_one_run(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    whole = train(config, name="whole")
    first = train(config, name="split", folds="0")
    # A second machine (a copy of the project) trains the other folds; they are copied back.
    shutil.copytree(tmp_path / "p", tmp_path / "machine2", symlinks=True)
    other = tmp_path / "machine2" / "runs" / "split"
    train(None, resume=other, folds="1,2")
    for k in (1, 2):
        shutil.copytree(other / f"fold_{k}", first.run.path / f"fold_{k}")
    proc = medalist("train", "--merge", str(first.run.path))
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((first.run.path / "scores.json").read_text())
    assert merged["folds"] == whole.scores["folds"]


def test_merge_with_folds_missing_names_them(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    part = train(config, name="part", folds="1")
    proc = medalist("train", "--merge", str(part.run.path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "fold 0" in proc.stderr and "fold 2" in proc.stderr


@pytest.mark.slow
def test_a_detection_run_on_two_cpu_processes_keeps_every_validation_image_once(
    tmp_path: Path,
) -> None:
    """DDP gathers each process's NaN-padded box arrays: every validation image gets its boxes
    once, in one process's order, and the fold scores them."""
    from detect_data import make_detect_project

    from medalist.runs import layout

    config = make_detect_project(tmp_path / "p")
    base = ["model.freeze_bn=true", "train.batch_size=4"]
    one = train(config, base, name="one", folds="0")
    two = train(config, [*base, "train.devices=2", "train.accelerator=cpu"], name="two", folds="0")
    a = pd.read_csv(one.run.path / "fold_0" / layout.FOLD_OOF)
    b = pd.read_csv(two.run.path / "fold_0" / layout.FOLD_OOF)
    assert list(a["id"]) == list(b["id"]), "every validation image once, in the same order"
    assert list(a["n_true"]) == list(b["n_true"])
    with np.load(two.run.path / "fold_0" / layout.OOF_BOXES) as boxes:
        counts = {k: boxes[k].shape for k in boxes.files}
    assert any(shape and shape[0] >= len(b) for shape in counts.values()), counts
    result = json.loads((two.run.path / "fold_0" / "result.json").read_text())
    assert np.isfinite(result["score"]), result
