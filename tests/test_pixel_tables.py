"""Competitions whose images are table rows, one column per pixel (Digit Recognizer: train.csv
of label, pixel0 ... pixel783 and no ids; test.csv of pixels alone; the sample's ImageId
numbering test.csv's rows; Kannada MNIST: test.csv with an id column): `medalist new` reads
them, training and prediction see the pixels as images, and bad keys are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import QUICK_RUN, assert_one_line_error, medalist, train_then_predict
from PIL import Image
from sklearn.datasets import load_digits

from medalist.config import load_config
from medalist.data.pixels import as_bytes, find_prefix, pixel_folder
from medalist.data.tables import load_tables
from medalist.workflows.scaffold import create_project


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data[:n] * 16).clip(0, 255).astype(int), digits.target[:n] % 3


def _pixel_table(pixels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(pixels, columns=[f"pixel{i}" for i in range(pixels.shape[1])])


def _digit_recognizer(root: Path, *, test_ids: bool = False, sample_rows: int = 6) -> Path:
    """24 training rows (8x8 digits, 3 classes) and 6 test rows, as Digit Recognizer ships."""
    root.mkdir(parents=True)
    x, y = _digits(30)
    train = _pixel_table(x[:24])
    train.insert(0, "label", y[:24])
    train.to_csv(root / "train.csv", index=False)
    test = _pixel_table(x[24:])
    if test_ids:  # Kannada MNIST: the test table carries its ids
        test.insert(0, "ImageId", range(1, 7))
    test.to_csv(root / "test.csv", index=False)
    ids = range(1, sample_rows + 1)
    pd.DataFrame({"ImageId": ids, "Label": 0}).to_csv(root / "sample_submission.csv", index=False)
    return root


def test_new_reads_a_table_of_pixels_as_images_with_numbered_rows(tmp_path: Path) -> None:
    report = create_project(tmp_path / "proj", _digit_recognizer(tmp_path / "comp"))
    assert report.unresolved == []
    inferred = report.inferred
    assert inferred["competition.pixel_columns"] == "pixel"
    assert inferred["competition.id_column"] == "ImageId"
    assert inferred["competition.target_column"] == "label"
    assert inferred["competition.task"] == "classify"
    assert inferred["competition.test_image_dir"] == "null"
    assert inferred["data.image_size"] == "8"
    cfg = load_config(report.config_path)
    assert cfg.competition.pixel_columns == "pixel"
    assert cfg.competition.image_shape is None


def test_each_row_is_read_as_the_image_its_pixels_draw(tmp_path: Path) -> None:
    report = create_project(tmp_path / "proj", _digit_recognizer(tmp_path / "comp"))
    cfg = load_config(report.config_path)
    tables = load_tables(cfg, need_test=True)
    x, _ = _digits(30)
    assert tables.train["ImageId"].tolist() == list(range(24))  # the rows, numbered
    assert tables.test["ImageId"].tolist() == [1, 2, 3, 4, 5, 6]  # the sample's, row for row
    for row, path in [(3, tables.train_paths[3]), (24 + 5, tables.test_paths[5])]:
        with Image.open(path) as img:
            assert np.array_equal(np.asarray(img), x[row].reshape(8, 8).astype(np.uint8))
    assert tables.train_paths[0].parent.parent == tmp_path / "proj" / ".cache" / "pixels"
    # Read again, the same files are reused, not written anew.
    before = tables.train_paths[0].stat().st_mtime_ns
    again = load_tables(cfg)
    assert again.train_paths == tables.train_paths
    assert again.train_paths[0].stat().st_mtime_ns == before


def test_a_project_of_pixel_tables_trains_and_submits_in_the_samples_rows(tmp_path: Path) -> None:
    create_project(tmp_path / "proj", _digit_recognizer(tmp_path / "comp"))
    sub = train_then_predict(tmp_path / "proj", "pixels")
    assert list(sub.columns) == ["ImageId", "Label"]
    assert sub["ImageId"].tolist() == [1, 2, 3, 4, 5, 6]
    assert set(sub["Label"]) <= {0, 1, 2}


def test_a_test_table_with_ids_keeps_them(tmp_path: Path) -> None:
    data = _digit_recognizer(tmp_path / "comp", test_ids=True)
    report = create_project(tmp_path / "proj", data)
    tables = load_tables(load_config(report.config_path), need_test=True)
    assert tables.test["ImageId"].tolist() == [1, 2, 3, 4, 5, 6]


def test_outside_a_project_the_images_go_to_the_temp_folder(tmp_path: Path) -> None:
    report = create_project(tmp_path / "proj", _digit_recognizer(tmp_path / "comp"))
    # A packaged run on Kaggle: its root is the competition's (read-only) folder.
    cfg = load_config(report.config_path, root=tmp_path / "comp")
    assert pixel_folder(cfg).name == "medalist-pixels"
    assert not pixel_folder(cfg).is_relative_to(tmp_path / "comp")


def test_pixels_given_as_fractions_are_scaled_to_bytes() -> None:
    assert as_bytes(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]
    assert as_bytes(np.array([[0, 1, 1, 0]])).tolist() == [[0, 1, 1, 0]]  # whole numbers stay
    assert as_bytes(np.array([[-4.0, 300.0, np.nan]])).tolist() == [[0, 255, 0]]


def test_numbered_columns_are_taken_for_pixels_only_when_complete_and_many() -> None:
    assert find_prefix(["label", *(f"pixel{i}" for i in range(64))]) == "pixel"
    assert find_prefix(["label", *(f"pixel{i}" for i in range(63))]) is None  # under 8x8
    gap = [f"pixel{i}" for i in range(70) if i != 5]
    assert find_prefix(gap) is None
    assert find_prefix(["image_id", *map(str, range(64)), "grapheme"]) == ""  # 0 ... 63


def test_columns_named_by_the_number_alone_are_read_as_pixels(tmp_path: Path) -> None:
    data = tmp_path / "comp"
    data.mkdir()
    x, y = _digits(30)
    train = pd.DataFrame(x[:24], columns=[str(i) for i in range(64)])
    train.insert(0, "image_id", [f"Train_{i}" for i in range(24)])
    train.assign(grapheme=y[:24]).to_csv(data / "train.csv", index=False)
    test = pd.DataFrame(x[24:], columns=[str(i) for i in range(64)])
    test.insert(0, "image_id", [f"Test_{i}" for i in range(6)])
    test.to_csv(data / "test.csv", index=False)
    sample = pd.DataFrame({"image_id": [f"Test_{i}" for i in range(6)], "grapheme": 0})
    sample.to_csv(data / "sample_submission.csv", index=False)
    report = create_project(tmp_path / "proj", data)
    assert report.unresolved == []
    cfg = load_config(report.config_path)
    assert cfg.competition.pixel_columns == ""
    tables = load_tables(cfg, need_test=True)
    with Image.open(tables.test_paths[2]) as img:
        assert np.array_equal(np.asarray(img), x[26].reshape(8, 8).astype(np.uint8))


def test_a_shape_that_is_no_square_is_left_to_check_and_then_trains(tmp_path: Path) -> None:
    data = tmp_path / "comp"
    data.mkdir()
    x, y = _digits(30)
    wide = np.concatenate([x, x[:, :32]], axis=1)  # 96 pixels: 8 rows of 12
    train = _pixel_table(wide[:24]).assign(label=y[:24])
    train.to_csv(data / "train.csv", index=False)
    _pixel_table(wide[24:]).to_csv(data / "test.csv", index=False)
    pd.DataFrame({"ImageId": range(1, 7), "Label": 0}).to_csv(
        data / "sample_submission.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    assert [u.split(":")[0] for u in report.unresolved] == ["competition.image_shape"]
    sub = train_then_predict(
        tmp_path / "proj", "wide", "competition.image_shape=[8,12]", "data.image_size=8"
    )
    assert sub["ImageId"].tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["competition.image_shape=[9,9]"], "image_shape 9x9 is 81 pixels but the table has 64"),
        (["competition.pixel_columns=px"], "no columns px0, px1, ..."),
        (["competition.image_column=label"], "set image_column or pixel_columns, not both"),
        (
            ["competition.pixel_columns=null", "competition.image_shape=[8,8]"],
            "image_shape is for images stored as pixel_columns",
        ),
    ],
)
def test_wrong_pixel_keys_are_one_line_errors(
    tmp_path: Path, overrides: list[str], says: str
) -> None:
    report = create_project(tmp_path / "proj", _digit_recognizer(tmp_path / "comp"))
    done = medalist("train", str(report.config_path), *QUICK_RUN, *overrides, "--name", "bad")
    assert_one_line_error(done, says)
    assert not (tmp_path / "proj" / "runs" / "bad" / "oof.csv").exists()


def test_test_rows_without_ids_and_a_sample_of_other_rows_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    data = _digit_recognizer(tmp_path / "comp", sample_rows=5)
    report = create_project(tmp_path / "proj", data)
    done = medalist("train", str(report.config_path), *QUICK_RUN, "--name", "r")
    assert_one_line_error(done, "no column 'ImageId'", "the sample's 5 rows")  # before training
    assert not (tmp_path / "proj" / "runs" / "r" / "oof.csv").exists()
