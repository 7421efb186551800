"""`medalist new`: project layout and a baseline config inferred from tiny fake competitions."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import require_tool
from PIL import Image

from medalist.config import load_config
from medalist.errors import UserError
from medalist.workflows.scaffold import TODO, create, create_project, render_report


def _images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (8, 8), (i * 20 % 256, 0, 0)).save(folder / name)


def _csv(path: Path, rows: dict[str, list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _competition(tmp_path: Path, train: dict[str, list], *, sub=None, test=None) -> Path:
    data = tmp_path / "comp"
    _csv(data / "train.csv", train)
    if sub is not None:
        _csv(data / "sample_submission.csv", sub)
    if test is not None:
        _csv(data / "test.csv", test)
    return data


def _plain(tmp_path: Path) -> Path:
    ids = [f"a{i}" for i in range(6)]
    data = _competition(
        tmp_path,
        {"id": ids, "label": ["cat", "dog", "bird"] * 2},
        sub={"id": ["t0", "t1"], "label": ["cat", "cat"]},
        test={"id": ["t0", "t1"]},
    )
    _images(data / "train", [f"{i}.png" for i in ids])
    _images(data / "test", ["t0.png", "t1.png"])
    return data


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _config_line(project: Path, key: str) -> str:
    text = (project / "configs" / "baseline.yaml").read_text()
    return next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))


def test_plain_multiclass_ids_without_extension_infers_columns_and_folders(tmp_path):
    report = create_project(tmp_path / "proj", _plain(tmp_path))

    inf = report.inferred
    assert inf["competition.id_column"] == "id"
    assert inf["competition.target_column"] == "label"
    assert inf["competition.image_column"] == "null"
    assert inf["competition.image_ext"] == ".png"
    assert inf["competition.image_dir"] == "data/train"
    assert inf["competition.test_image_dir"] == "data/test"
    assert inf["competition.test_csv"] == "data/test.csv"
    assert inf["competition.sample_submission"] == "data/sample_submission.csv"
    assert inf["competition.group_column"] == "null"
    assert inf["competition.target_type"] == "auto"
    assert inf["competition.metric"] == "accuracy"
    assert inf["cv.scheme"] == "stratified"
    assert report.unresolved == []

    project = tmp_path / "proj"
    assert report.root == project.absolute()
    assert report.config_path == project.absolute() / "configs" / "baseline.yaml"
    cfg = load_config(report.config_path)
    assert cfg.competition.name == "proj"
    assert cfg.competition.image_column is None
    assert cfg.path(cfg.competition.train_csv).is_file()
    assert (cfg.path(cfg.competition.image_dir) / "a0.png").is_file()
    assert (project / "data").is_symlink()
    assert Path(os.readlink(project / "data")) == (tmp_path / "comp").resolve()
    for sub in ("configs", "models", "runs", "folds"):
        assert (project / sub).is_dir()
    readme = (project / "readme.md").read_text()
    for command in (
        "medalist folds configs/baseline.yaml",
        "medalist train configs/baseline.yaml",
        "medalist predict runs/<name>",
        "medalist runs",
    ):
        assert command in readme
    assert TODO not in report.config_path.read_text()


@pytest.mark.parametrize(
    ("images", "rows_per_image", "batch"),
    [(6, 1, 16), (500, 1, 16), (1000, 1, 32), (1999, 1, 32), (2000, 1, 64), (1000, 4, 32)],
)
def test_the_batch_new_writes_keeps_25_updates_an_epoch(
    tmp_path: Path, images: int, rows_per_image: int, batch: int
) -> None:
    """A small set gets a smaller batch (a baseline of a few epochs is short of updates);
    a row per box or class repeats an image, and the images are what an epoch goes over."""
    ids = [f"a{i}" for i in range(images) for _ in range(rows_per_image)]
    data = _competition(
        tmp_path,
        {"id": ids, "label": (["cat", "dog"] * len(ids))[: len(ids)]},
        sub={"id": ["t0"], "label": ["cat"]},
    )
    _images(data / "train", [f"a{i}.png" for i in range(min(images, 30))])
    _images(data / "test", ["t0.png"])
    report = create_project(tmp_path / "proj", data)
    assert load_config(report.config_path).train.batch_size == batch
    train = images * 4 // 5
    assert report.inferred["train.batch_size"] == str(batch)
    assert f"{train} training images a fold: {train // batch} updates" in render_report(report)


def test_config_has_a_comment_above_every_section_and_validates(tmp_path):
    report = create_project(tmp_path / "proj", _plain(tmp_path))
    lines = report.config_path.read_text().splitlines()
    sections = ["competition", "cv", "model", "data", "train", "track"]
    for section in sections:
        i = lines.index(f"{section}:")
        assert lines[i - 1].startswith("# ")
    assert list(yaml.safe_load(report.config_path.read_text())) == sections


def test_ids_with_image_extension_make_the_id_the_image_column(tmp_path):
    names = [f"x{i}.jpg" for i in range(5)]
    data = _competition(
        tmp_path,
        {"image_id": names, "label": [0, 1, 0, 1, 1]},
        sub={"image_id": ["y0.jpg"], "label": [0]},
    )
    _images(data / "train_images", names)
    _images(data / "test_images", ["y0.jpg"])

    report = create_project(tmp_path / "proj", data)

    inf = report.inferred
    assert inf["competition.id_column"] == "image_id"
    assert inf["competition.image_column"] == "image_id"
    assert inf["competition.image_ext"] == ".jpg"
    assert inf["competition.image_dir"] == "data/train_images"
    assert inf["competition.test_image_dir"] == "data/test_images"
    assert inf["competition.test_csv"] == "null"
    assert report.unresolved == []
    cfg = load_config(report.config_path)
    assert cfg.competition.test_csv is None
    assert cfg.competition.image_column == "image_id"


def test_a_column_of_file_paths_becomes_the_image_column(tmp_path):
    paths = [f"train/a{i}.png" for i in range(4)]
    data = _competition(tmp_path, {"id": [1, 2, 3, 4], "path": paths, "label": [1, 2, 1, 2]})
    _images(data / "train", [Path(p).name for p in paths])

    report = create_project(tmp_path / "proj", data)

    assert report.inferred["competition.id_column"] == "id"
    assert report.inferred["competition.image_column"] == "path"
    assert report.inferred["competition.image_dir"] == "data"
    cfg = load_config(report.config_path)
    assert (cfg.path(cfg.competition.image_dir) / paths[0]).is_file()


def test_several_sample_submission_columns_make_a_multilabel_target(tmp_path):
    ids = [f"m{i}" for i in range(6)]
    data = _competition(
        tmp_path,
        {
            "image_id": ids,
            "healthy": [1, 0, 0, 1, 0, 0],
            "rust": [0, 1, 0, 0, 1, 1],
            "scab": [0, 1, 1, 0, 0, 1],
        },
        sub={"image_id": ["q0"], "healthy": [0.5], "rust": [0.5], "scab": [0.5]},
    )
    _images(data / "images", [f"{i}.png" for i in [*ids, "q0"]])

    report = create_project(tmp_path / "proj", data)

    assert report.inferred["competition.target_column"] == "healthy, rust, scab"
    assert report.inferred["competition.target_type"] == "multilabel"
    # the sample's 0.5: probabilities, scored by a probability metric (to check)
    assert any(s.startswith("competition.metric: ") for s in report.unresolved)
    assert report.inferred["cv.scheme"] == "multilabel"
    assert report.inferred["competition.image_dir"] == "data/images"
    assert report.inferred["competition.test_image_dir"] == "data/images"
    cfg = load_config(report.config_path)
    assert cfg.target_columns == ["healthy", "rust", "scab"]
    assert cfg.competition.target_type == "multilabel"
    assert cfg.cv.scheme == "multilabel"
    assert cfg.competition.metric == "roc_auc"


@pytest.mark.parametrize(
    ("labels", "columns", "classes"),
    [
        (["dog", "cat", "bird", "cat"], ["bird", "cat", "dog"], ["bird", "cat", "dog"]),
        ([2, 0, 1, 1], ["0", "1", "2"], [0, 1, 2]),
    ],
)
def test_one_sample_submission_column_per_class_sets_classes(tmp_path, labels, columns, classes):
    ids = [f"p{i}" for i in range(len(labels))]
    sub = {"id": ["s0"], **{col: [1 / len(columns)] for col in columns}}
    data = _competition(tmp_path, {"id": ids, "kind": labels}, sub=sub)
    _images(data / "train", [f"{i}.png" for i in ids])
    _images(data / "test", ["s0.png"])

    report = create_project(tmp_path / "proj", data)

    assert report.inferred["competition.target_column"] == "kind"
    # the sample's 1/3 a class: probabilities, scored by a probability metric (to check)
    assert [s.split(":")[0] for s in report.unresolved] == ["competition.metric"]
    cfg = load_config(report.config_path)
    assert cfg.competition.target_column == "kind"
    assert cfg.competition.target_type == "auto"  # classes, not a score
    assert cfg.competition.classes == classes
    assert [str(c) for c in cfg.competition.classes] == columns


def test_a_group_column_gives_stratified_group_folds(tmp_path):
    ids = [f"g{i}" for i in range(6)]
    data = _competition(
        tmp_path,
        {"id": ids, "patient_id": ["a", "a", "b", "b", "c", "c"], "diagnosis": [0, 1] * 3},
        sub={"id": ["t0"], "diagnosis": [0]},
    )
    _images(data / "train", [f"{i}.png" for i in ids])
    _images(data / "test", ["t0.png"])

    report = create_project(tmp_path / "proj", data)

    assert report.inferred["competition.group_column"] == "patient_id"
    assert report.inferred["competition.target_column"] == "diagnosis"
    assert report.inferred["cv.scheme"] == "stratified_group"
    cfg = load_config(report.config_path)
    assert cfg.competition.group_column == "patient_id"
    assert cfg.cv.scheme == "stratified_group"


def test_a_non_integer_float_target_is_regression_with_rmse_and_kfold(tmp_path):
    ids = [f"r{i}" for i in range(4)]
    data = _competition(tmp_path, {"id": ids, "target": [0.5, 1.25, 3.0, 2.75]})
    _images(data / "train", [f"{i}.png" for i in ids])

    report = create_project(tmp_path / "proj", data)

    assert report.inferred["competition.target_type"] == "regression"
    assert report.inferred["competition.metric"] == "rmse"
    assert report.inferred["cv.scheme"] == "kfold"
    assert load_config(report.config_path).competition.metric == "rmse"


def test_a_target_not_found_by_name_is_guessed_listed_and_marked_todo(tmp_path):
    ids = [f"u{i}" for i in range(4)]
    data = _competition(tmp_path, {"id": ids, "width": [8] * 4, "outcome": [0, 1, 0, 1]})
    _images(data / "train", [f"{i}.png" for i in ids])

    report = create_project(tmp_path / "proj", data)

    assert "competition.target_column" not in report.inferred
    assert any(s.startswith("competition.target_column:") for s in report.unresolved)
    line = _config_line(report.root, "target_column")
    assert line.split("#")[0].strip() == "target_column: outcome"
    assert line.endswith(TODO)
    assert load_config(report.config_path).competition.target_column == "outcome"
    text = render_report(report)
    assert "competition.target_column" in text
    assert "TODO" in text


def test_ids_that_match_no_image_file_leave_image_dir_unresolved(tmp_path):
    data = _competition(tmp_path, {"id": ["a", "b"], "label": [0, 1]})
    _images(data / "train", ["other.png"])

    report = create_project(tmp_path / "proj", data)

    assert any(s.startswith("competition.image_dir:") for s in report.unresolved)
    assert _config_line(report.root, "image_dir").endswith(TODO)
    assert load_config(report.config_path).competition.image_dir == "data/train"


def test_render_report_names_what_was_inferred_and_the_next_commands(tmp_path):
    report = create_project(tmp_path / "proj", _plain(tmp_path))
    text = render_report(report)
    assert "competition.id_column" in text
    assert "medalist folds configs/baseline.yaml" in text
    assert "Nothing left to check" in text


def test_gitignore_keeps_data_runs_folds_and_tracker_files_out_of_git(tmp_path):
    report = create_project(tmp_path / "proj", _plain(tmp_path))
    lines = (report.root / ".gitignore").read_text().splitlines()
    for entry in ("runs/", "folds/", "mlruns.db", "mlartifacts/", ".cache/", "*.ckpt"):
        assert entry in lines
    assert "/data" in lines and "data/" in lines
    require_tool("git", "apt-get install -y git")
    subprocess.run(["git", "init", "-q"], cwd=report.root, check=True)
    (report.root / "runs" / "r1").mkdir()
    (report.root / "runs" / "r1" / "x.ckpt").write_text("")
    (report.root / "models" / "w.ckpt").write_text("")
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=report.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line[3:] for line in out.splitlines()}
    assert listed == {
        ".gitignore",
        "readme.md",
        "configs/baseline.yaml",
        "src/train.py",
        "src/predict.py",
        "scripts/sweep.sh",
    }


def test_without_symlinks_the_config_holds_absolute_data_paths(tmp_path, monkeypatch):
    def no_symlink(*args, **kwargs):
        raise OSError("symlinks are not allowed here")

    monkeypatch.setattr(create.os, "symlink", no_symlink)
    data = _plain(tmp_path)

    report = create_project(tmp_path / "proj", data)

    assert not report.data_linked
    assert not (report.root / "data").exists()
    cfg = load_config(report.config_path)
    assert Path(cfg.competition.train_csv).is_absolute()
    assert cfg.path(cfg.competition.train_csv) == data.resolve() / "train.csv"
    assert cfg.path(cfg.competition.image_dir) == data.resolve() / "train"
    assert "no link" in render_report(report)


def test_an_existing_empty_folder_is_used_and_name_overrides_the_folder_name(tmp_path):
    (tmp_path / "proj").mkdir()
    report = create_project(tmp_path / "proj", _plain(tmp_path), name="leaf-disease")
    assert load_config(report.config_path).competition.name == "leaf-disease"


def test_a_non_empty_dest_is_refused_and_left_unchanged(tmp_path):
    data = _plain(tmp_path)
    dest = tmp_path / "proj"
    (dest / "configs").mkdir(parents=True)
    (dest / "configs" / "baseline.yaml").write_text("mine: 1\n")
    (dest / "notes.txt").write_text("keep me")
    before = _snapshot(dest)

    with pytest.raises(UserError, match="not empty"):
        create_project(dest, data)

    assert _snapshot(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == ["configs", "notes.txt"]


def test_a_dest_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "proj").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        create_project(tmp_path / "proj", _plain(tmp_path))
    assert (tmp_path / "proj").read_text() == "x"


def test_a_missing_data_dir_is_a_user_error_and_writes_nothing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        create_project(tmp_path / "proj", tmp_path / "nowhere")
    assert not (tmp_path / "proj").exists()


def test_a_data_dir_without_train_csv_is_a_user_error_that_points_at_a_nested_one(tmp_path):
    data = tmp_path / "comp"
    _csv(data / "inner" / "train.csv", {"id": [1], "label": [0]})
    with pytest.raises(UserError, match="no train.csv") as err:
        create_project(tmp_path / "proj", data)
    assert "inner" in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "proj").exists()


def test_a_failure_while_writing_removes_what_was_made(tmp_path, monkeypatch):
    def boom(path, text):
        raise RuntimeError("disk full")

    monkeypatch.setattr(create, "_write", boom)
    with pytest.raises(RuntimeError):
        create_project(tmp_path / "proj", _plain(tmp_path))
    assert not (tmp_path / "proj").exists()
    assert (tmp_path / "comp" / "train.csv").is_file()
