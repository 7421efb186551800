"""A training folder whose images are named by their class (Dogs vs. Cats: train/cat.0.jpg,
train/dog.0.jpg) and no table: `medalist new` writes the table, and a test set whose ids are
numbers (1, 2, ...) still finds its images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import train_then_predict
from PIL import Image

from medalist.config import load_config
from medalist.errors import UserError
from medalist.workflows.scaffold import create_project
from medalist.workflows.scaffold.tables import named_classes


def _dogs_and_cats(root: Path, names: tuple[str, ...] = ("cat.{}.jpg", "dog.{}.jpg")) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for k, pattern in enumerate(names):
        for i in range(6):
            Image.new("RGB", (10, 8), (200 * k, 30 * i, 90)).save(
                root / "train" / pattern.format(i)
            )
    for i in (1, 2, 3):
        Image.new("RGB", (10, 8), (100, 60, 90)).save(root / "test" / f"{i}.jpg")
    pd.DataFrame({"id": [1, 2, 3], "label": 0.5}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def test_images_named_by_class_become_a_table_named_like_the_sample(tmp_path: Path) -> None:
    data = _dogs_and_cats(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    table = pd.read_csv(tmp_path / "proj" / "configs" / "train_folders.csv")
    assert list(table.columns) == ["id", "label"]
    assert len(table) == 12
    assert dict(zip(table["id"], table["label"], strict=True))["dog.3.jpg"] == "dog"
    assert sorted(table["label"].unique()) == ["cat", "dog"]
    assert report.reasons["competition.train_csv"].endswith(
        "its class the first part of its file name"
    )
    cfg = load_config(report.config_path)
    assert cfg.path(cfg.competition.image_dir).resolve() == (data / "train").resolve()
    assert cfg.path(cfg.competition.test_image_dir).resolve() == (data / "test").resolve()


def _train_folder(data: Path, counts: dict[str, int]) -> Path:
    """A data folder whose train/ holds `counts[pattern]` images named by each pattern."""
    (data / "train").mkdir(parents=True)
    for k, (pattern, n) in enumerate(counts.items()):
        for i in range(n):
            Image.new("RGB", (4, 4), (k, i, 0)).save(data / "train" / pattern.format(i))
    return data


@pytest.mark.parametrize(
    "names",
    [("cat_{}.png", "dog_{}.png"), ("Golden Retriever-{}.png", "Pug-{}.png")],
)
def test_underscores_dashes_and_spaces_name_classes_too(tmp_path: Path, names: tuple) -> None:
    data = _train_folder(tmp_path / "comp", {pattern: 5 for pattern in names})
    found = named_classes(data)
    assert found is not None
    assert sorted(found[1]["label"].unique()) == sorted(p.split("{")[0][:-1] for p in names)


@pytest.mark.parametrize(
    "names",
    [
        ("img_{}.png",),  # one prefix: ids, not classes
        ("p1_{}.png", "p2_{}.png"),  # letters and digits: patients or sites, not classes
        ("a9f{}.png", "b3c{}.png"),  # no separator before a digit: hashes
    ],
)
def test_names_that_are_ids_make_no_table_and_the_error_stays(tmp_path: Path, names: tuple) -> None:
    data = _train_folder(tmp_path / "comp", {pattern: 6 for pattern in names})
    assert named_classes(data) is None
    with pytest.raises(UserError, match="no train.csv"):
        create_project(tmp_path / "proj", data)


def test_classes_of_fewer_than_five_images_are_taken_for_names(tmp_path: Path) -> None:
    data = _train_folder(tmp_path / "comp", {"cat.{}.png": 6, "dog.{}.png": 4})
    assert named_classes(data) is None


def test_a_project_of_images_named_by_class_trains_and_submits_for_numbered_test_ids(
    tmp_path: Path,
) -> None:
    create_project(tmp_path / "proj", _dogs_and_cats(tmp_path / "comp"))
    sub = train_then_predict(tmp_path / "proj", "named", "data.image_size=16")
    assert sub["id"].tolist() == [1, 2, 3]
    assert sub["label"].between(0, 1).all()
