"""Competitions whose tables say more than their column names: zero-padded ids ("00012"),
classes as one 0/1 column each (one-hot), and sample submissions of probabilities or scores.
`medalist new` reads each from the data, and the project trains and submits in the sample's
own format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import QUICK_RUN, medalist, train_then_predict
from PIL import Image

from medalist.config import load_config
from medalist.io import read_table_csv
from medalist.workflows.scaffold import create_project

CLASSES = ["healthy", "rust", "scab"]


def _images(folder: Path, names: list[str], ext: str = ".png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        shade = (i * 37) % 256
        Image.new("RGB", (8, 8), (shade, 255 - shade, 40)).save(folder / f"{name}{ext}")


def _competition(root: Path, train: pd.DataFrame, sample: pd.DataFrame) -> Path:
    """train/ and test/ images named by the first column of each table, and the two tables."""
    _images(root / "train", [str(v) for v in train.iloc[:, 0]])
    _images(root / "test", [str(v) for v in sample.iloc[:, 0]])
    train.to_csv(root / "train.csv", index=False)
    sample.to_csv(root / "sample_submission.csv", index=False)
    return root


def _to_check(report, key: str) -> str:
    """The sentence `medalist new` wrote for a key it marked TODO ("" when it did not)."""
    return next((s for s in report.unresolved if s.startswith(f"{key}:")), "")


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- zero-padded ids -------------------------------------------------------------------------


def test_a_column_of_zero_padded_numbers_is_read_as_its_text_and_plain_numbers_stay_numbers(
    tmp_path: Path,
) -> None:
    path = _write_text(tmp_path / "t.csv", "image_id,label,count\n00012,3,7\n00100,4,12\n")
    table = read_table_csv(path, "train table")
    assert table["image_id"].tolist() == ["00012", "00100"]
    assert table["label"].tolist() == [3, 4]
    assert pd.api.types.is_integer_dtype(table["count"])


def test_zero_padded_ids_find_their_images_and_the_submission_keeps_the_samples_ids(
    tmp_path: Path,
) -> None:
    ids = [f"{i:05d}" for i in range(8)]
    test_ids = [f"{i:05d}" for i in range(100, 103)]
    train = pd.DataFrame({"image_id": ids, "label": [0, 1] * 4})
    sample = pd.DataFrame({"image_id": test_ids, "label": [0] * 3})
    data = _competition(tmp_path / "comp", train, sample)
    report = create_project(tmp_path / "proj", data)
    assert report.unresolved == []
    assert report.inferred["competition.image_dir"] == "data/train"
    sub = train_then_predict(tmp_path / "proj", "padded")
    text = (tmp_path / "proj" / "runs" / "padded" / "submission.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in text[1:]] == test_ids
    oof = (tmp_path / "proj" / "runs" / "padded" / "oof.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in oof[1:]) == ids
    assert len(sub) == 3


# ---- one-hot classes -------------------------------------------------------------------------


def _one_hot(n: int) -> pd.DataFrame:
    rows = [{c: int(i % len(CLASSES) == j) for j, c in enumerate(CLASSES)} for i in range(n)]
    return pd.DataFrame(rows)


def _one_hot_competition(root: Path, sample_value: float = 1 / 3) -> Path:
    train = pd.concat(
        [pd.DataFrame({"image_id": [f"Train_{i}" for i in range(9)]}), _one_hot(9)], axis=1
    )
    sample = pd.DataFrame({"image_id": ["Test_0", "Test_1"], **{c: sample_value for c in CLASSES}})
    return _competition(root, train, sample)


def test_new_reads_one_hot_class_columns_as_one_class_a_row_with_a_probability_metric(
    tmp_path: Path,
) -> None:
    data = _one_hot_competition(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    assert cfg.competition.target_column == CLASSES
    assert cfg.competition.target_type == "multiclass"
    assert cfg.cv.scheme == "stratified"
    assert cfg.competition.metric == "roc_auc"
    assert "holds probabilities (0.333333)" in _to_check(report, "competition.metric")


def test_one_hot_classes_train_a_softmax_and_submit_each_columns_probability(
    tmp_path: Path,
) -> None:
    data = _one_hot_competition(tmp_path / "comp")
    create_project(tmp_path / "proj", data)
    sub = train_then_predict(tmp_path / "proj", "onehot")
    assert list(sub.columns) == ["image_id", *CLASSES]
    values = sub[CLASSES].to_numpy()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-6)
    assert ((values > 0) & (values < 1)).all()
    oof = pd.read_csv(tmp_path / "proj" / "runs" / "onehot" / "oof.csv").sort_values("id")
    assert oof["target"].tolist() == [i % 3 for i in range(9)]
    assert list(oof.columns[-3:]) == [f"pred_{c}" for c in CLASSES]


def test_folds_of_one_hot_classes_put_every_class_in_every_fold(tmp_path: Path) -> None:
    data = _one_hot_competition(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    done = medalist("folds", str(report.config_path), "cv.n_splits=3")
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "proj" / "folds").glob("*.csv")
    folds = pd.read_csv(written, dtype={"id": str})
    train = pd.read_csv(data / "train.csv")
    merged = train.merge(folds, left_on="image_id", right_on="id")
    for _, part in merged.groupby("fold"):
        assert part[CLASSES].sum().tolist() == [1, 1, 1]


def test_a_row_with_two_ones_in_one_hot_class_columns_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    data = _one_hot_competition(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    train = pd.read_csv(data / "train.csv")
    train.loc[4, "scab"] = 1  # row 4 is rust, now also scab
    train.to_csv(data / "train.csv", index=False)
    done = medalist("train", str(report.config_path), *QUICK_RUN, "--name", "bad")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "line 6" in done.stderr and "hold 2 ones" in done.stderr
    assert "target_type: multilabel" in done.stderr
    assert "Traceback" not in done.stderr


def test_classes_that_differ_from_the_one_hot_columns_are_a_one_line_error(
    tmp_path: Path,
) -> None:
    data = _one_hot_competition(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    done = medalist(
        "train", str(report.config_path), *QUICK_RUN, "competition.classes=[a,b,c]", "--name", "x"
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "differ from the one-hot class columns" in done.stderr


def test_a_value_other_than_0_or_1_in_one_hot_columns_is_a_one_line_error(tmp_path: Path) -> None:
    data = _one_hot_competition(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    train = pd.read_csv(data / "train.csv")
    train["rust"] = train["rust"].astype(object)
    train.loc[2, "rust"] = "yes"
    train.to_csv(data / "train.csv", index=False)
    done = medalist("train", str(report.config_path), *QUICK_RUN, "--name", "bad")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "line 4" in done.stderr and "'rust' holds 'yes'" in done.stderr


def test_several_label_columns_that_are_not_one_hot_stay_multilabel(tmp_path: Path) -> None:
    train = pd.DataFrame(
        {"image_id": [f"a{i}" for i in range(6)], "x": [1, 0, 1, 0, 1, 1], "y": [1, 1, 0, 0, 1, 0]}
    )
    sample = pd.DataFrame({"image_id": ["t0"], "x": [0], "y": [0]})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    cfg = load_config(report.config_path)
    assert (cfg.competition.target_type, cfg.cv.scheme) == ("multilabel", "multilabel")
    assert cfg.competition.metric == "f1"


# ---- samples of probabilities and scores -------------------------------------------------


def test_a_binary_target_whose_sample_holds_probabilities_submits_probabilities(
    tmp_path: Path,
) -> None:
    train = pd.DataFrame({"patient_id": 1000 + np.arange(8), "target": [0, 1] * 4})
    sample = pd.DataFrame({"patient_id": [5000, 5001, 5002], "target": 0.5})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    cfg = load_config(report.config_path)
    assert cfg.competition.metric == "roc_auc"
    assert "holds probabilities (0.5)" in _to_check(report, "competition.metric")
    sub = train_then_predict(tmp_path / "proj", "proba")
    assert sub["patient_id"].tolist() == [5000, 5001, 5002]
    assert ((sub["target"] > 0) & (sub["target"] < 1)).all()


def test_a_binary_target_whose_sample_holds_labels_submits_labels(tmp_path: Path) -> None:
    train = pd.DataFrame({"patient_id": 1000 + np.arange(8), "target": [0, 1] * 4})
    sample = pd.DataFrame({"patient_id": [5000, 5001], "target": 0})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    assert load_config(report.config_path).competition.metric == "accuracy"
    assert _to_check(report, "competition.metric") == ""


@pytest.mark.parametrize("sample_value", [50.5, 0.0])
def test_whole_number_scores_are_regression_when_the_sample_holds_fractions(
    tmp_path: Path, sample_value: float
) -> None:
    train = pd.DataFrame(
        {"Id": [f"p{i}" for i in range(8)], "Pawpularity": [3, 17, 25, 40, 41, 63, 88, 100]}
    )
    sample = pd.DataFrame({"Id": ["q0", "q1"], "Pawpularity": sample_value})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    cfg = load_config(report.config_path)
    if sample_value % 1:
        assert (cfg.competition.target_type, cfg.competition.metric) == ("regression", "rmse")
        assert cfg.cv.scheme == "kfold"
        assert "a score, not a class" in report.reasons["competition.target_type"]
    else:  # whole numbers on both sides: classes, as before
        assert cfg.competition.target_type == "auto"
        assert cfg.competition.metric == "accuracy"


def test_whole_numbers_with_values_too_rare_for_five_folds_are_flagged_as_a_possible_score(
    tmp_path: Path,
) -> None:
    scores = [3, 17, 25, 40, 41, 63, 88, 100, 12, 7, 55, 71] * 2
    train = pd.DataFrame({"Id": [f"p{i}" for i in range(24)], "Pawpularity": scores})
    sample = pd.DataFrame({"Id": ["q0"], "Pawpularity": [0]})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    note = _to_check(report, "competition.target_type")
    assert "takes 12 integer values" in note and "regression" in note


def test_whole_numbers_filling_their_range_with_rare_values_are_guessed_a_score_that_trains(
    tmp_path: Path,
) -> None:
    # Pawpularity's 1-100 with a sample of whole numbers: before, new kept 30 classes, and
    # training stopped on the classes seen once.
    scores = [1 + (i * 7) % 30 for i in range(40)]
    train = pd.DataFrame({"Id": [f"p{i}" for i in range(40)], "Pawpularity": scores})
    sample = pd.DataFrame({"Id": ["q0", "q1"], "Pawpularity": [50, 50]})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    note = _to_check(report, "competition.target_type")
    assert "30 whole numbers from 1 to 30" in note and "multiclass" in note
    cfg = load_config(report.config_path)
    assert (cfg.competition.target_type, cfg.competition.metric, cfg.cv.scheme) == (
        "regression",
        "rmse",
        "kfold",
    )
    sub = train_then_predict(tmp_path / "proj", "score")
    assert pd.api.types.is_float_dtype(sub["Pawpularity"]) and len(sub) == 2


def test_a_sample_naming_its_ids_otherwise_than_the_training_table_is_left_to_check(
    tmp_path: Path,
) -> None:
    train = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]})
    sample = pd.DataFrame({"id": ["t1", "t2"], "label": 0})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    says = _to_check(report, "competition.id_column")
    assert "names its ids 'id', a column train.csv lacks; took 'image_id'" in says


@pytest.mark.parametrize(("positives", "guessed"), [(1, True), (3, False)])
def test_a_rare_binary_class_makes_roc_auc_the_metric_to_check(
    tmp_path: Path, positives: int, guessed: bool
) -> None:
    labels = [1] * positives + [0] * (10 - positives)  # 10% or 30% positive
    train = pd.DataFrame({"image_name": [f"im{i}" for i in range(10)], "target": labels})
    sample = pd.DataFrame({"image_name": ["t1", "t2"], "target": 0})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    says = _to_check(report, "competition.metric")
    if guessed:
        assert "two classes, the rarer in 10% of the rows" in says
        assert load_config(report.config_path).competition.metric == "roc_auc"
    else:
        assert says == ""
        assert load_config(report.config_path).competition.metric == "accuracy"


# ---- a sample whose id column is not its first -----------------------------------------------


def test_a_sample_writing_its_placeholder_prediction_first_is_read_by_its_distinct_id_column(
    tmp_path: Path,
) -> None:
    ids = [f"img{i}" for i in range(8)]
    train = pd.DataFrame({"file": ids, "y": [0, 3] * 4})
    sample = pd.DataFrame({"y": [0] * 3, "file": ["t0", "t1", "t2"]})
    data = tmp_path / "comp"
    _images(data / "train", ids)
    _images(data / "test", sample["file"].tolist())
    train.to_csv(data / "train.csv", index=False)
    sample.to_csv(data / "sample_submission.csv", index=False)

    report = create_project(tmp_path / "proj", data)
    assert report.unresolved == []
    assert report.inferred["competition.id_column"] == "file"
    assert report.inferred["competition.target_column"] == "y"
    sub = train_then_predict(tmp_path / "proj", "order")
    assert list(sub.columns) == ["y", "file"]  # the sample's order, id second
    assert sub["file"].tolist() == ["t0", "t1", "t2"] and set(sub["y"]) <= {0, 3}


def test_the_offline_check_compares_a_sample_by_its_id_column_wherever_it_stands() -> None:
    from medalist.kaggle.check import CheckFailed, compare_submissions

    want = pd.DataFrame({"p": [0.25, 0.5, 0.75], "file": ["a", "b", "c"]})
    got = want.assign(p=want["p"] + 1e-7)  # another process's rounding: within the tolerance
    assert compare_submissions(got, want, 1e-5, "file") == pytest.approx(1e-7)
    with pytest.raises(CheckFailed, match="ids differ"):
        compare_submissions(want.assign(file=["a", "c", "b"]), want, 1e-5, "file")
    with pytest.raises(CheckFailed, match="column 'p'"):
        compare_submissions(want.assign(p=[0.25, 0.5, 0.9]), want, 1e-5, "file")


def test_the_id_column_of_a_sample_is_its_first_unless_that_one_repeats() -> None:
    from medalist.io import sample_id_column

    assert sample_id_column(pd.DataFrame({"id": ["a", "b"], "label": [0, 0]})) == "id"
    assert sample_id_column(pd.DataFrame({"label": [0, 0], "id": ["a", "b"]})) == "id"
    # Humpback Whale's `Image,Id`: the first names the image, the second is the prediction.
    assert sample_id_column(pd.DataFrame({"Image": ["a", "b"], "Id": ["w", "w"]})) == "Image"
    # A first column that repeats with nothing distinct after it stays the id (long formats).
    assert sample_id_column(pd.DataFrame({"img": ["a", "a"], "cls": [1, 1]})) == "img"


@pytest.mark.parametrize(
    ("column", "values", "metric"),
    [
        ("diagnosis", [0, 1, 2, 3, 4], "qwk"),  # APTOS 2019
        ("isup_grade", [0, 1, 2, 3, 4, 5], "qwk"),  # PANDA
        ("level", [0, 1, 2, 3, 4], "qwk"),  # Diabetic Retinopathy 2015
        ("label", [0, 1, 2, 3, 4], "accuracy"),  # digits or classes by number: no order
        ("grade", [0, 2, 5], "accuracy"),  # not consecutive
        ("severity", [0, 1], "accuracy"),  # two values: a binary class
    ],
)
def test_grades_named_as_grades_are_guessed_quadratic_weighted_kappa(
    tmp_path: Path, column: str, values: list[int], metric: str
) -> None:
    train = pd.DataFrame({"id_code": [f"a{i}" for i in range(30)], column: (values * 30)[:30]})
    sample = pd.DataFrame({"id_code": ["q0", "q1"], column: 0})
    report = create_project(tmp_path / "proj", _competition(tmp_path / "comp", train, sample))
    assert load_config(report.config_path).competition.metric == metric
    note = _to_check(report, "competition.metric")
    assert ("quadratic weighted kappa" in note) == (metric == "qwk"), note
