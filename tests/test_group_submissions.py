"""A submission row per group of images (Mayo Clinic STRIP AI's row per `patient_id`, RSNA
Screening Mammography's per `{patient_id}_{laterality}`): `competition.submission_by` combines
each group's test images (mean or max), the CV is reported per group as well, and
`medalist new` recognises a sample whose ids repeat in the test table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    QUICK_RUN,
    TINY_CONFIG,
    assert_one_line_error,
    assert_package_check_passes,
    make_project,
    medalist,
    train_then_predict,
)

from medalist.config import load_config
from medalist.data.submission_rows import combine_rows, first_per_key, group_keys
from medalist.runs.rundir import open_run_dir
from medalist.workflows.inference import run_test_predictions
from medalist.workflows.scaffold import create_project


def test_rows_combine_per_group_in_the_groups_first_order_by_mean_or_max() -> None:
    keys = pd.Series(["b", "a", "b", "c", "a"])
    values = np.array([[0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.5, 0.5], [1.0, 0.0]])
    groups, mean = combine_rows(keys, values, "mean")
    assert groups.tolist() == ["b", "a", "c"]
    assert mean.tolist() == [[0.30000000000000004, 0.7], [0.8, 0.2], [0.5, 0.5]]
    _, top = combine_rows(keys, values, "max")
    assert top.tolist() == [[0.4, 0.8], [1.0, 0.4], [0.5, 0.5]]
    _, number = combine_rows(keys, np.array([1.0, 2.0, 3.0, 4.0, 6.0]), "mean")
    assert number.tolist() == [2.0, 4.0, 4.0]
    assert first_per_key(keys, np.array([7, 8, 9, 10, 11])).tolist() == [7, 8, 10]


def test_a_group_is_a_column_or_a_pattern_of_columns() -> None:
    table = pd.DataFrame({"patient_id": [10, 10, 11], "laterality": ["L", "R", "L"]})
    assert group_keys(table, "patient_id", "t").tolist() == ["10", "10", "11"]
    assert group_keys(table, "{patient_id}_{laterality}", "t").tolist() == ["10_L", "10_R", "11_L"]


def _patients(root: Path, *, pattern: bool = False) -> Path:
    """The shapes competition with a row per image and a sample row per patient (three images
    of one shape each; the test patients hold 1 to 3 images); returns the data folder."""
    make_project(root / "shapes", n_test=12)
    data = root / "comp"
    (root / "shapes" / "data").rename(data)
    train = pd.read_csv(data / "train.csv").rename(columns={"id": "image_id"})
    train.insert(0, "patient_id", [f"p{i % 3}{i // 9}" for i in range(len(train))])
    test = pd.read_csv(data / "test.csv").rename(columns={"id": "image_id"})
    test.insert(0, "patient_id", [f"q{j % 3}{j // 9}" for j in range(len(test))])
    if pattern:  # RSNA: the sample's rows join two columns, a breast of a patient
        train["laterality"] = np.where(np.arange(len(train)) % 2, "L", "R")
        test["laterality"] = np.where(np.arange(len(test)) % 2, "L", "R")
        train["label"] = (train["label"] == "dot").astype(int)
        keys = sorted(set(test["patient_id"] + "_" + test["laterality"]))
        sample = pd.DataFrame({"prediction_id": keys, "label": 0.5})
    else:
        sample = pd.DataFrame({"patient_id": sorted(set(test["patient_id"]))})
        sample = sample.assign(bar_h=0.3, bar_v=0.3, dot=0.4)
    train.to_csv(data / "train.csv", index=False)
    test.to_csv(data / "test.csv", index=False)
    sample.to_csv(data / "sample_submission.csv", index=False)
    return data


@pytest.mark.slow
def test_new_reads_a_sample_row_per_patient_and_predict_averages_their_images_or_refuses(
    tmp_path: Path,
) -> None:
    data = _patients(tmp_path)
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    comp = cfg.competition
    assert (comp.id_column, comp.submission_by, comp.group_column) == (
        "image_id",
        "patient_id",
        "patient_id",
    )
    assert comp.submission_reduce == "mean" and cfg.cv.scheme == "stratified_group"

    sub = train_then_predict(tmp_path / "proj", "g")
    sample = pd.read_csv(data / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert sub["patient_id"].tolist() == sample["patient_id"].tolist()
    # each row is the mean of its patient's images' predictions
    images = run_test_predictions(open_run_dir(tmp_path / "proj" / "runs" / "g"))
    per_image = pd.DataFrame(images.preds, columns=["bar_h", "bar_v", "dot"])
    per_image["patient_id"] = pd.read_csv(data / "test.csv")["patient_id"]
    want = per_image.groupby("patient_id")[["bar_h", "bar_v", "dot"]].mean()
    got = sub.set_index("patient_id")[["bar_h", "bar_v", "dot"]]
    np.testing.assert_allclose(
        got.loc[want.index].to_numpy(), want.to_numpy(), atol=1e-6
    )  # float32 noise across processes
    assert not np.allclose(want.to_numpy(), want.to_numpy()[:1])  # the patients differ

    # the offline notebook reads the test table to combine the images the same way
    assert_package_check_passes(tmp_path / "proj", "g", 6)

    # groups that are not the sample's rows: a one-line error that leaves the run as it was
    run = tmp_path / "proj" / "runs" / "g"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    sample_path = tmp_path / "proj" / "data" / "sample_submission.csv"
    sample.iloc[:-1].to_csv(sample_path, index=False)  # a patient left out
    done = medalist("predict", str(run))
    assert_one_line_error(done, "makes 6 rows of the 12 test images", "lists 5", "'q21'")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_the_cv_is_also_scored_per_group_as_the_submission_is(tmp_path: Path) -> None:
    data = _patients(tmp_path)
    create_project(tmp_path / "proj", data)
    cfg = str(tmp_path / "proj" / "configs" / "baseline.yaml")
    done = medalist("train", cfg, *QUICK_RUN, "competition.metric=log_loss", "--name", "g")
    assert done.returncode == 0, done.stderr
    run = tmp_path / "proj" / "runs" / "g"
    scores = json.loads((run / "scores.json").read_text())["by_group"]
    assert (scores["by"], scores["groups"], scores["groups_in_several_folds"]) == (
        "patient_id",
        12,
        0,
    )
    oof = pd.read_csv(run / "oof.csv")
    patients = pd.read_csv(data / "train.csv").set_index("image_id")["patient_id"]
    oof["patient"] = oof["id"].map(patients)
    from sklearn.metrics import log_loss

    want = []
    for _, fold in oof.groupby("fold"):
        per = fold.groupby("patient")[["pred_bar_h", "pred_bar_v", "pred_dot"]].mean()
        target = fold.groupby("patient")["target"].first()
        want.append(log_loss(target.loc[per.index], per.to_numpy(), labels=[0, 1, 2]))
    assert scores["folds"] == pytest.approx(want, rel=1e-9)
    assert "CV log_loss per patient_id (the submission's rows: 12 groups" in done.stdout


def test_groups_split_across_folds_are_counted_and_warned_about(tmp_path: Path) -> None:
    data = _patients(tmp_path)
    create_project(tmp_path / "proj", data)
    cfg = str(tmp_path / "proj" / "configs" / "baseline.yaml")
    done = medalist(
        "train", cfg, *QUICK_RUN, "cv.scheme=stratified", "competition.group_column=null",
        "--name", "s",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    by_group = json.loads((tmp_path / "proj" / "runs" / "s" / "scores.json").read_text())
    assert by_group["by_group"]["groups_in_several_folds"] > 0
    assert "of the groups have images in several folds" in done.stdout


def test_a_pattern_of_columns_names_each_row_and_max_takes_the_likeliest_image(
    tmp_path: Path,
) -> None:
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    data = _patients(tmp_path, pattern=True).rename(project / "data")
    text = TINY_CONFIG.replace("id_column: id", "id_column: image_id").replace(
        "metric: accuracy",
        'metric: roc_auc\n  submission_by: "{patient_id}_{laterality}"\n'
        "  submission_reduce: max\n  group_column: patient_id",
    )
    (project / "configs" / "baseline.yaml").write_text(
        text.replace("scheme: stratified", "scheme: group")
    )
    sub = train_then_predict(tmp_path / "proj", "m")
    sample = pd.read_csv(data / "sample_submission.csv")
    assert sub["prediction_id"].tolist() == sample["prediction_id"].tolist()

    images = run_test_predictions(open_run_dir(tmp_path / "proj" / "runs" / "m"))
    test = pd.read_csv(data / "test.csv")
    per_image = pd.Series(images.preds[:, 1], index=test["patient_id"] + "_" + test["laterality"])
    want = per_image.groupby(level=0).max()
    got = sub.set_index("prediction_id")["label"][want.index]
    np.testing.assert_allclose(got, want, atol=1e-6)  # float32 noise across processes
    assert not np.allclose(want, per_image.groupby(level=0).mean(), atol=1e-6)  # not the mean


def test_new_spells_a_sample_id_that_joins_two_columns_as_a_pattern(tmp_path: Path) -> None:
    # RSNA Mammography: test.csv has prediction_id = patient_id + "_" + laterality, train.csv
    # only the two columns.
    data = _patients(tmp_path, pattern=True)
    test = pd.read_csv(data / "test.csv")
    test["prediction_id"] = test["patient_id"] + "_" + test["laterality"]
    test.to_csv(data / "test.csv", index=False)
    report = create_project(tmp_path / "proj", data)
    comp = load_config(report.config_path).competition
    assert (comp.id_column, comp.submission_by, comp.group_column, comp.target_column) == (
        "image_id",
        "{patient_id}_{laterality}",
        "patient_id",
        "label",
    )
    assert not any(s.startswith("competition.id_column") for s in report.unresolved)


def _group_project(tmp_path: Path) -> Path:
    data = _patients(tmp_path)
    create_project(tmp_path / "proj", data)
    return tmp_path / "proj" / "configs" / "baseline.yaml"


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("competition.submission_by=ward", ("submission_by 'ward'", "column 'ward'", "lacks")),
        ("competition.submission_by={ward}_{bed}", ("column 'ward'",)),
        ("competition.test_csv=data/none.csv", ("submission_by", "competition.test_csv")),
        ("competition.task=segment", ("classification", "per image")),
    ],
)
def test_a_group_that_does_not_fit_the_tables_is_a_one_line_error(
    tmp_path: Path, override: str, words: tuple[str, ...]
) -> None:
    cfg = _group_project(tmp_path)
    done = medalist("train", str(cfg), *QUICK_RUN, override, "--name", "b")
    assert_one_line_error(done, *words)
    assert not (tmp_path / "proj" / "runs" / "b" / "oof.csv").exists()
