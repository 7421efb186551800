"""Images kept in subfolders named by other columns (train_images/<patient_id>/<image_id>.png,
as RSNA's scans are): `competition.image_pattern`, which `medalist new` infers, and the
project trains and submits through it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import QUICK_RUN, assert_one_line_error, medalist, train_then_predict
from PIL import Image

from medalist.config import load_config
from medalist.workflows.scaffold import create_project


def _scans(root: Path) -> Path:
    """Eight training scans of four patients and three test scans of one, each in its
    patient's folder; the tables name patient and image, never the file."""
    rows, test_rows = [], []
    for i in range(8):
        patient, image = 100 + i // 2, 5000 + i
        path = root / "train_images" / str(patient) / f"{image}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (12, 12), 40 + 20 * i).save(path)
        rows.append({"site_id": 1, "patient_id": patient, "image_id": image, "cancer": i % 2})
    for i in range(3):
        patient, image = 900, 9000 + i
        path = root / "test_images" / str(patient) / f"{image}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (12, 12), 90).save(path)
        test_rows.append({"site_id": 1, "patient_id": patient, "image_id": image})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    pd.DataFrame(test_rows).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"image_id": [9000, 9001, 9002], "cancer": 0}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def test_new_finds_images_in_subfolders_named_by_a_column_and_writes_the_pattern(
    tmp_path: Path,
) -> None:
    report = create_project(tmp_path / "proj", _scans(tmp_path / "comp"))
    assert report.unresolved == []
    assert report.inferred["competition.image_pattern"] == "{patient_id}/{image_id}.png"
    assert report.reasons["competition.image_pattern"] == "subfolders named by patient_id"
    assert report.inferred["competition.image_dir"] == "data/train_images"
    assert report.inferred["competition.test_image_dir"] == "data/test_images"
    cfg = load_config(report.config_path)
    assert cfg.competition.image_pattern == "{patient_id}/{image_id}.png"
    assert cfg.competition.group_column == "patient_id"


def test_a_project_of_images_in_subfolders_trains_and_submits(tmp_path: Path) -> None:
    create_project(tmp_path / "proj", _scans(tmp_path / "comp"))
    sub = train_then_predict(tmp_path / "proj", "nested")
    assert sub["image_id"].tolist() == [9000, 9001, 9002]
    assert set(sub["cancer"]) <= {0, 1}


def test_a_pattern_naming_a_column_the_table_lacks_is_a_one_line_error(tmp_path: Path) -> None:
    report = create_project(tmp_path / "proj", _scans(tmp_path / "comp"))
    done = medalist(
        "train",
        str(report.config_path),
        *QUICK_RUN,
        "competition.image_pattern={study_id}/{image_id}.png",
        "--name",
        "bad",
    )
    assert_one_line_error(done, "names column 'study_id', which this table lacks")
    assert not (tmp_path / "proj" / "runs" / "bad" / "oof.csv").exists()


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("competition.image_pattern=images/scan.png", "name the columns in braces"),
        ("competition.image_pattern={patient_id/{image_id}.png", "name the columns in braces"),
        ("competition.image_column=image_id", "set image_column or image_pattern, not both"),
        ("competition.image_pattern={image_id.real}.png", "name the columns in braces"),
        ("competition.image_pattern={image_id[9]}/{image_id}.png", "a character past the end"),
    ],
)
def test_a_pattern_without_columns_or_beside_an_image_column_is_a_one_line_error(
    tmp_path: Path, override: str, says: str
) -> None:
    report = create_project(tmp_path / "proj", _scans(tmp_path / "comp"))
    done = medalist("train", str(report.config_path), *QUICK_RUN, override, "--name", "bad")
    assert_one_line_error(done, says)


def test_a_test_table_without_the_patterns_columns_leaves_the_test_folder_to_check(
    tmp_path: Path,
) -> None:
    data = _scans(tmp_path / "comp")
    (data / "test.csv").unlink()  # the sample lists image ids only
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.image_pattern"] == "{patient_id}/{image_id}.png"
    assert any(s.startswith("competition.test_image_dir:") for s in report.unresolved)


def _landmarks(root: Path) -> Path:
    """Google Landmarks' layout: train/<id[0]>/<id[1]>/<id[2]>/<id>.jpg, and test/ the same."""
    ids = {"train": ["a3f09c", "a3e771", "b01d2e", "c9d0aa"], "test": ["d41d8c", "e0b2f1"]}
    for split, names in ids.items():
        for i, name in enumerate(names):
            path = root / split / name[0] / name[1] / name[2] / f"{name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12), (40 * i, 90, 200)).save(path)
    pd.DataFrame({"id": ids["train"], "landmark": [7, 7, 9, 9]}).to_csv(
        root / "train.csv", index=False
    )
    pd.DataFrame({"id": ids["test"], "landmark": 7}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def test_new_finds_images_in_folders_named_by_the_ids_first_characters(tmp_path: Path) -> None:
    report = create_project(tmp_path / "proj", _landmarks(tmp_path / "comp"))
    assert report.inferred["competition.image_pattern"] == "{id[0]}/{id[1]}/{id[2]}/{id}.jpg"
    assert report.reasons["competition.image_pattern"] == "subfolders named by id[0], id[1], id[2]"
    assert report.inferred["competition.image_dir"] == "data/train"
    assert report.inferred["competition.test_image_dir"] == "data/test"
    assert report.unresolved == []


def test_a_project_of_images_in_folders_of_the_ids_characters_trains_and_submits(
    tmp_path: Path,
) -> None:
    create_project(tmp_path / "proj", _landmarks(tmp_path / "comp"))
    sub = train_then_predict(tmp_path / "proj", "landmarks")
    assert sub["id"].tolist() == ["d41d8c", "e0b2f1"]
    assert set(sub["landmark"]) <= {7, 9}
