"""Competition tables saved otherwise than pandas' defaults: separated by semicolons or tabs (a
spreadsheet where the comma is the decimal mark, a .tsv), or with the row index written as an
unnamed first column (pandas' `to_csv` with index=True, R's `write.csv`). They are read as the
host meant them, by `medalist new`, training, prediction and the offline check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import train_then_predict
from PIL import Image

from medalist.io import read_table_csv
from medalist.kaggle.check import read_submission
from medalist.workflows.scaffold import create_project

FRAME = pd.DataFrame({"id": ["a1", "b2", "c3"], "label": [0, 1, 0], "score": [0.5, 1.5, 2.5]})


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_table_separated_otherwise_is_read_by_its_separator(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "train.csv"
    FRAME.to_csv(path, index=False, sep=sep)
    pd.testing.assert_frame_equal(read_table_csv(path, "train"), FRAME)
    pd.testing.assert_frame_equal(read_submission(path), FRAME)


def test_a_comma_table_whose_values_hold_semicolons_stays_a_comma_table(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    frame = FRAME.assign(tags=["x;y", "y", "x"])
    frame.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_table_csv(path, "train"), frame)


@pytest.mark.parametrize("index", [[0, 1, 2], [1, 2, 3], [80, 81, 95], [7, 3, 5]])
def test_a_written_row_index_is_dropped(tmp_path: Path, index: list[int]) -> None:
    path = tmp_path / "train.csv"
    FRAME.set_axis(index).to_csv(path)  # index=True: an unnamed first column
    pd.testing.assert_frame_equal(read_table_csv(path, "train"), FRAME)
    pd.testing.assert_frame_equal(read_submission(path), FRAME)


def test_an_unnamed_first_column_that_is_no_index_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    FRAME.set_axis([5, 5, 6]).to_csv(path)  # repeated: not a row index
    assert list(read_table_csv(path, "train").columns) == ["Unnamed: 0", "id", "label", "score"]
    named = tmp_path / "named.csv"
    FRAME.assign(id=[0, 1, 2]).to_csv(named, index=False)  # a named id column of 0, 1, 2
    assert read_table_csv(named, "train")["id"].tolist() == [0, 1, 2]


def _competition(root: Path, **to_csv: object) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for i in range(8):
        Image.new("L", (8, 8), 30 * i).save(root / "train" / f"im{i}.png")
    for i in range(2):
        Image.new("L", (8, 8), 90).save(root / "test" / f"t{i}.png")
    train = pd.DataFrame({"image_id": [f"im{i}" for i in range(8)], "label": [0, 1] * 4})
    train.to_csv(root / "train.csv", **to_csv)
    sample = pd.DataFrame({"image_id": ["t0", "t1"], "label": 0}).set_axis([8, 9])
    sample.to_csv(root / "sample_submission.csv", **to_csv)
    return root


@pytest.mark.parametrize(
    "to_csv", [{"index": True}, {"index": False, "sep": ";"}], ids=["index", "semicolon"]
)
def test_new_infers_the_columns_of_tables_saved_otherwise(tmp_path: Path, to_csv: dict) -> None:
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", **to_csv))
    assert report.unresolved == []
    assert report.inferred["competition.id_column"] == "image_id"
    assert report.inferred["competition.target_column"] == "label"
    assert report.inferred["competition.test_image_dir"] == "data/test"


def test_a_project_of_semicolon_tables_with_a_written_index_trains_and_submits(
    tmp_path: Path,
) -> None:
    data = _competition(tmp_path / "comp", index=True, sep=";")
    create_project(tmp_path / "proj", data)
    sub = train_then_predict(tmp_path / "proj", "dialect", "data.image_size=8")
    assert list(sub.columns) == ["image_id", "label"]  # comma-separated, no index
    assert sub["image_id"].tolist() == ["t0", "t1"]
