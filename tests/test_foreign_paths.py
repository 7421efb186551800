"""Image columns holding paths of another machine (a table made in a Kaggle notebook names
/kaggle/input/<slug>/train_images/x.jpg; one made on Windows C:\\data\\train\\x.jpg): the
images are read from the local image folder, and `medalist new` finds that folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import QUICK_RUN, assert_one_line_error, medalist, train_then_predict
from PIL import Image

from medalist.data.tables import local_names
from medalist.workflows.scaffold import create_project


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), (value, 255 - value, 40)).save(path)


def _names(*values: str) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def test_another_machines_absolute_paths_lose_the_folders_that_exist_nowhere_here(
    tmp_path: Path,
) -> None:
    _image(tmp_path / "train" / "a.jpg", 10)
    _image(tmp_path / "train" / "b.jpg", 20)
    names = _names("/kaggle/input/comp/train/a.jpg", "/kaggle/input/comp/train/b.jpg")
    assert local_names(names, tmp_path / "train").tolist() == ["a.jpg", "b.jpg"]
    # Read from the data folder, the paths keep the folder that exists under it.
    assert local_names(names, tmp_path).tolist() == ["train/a.jpg", "train/b.jpg"]


def test_windows_paths_absolute_or_relative_are_read_with_their_folders(tmp_path: Path) -> None:
    _image(tmp_path / "train" / "a.jpg", 10)
    names = _names(r"C:\Users\me\comp\train\a.jpg", r"C:\Users\me\comp\train\c.jpg")
    assert local_names(names, tmp_path).tolist() == ["train/a.jpg", "train/c.jpg"]
    assert local_names(_names(r"train\a.jpg"), tmp_path).tolist() == ["train/a.jpg"]


def test_absolute_paths_that_exist_here_or_resolve_nowhere_are_kept_as_written(
    tmp_path: Path,
) -> None:
    _image(tmp_path / "train" / "a.jpg", 10)
    own = _names(str(tmp_path / "train" / "a.jpg"))
    assert local_names(own, tmp_path / "elsewhere").tolist() == own.tolist()
    lost = _names("/kaggle/input/comp/train/zzz.jpg")
    assert local_names(lost, tmp_path).tolist() == lost.tolist()
    relative = _names("train/a.jpg")
    assert local_names(relative, tmp_path).tolist() == ["train/a.jpg"]


def test_only_names_under_the_dropped_folders_change(tmp_path: Path) -> None:
    _image(tmp_path / "a.jpg", 10)
    names = _names("/kaggle/input/comp/train/a.jpg", "/mnt/other/b.jpg", "c.jpg")
    assert local_names(names, tmp_path).tolist() == ["a.jpg", "/mnt/other/b.jpg", "c.jpg"]


def _competition(root: Path) -> Path:
    """Twelve training and three test images whose tables name them by a Kaggle path."""
    prefix = "/kaggle/input/some-competition"
    rows = []
    for i in range(12):
        _image(root / "train_images" / f"im{i}.jpg", 15 * i)
        rows.append({"image_id": f"im{i}", "path": f"{prefix}/train_images/im{i}.jpg"})
    train = pd.DataFrame(rows).assign(label=["cat", "dog"] * 6)
    train.to_csv(root / "train.csv", index=False)
    test = [{"image_id": f"t{i}", "path": f"{prefix}/test_images/t{i}.jpg"} for i in range(3)]
    for i in range(3):
        _image(root / "test_images" / f"t{i}.jpg", 60 * i)
    pd.DataFrame(test).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"image_id": ["t0", "t1", "t2"], "label": "cat"}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def test_new_finds_the_image_folders_of_a_table_of_kaggle_paths_and_says_so(
    tmp_path: Path,
) -> None:
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp"))
    assert report.unresolved == []
    assert report.inferred["competition.image_column"] == "path"
    assert report.inferred["competition.image_dir"] == "data/train_images"
    assert report.inferred["competition.test_image_dir"] == "data/test_images"
    assert report.reasons["competition.image_dir"].endswith(
        "another machine's folders /kaggle/input/some-competition/train_images/ dropped"
    )
    assert report.inferred["data.image_size"] == "12"  # the images were opened


@pytest.mark.slow
def test_a_project_whose_table_names_kaggle_paths_trains_and_submits(tmp_path: Path) -> None:
    create_project(tmp_path / "proj", _competition(tmp_path / "comp"))
    sub = train_then_predict(tmp_path / "proj", "kaggle-paths")
    assert sub["image_id"].tolist() == ["t0", "t1", "t2"]
    assert set(sub["label"]) <= {"cat", "dog"}


def test_a_kaggle_path_under_no_image_folder_here_is_a_one_line_error(tmp_path: Path) -> None:
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp"))
    (tmp_path / "comp" / "train_images" / "im0.jpg").unlink()
    (tmp_path / "comp" / "train_images" / "im1.jpg").unlink()
    done = medalist("train", str(report.config_path), *QUICK_RUN, "--name", "bad")
    assert_one_line_error(done, "2 of 12 training images are missing")
    assert not (tmp_path / "proj" / "runs" / "bad").exists()


def test_test_ids_without_the_training_tables_image_column_name_their_files_by_id(
    tmp_path: Path,
) -> None:
    """train.csv names its files in a path column; the test ids (the sample's) don't."""
    data = tmp_path / "comp"
    rows = []
    for i in range(8):
        _image(data / "train" / f"im{i}.png", 20 * i)
        rows.append({"id": f"im{i}", "path": f"train/im{i}.png", "label": i % 2})
    pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
    for name in ("t0", "t1"):
        _image(data / "test" / f"{name}.png", 90)
    pd.DataFrame({"id": ["t0", "t1"], "label": 0}).to_csv(
        data / "sample_submission.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.image_column"] == "path"
    sub = train_then_predict(tmp_path / "proj", "by-id", "data.image_size=8")
    assert sub["id"].tolist() == ["t0", "t1"]
