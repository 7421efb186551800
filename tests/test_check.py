"""`medalist check`: a correct pipeline memorises a handful of images; a broken one can't."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import medalist

import medalist.workflows.check as check_module
from medalist.data.dataset import ImageDataset
from medalist.workflows.check import pick_rows, run_check

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ShuffledLabels(ImageDataset):
    """A planted bug: every item gets the label of a random image of the set, drawn afresh on
    each access, so no image keeps its label from one step to the next."""

    rng = np.random.default_rng(0)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, _ = super().__getitem__(i)
        row = int(self.rng.choice(self.indices))
        return image, torch.as_tensor(self.targets[row])


def test_check_passes_on_a_correct_tiny_pipeline(tiny_project: Path) -> None:
    result = run_check(tiny_project, max_steps=150)
    assert result.passed, result.reason
    assert result.losses[-1] <= result.threshold < result.losses[0]
    assert len(result.losses) < 150  # it stopped once the loss stayed near zero
    assert result.out_dir.parent == tiny_project.parent.parent / "checks"
    assert result.input_batch == result.out_dir / "plots" / "input_batch.png"
    assert result.input_batch.read_bytes()[:8] == PNG_MAGIC
    saved = json.loads((result.out_dir / "check.json").read_text())
    assert saved["result"] == "PASS" and saved["losses"] == result.losses


def test_check_fails_when_labels_are_shuffled_every_step(
    tiny_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check_module, "ImageDataset", ShuffledLabels)
    result = run_check(tiny_project, max_steps=80)
    assert not result.passed
    assert len(result.losses) == 80
    assert min(result.losses[-10:]) > result.threshold
    assert "can't memorise" in result.reason
    assert json.loads((result.out_dir / "check.json").read_text())["result"] == "FAIL"


@pytest.mark.parametrize("loss", ["focal", "weighted_ce"])
def test_focal_loss_and_class_weights_train_as_a_one_override_change(
    tiny_project: Path, loss: str
) -> None:
    result = run_check(tiny_project, [f"train.loss={loss}"], max_steps=150)
    assert result.passed, result.reason


def test_the_probe_batch_holds_every_class() -> None:
    from medalist.tasks.classify import ClassifyTask
    from medalist.tasks.metrics import get_metric

    y = np.array([0] * 50 + [1] * 5 + [2] * 3)
    task = ClassifyTask("multiclass", ["label"], [0, 1, 2], get_metric("accuracy"), "id")
    rows = pick_rows(task, y, 8, seed=0)
    assert len(rows) == 8 and len(set(rows)) == 8
    assert set(y[rows]) == {0, 1, 2}


@pytest.mark.slow
def test_check_command_prints_the_trajectory_and_exits_1_on_fail(tiny_project: Path) -> None:
    r = medalist("check", str(tiny_project), "--steps", "5", "--threshold", "1e-9")
    assert r.returncode == 1, r.stderr
    assert "FAIL" in r.stdout and "step    5" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["configs/missing.yaml"], "missing.yaml"),
        (["configs/baseline.yaml", "--images", "0"], "--images"),
        (["configs/baseline.yaml", "train.lrr=0.1"], "train.lr"),
    ],
)
def test_check_bad_input_exits_2_with_one_line(tiny_project: Path, args, names) -> None:
    r = medalist("check", *args, cwd=tiny_project.parent.parent)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and names in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tiny_project.parent.parent / "checks").exists()
