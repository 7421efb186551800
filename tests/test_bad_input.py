"""Wrong input ends with exit code 2, one line naming the file/row/key, no traceback, and
nothing already written is changed."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import medalist

from medalist.cli import main


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["medalist", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    return exit_info.value.code, err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def train_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, config: Path, *extra: str
) -> str:
    project = config.parent.parent
    before = snapshot(project)
    code, err = run_cli(monkeypatch, capsys, "train", str(config), *extra)
    assert snapshot(project) == before, "a failed command changed files"
    assert_user_error(code, err)
    return err


def edit_train_csv(config: Path, change) -> None:
    path = config.parent.parent / "data" / "train.csv"
    df = change(pd.read_csv(path))
    df.to_csv(path, index=False)


def test_missing_train_csv_names_the_file_and_key(tiny_project, monkeypatch, capsys):
    (tiny_project.parent.parent / "data" / "train.csv").unlink()
    err = train_fails(monkeypatch, capsys, tiny_project)
    assert "train.csv" in err and "competition.train_csv" in err


def test_missing_id_column_lists_the_columns_there_are(tiny_project, monkeypatch, capsys):
    edit_train_csv(tiny_project, lambda df: df.rename(columns={"id": "image"}))
    err = train_fails(monkeypatch, capsys, tiny_project)
    assert "'id'" in err and "competition.id_column" in err and "image" in err


def test_missing_target_column_names_the_key(tiny_project, monkeypatch, capsys):
    err = train_fails(monkeypatch, capsys, tiny_project, "competition.target_column=klass")
    assert "'klass'" in err and "competition.target_column" in err


def test_missing_images_are_named_and_counted(tiny_project, monkeypatch, capsys):
    train_dir = tiny_project.parent.parent / "data" / "train"
    for name in ("img_0003.png", "img_0007.png"):
        (train_dir / name).unlink()
    err = train_fails(monkeypatch, capsys, tiny_project)
    assert "2 of 36" in err and "img_0003.png" in err and "img_0007.png" in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_or_truncated_image_is_named(tiny_project, monkeypatch, capsys, damage):
    path = tiny_project.parent.parent / "data" / "train" / "img_0005.png"
    data = path.read_bytes()
    path.write_bytes(b"not an image at all" if damage == "garbage" else data[: len(data) // 2])
    err = train_fails(monkeypatch, capsys, tiny_project, "data.cache=false")
    assert "img_0005.png" in err and ("unreadable" in err or "truncated" in err)


def test_target_outside_the_competition_classes_names_the_line(tiny_project, monkeypatch, capsys):
    err = train_fails(monkeypatch, capsys, tiny_project, "competition.classes=[bar_h, bar_v]")
    assert "'dot'" in err and "line" in err


def test_duplicate_ids_are_named_with_their_lines(tiny_project, monkeypatch, capsys):
    edit_train_csv(
        tiny_project, lambda df: df.assign(id=df["id"].where(df.index != 4, df["id"][1]))
    )
    err = train_fails(monkeypatch, capsys, tiny_project)
    assert "duplicate" in err and "img_0001" in err and "[3, 6]" in err


def test_nan_in_the_target_names_the_line(tiny_project, monkeypatch, capsys):
    edit_train_csv(tiny_project, lambda df: df.assign(label=df["label"].where(df.index != 2)))
    err = train_fails(monkeypatch, capsys, tiny_project)
    assert "NaN" in err and "'label'" in err and "[4]" in err


def test_group_column_named_but_absent(tiny_project, monkeypatch, capsys):
    err = train_fails(
        monkeypatch, capsys, tiny_project, "cv.scheme=group", "competition.group_column=patient"
    )
    assert "'patient'" in err and "competition.group_column" in err


def test_unknown_config_key_suggests_the_nearest(tiny_project, monkeypatch, capsys):
    err = train_fails(monkeypatch, capsys, tiny_project, "train.batchsize=4")
    assert "did you mean train.batch_size" in err


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.lr=-1", "train.lr"),
        ("cv.n_splits=20", "cv.n_splits"),
        ("train.epochs=x", "train.epochs"),
    ],
)
def test_value_of_wrong_type_or_range_names_the_key(
    tiny_project, monkeypatch, capsys, override, needle
):
    err = train_fails(monkeypatch, capsys, tiny_project, override)
    assert needle in err


def test_unknown_backbone_suggests_timm_names(tiny_project, monkeypatch, capsys):
    err = train_fails(monkeypatch, capsys, tiny_project, "model.backbone=resnet181")
    assert "model.backbone" in err and "resnet18" in err


def test_missing_pretrained_file_names_the_path(tiny_project, monkeypatch, capsys):
    err = train_fails(monkeypatch, capsys, tiny_project, "model.pretrained=models/none.pth")
    assert "models/none.pth" in err and "not found" in err


def test_unknown_augmentation_names_the_step(tiny_project, monkeypatch, capsys):
    err = train_fails(monkeypatch, capsys, tiny_project, "data.augment=[{name: Flipper}]")
    assert "data.augment[0]" in err and "Flipper" in err


def test_missing_test_images_fail_predict_without_touching_the_run(
    trained_run, monkeypatch, capsys
):
    project = trained_run.parent.parent
    (project / "data" / "test" / "t_004.png").unlink()
    before = snapshot(project)
    code, err = run_cli(monkeypatch, capsys, "predict", str(trained_run))
    assert_user_error(code, err, "t_004.png", "test")
    assert snapshot(project) == before


def test_nan_loss_stops_the_fold_naming_the_epoch(tiny_project, monkeypatch, capsys):
    import torch

    from medalist.tasks.classify import ClassifyTask

    class NanLoss(torch.nn.Module):
        def forward(self, out, y):
            return out.sum() * float("nan")

    monkeypatch.setattr(ClassifyTask, "create_loss", lambda self, cfg, y: NanLoss())
    code, err = run_cli(monkeypatch, capsys, "train", str(tiny_project), "--name", "nan")
    assert_user_error(code, err, "fold 0 epoch 1", "lower train.lr")


def test_existing_run_name_is_never_overwritten(trained_run, monkeypatch, capsys):
    config = trained_run.parent.parent / "configs" / "baseline.yaml"
    before = snapshot(trained_run)
    code, err = run_cli(monkeypatch, capsys, "train", str(config), "--name", trained_run.name)
    assert_user_error(code, err, "already exists", "--resume")
    assert snapshot(trained_run) == before


def test_cli_reports_user_errors_without_traceback_in_a_real_process(tiny_project):
    proc = medalist("train", str(tiny_project), "model.backbone=nope_net")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and "model.backbone" in proc.stderr


def test_a_label_outside_competition_classes_names_its_line(tiny_project, monkeypatch, capsys):
    edit_train_csv(tiny_project, lambda df: df.assign(label=df["label"].replace({"dot": "star"})))
    err = train_fails(monkeypatch, capsys, tiny_project, "competition.classes=[bar_h,bar_v,dot]")
    assert "is not one of the competition's classes" in err and "'star'" in err
    assert "line 4" in err  # the first 'dot' row: every third row, from the third


def test_resuming_after_a_new_label_appeared_names_the_line(tiny_project, monkeypatch, capsys):
    from medalist.workflows.train import train

    run = train(tiny_project, name="r", folds="0").run.path
    edit_train_csv(tiny_project, lambda df: df.assign(label=df["label"].replace({"dot": "star"})))
    project = tiny_project.parent.parent
    before = snapshot(project)
    code, err = run_cli(monkeypatch, capsys, "train", "--resume", str(run))
    assert_user_error(code, err, "line 4", "'star' is not among the classes the run was trained")
    assert snapshot(project) == before
