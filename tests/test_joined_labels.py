"""Several labels joined in one column (Planet's "clear primary", Human Protein Atlas's
"0 5 25"): `competition.label_separator` makes a multilabel target that folds, trains, scores
and submits labels joined the same way; `medalist new` recognises such a column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, make_project, medalist, train_then_predict

from medalist.config import load_config
from medalist.errors import UserError
from medalist.tasks.joined_labels import join_labels, label_classes, looks_joined, multi_hot
from medalist.workflows.scaffold import create_project

EXTRA = ("cloudy", "haze")


def _joined_project(root: Path) -> Path:
    """The tiny shapes competition with a second label on some rows: "bar_h cloudy"."""
    cfg = make_project(root, TINY_CONFIG.replace("metric: accuracy", "metric: f1"))
    train = pd.read_csv(root / "data" / "train.csv")
    tags = [f"{label} {EXTRA[i % 2]}" if i % 3 else label for i, label in enumerate(train["label"])]
    train["label"] = tags
    train.to_csv(root / "data" / "train.csv", index=False)
    text = cfg.read_text().replace(
        "  target_column: label\n", '  target_column: label\n  label_separator: " "\n'
    )
    cfg.write_text(text.replace("scheme: stratified", "scheme: multilabel"))
    return cfg


def test_joined_labels_read_as_one_0_1_column_per_label_in_numeric_then_text_order() -> None:
    values = pd.Series(["0 5 25", "2", "10 2", None, " 5  0 "])
    classes = label_classes(values, " ")
    assert classes == ["0", "2", "5", "10", "25"]
    y = multi_hot(values, " ", classes, "train.csv")
    assert y.tolist() == [
        [1, 0, 1, 0, 1],
        [0, 1, 0, 0, 0],
        [0, 1, 0, 1, 0],
        [0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0],
    ]
    with pytest.raises(UserError, match=r"train.csv line 3: label '7' is not among the classes"):
        multi_hot(pd.Series(["0", "7"]), " ", classes, "train.csv")


def test_labels_are_joined_at_their_thresholds_and_never_left_empty_when_training_never_was():
    probs = np.array([[0.9, 0.2, 0.7], [0.1, 0.3, 0.2], [0.4, 0.6, 0.1]])
    classes, thresholds = ["clear", "haze", "primary"], [0.5, 0.5, 0.65]
    assert join_labels(probs, classes, thresholds, " ", never_empty=True) == [
        "clear primary",
        "haze",  # none reached its threshold: the most probable
        "haze",
    ]
    assert join_labels(probs, classes, thresholds, "|", never_empty=False) == [
        "clear|primary",
        "",
        "haze",
    ]


@pytest.mark.parametrize(
    ("values", "sep", "joined"),
    [
        (["clear primary", "haze primary water", "cloudy", "clear primary road"] * 5, " ", True),
        (["0 5 25", "2", "10 2", "5", "0 2", "25 5"] * 4, " ", True),
        (["a|b", "b", "a|c", "c|b"] * 5, "|", True),
        (["cat", "dog", "bird"] * 8, " ", False),  # one label a row
        # class names with a space (Fashion-MNIST's, Plant Seedlings'): always the same words
        (["T-shirt top", "Ankle boot", "Bag", "Pull over", "Coat"] * 6, " ", False),
        (
            ["Common Chickweed", "Loose Silky-bent", "Fat Hen", "Maize", "Common wheat"] * 6,
            " ",
            False,
        ),
        (["a b", "c d", "a", "b", "c", "d"] * 4, " ", True),  # fewer combinations, still joined
        ([f"IMG {i:04d}.jpg" for i in range(30)], " ", False),  # file names with a space
        (
            [f"a photo of the {w} on a sunny day in the park" for w in ("dog", "cat")] * 10,
            " ",
            False,
        ),  # free text: many words a row
    ],
)
def test_a_column_reads_as_joined_labels_only_when_labels_repeat_a_few_to_a_row(
    values, sep, joined
) -> None:
    assert looks_joined(pd.Series(values), sep) is joined


def test_numbers_never_read_as_joined_labels() -> None:
    assert looks_joined(pd.Series([1, 2, 3] * 10), " ") is False


def _shapes_data(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """The shapes competition's data folder (no project around it) and its training table."""
    data = tmp_path / "comp"
    make_project(tmp_path / "shapes")
    (tmp_path / "shapes" / "data").rename(data)
    return data, pd.read_csv(data / "train.csv")


def test_new_writes_the_separator_a_multilabel_target_macro_f1_and_multilabel_folds(
    tmp_path: Path,
) -> None:
    data, train = _shapes_data(tmp_path)
    train["label"] = [f"{x} {EXTRA[i % 2]}" if i % 3 else x for i, x in enumerate(train["label"])]
    train.rename(columns={"label": "tags"}).to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv").rename(columns={"label": "tags"})
    sample.to_csv(data / "sample_submission.csv", index=False)

    report = create_project(tmp_path / "proj", data)
    expected = {
        "competition.label_separator": "' '",
        "competition.target_type": "multilabel",
        "competition.metric": "f1",
        "cv.scheme": "multilabel",
    }
    assert {key: report.inferred[key] for key in expected} == expected
    cfg = load_config(report.config_path)
    assert (cfg.competition.label_separator, cfg.competition.target_column) == (" ", "tags")


def test_new_keeps_class_names_with_a_space_one_class_and_the_submission_writes_them_whole(
    tmp_path: Path,
) -> None:
    # Fashion-MNIST's and Plant Seedlings' class names ("Ankle boot", "Common Chickweed") have a
    # space in them; before, new read them as labels joined by it, a multilabel target.
    data, train = _shapes_data(tmp_path)
    names = {"bar_h": "Bar flat", "bar_v": "Bar upright", "dot": "Round dot"}
    train["label"] = train["label"].map(names)
    train.to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv").assign(label="Round dot")
    sample.to_csv(data / "sample_submission.csv", index=False)

    report = create_project(tmp_path / "proj", data)
    assert "competition.label_separator" not in report.inferred
    cfg = load_config(report.config_path)
    assert (cfg.competition.label_separator, cfg.competition.target_type) == (None, "auto")
    assert cfg.competition.metric == "accuracy"

    sub = train_then_predict(tmp_path / "proj", "q")
    assert set(sub["label"]) <= set(names.values()) and len(sub) == len(sample)


def test_a_joined_label_project_folds_trains_and_submits_labels_joined_the_same_way(
    tmp_path: Path,
) -> None:
    cfg = _joined_project(tmp_path / "proj")
    folds = medalist("folds", str(cfg))
    assert folds.returncode == 0, folds.stderr
    assert "pos:cloudy" in folds.stdout and "pos:bar_h" in folds.stdout

    run_dir = tmp_path / "proj" / "runs" / "joined"
    done = medalist("train", str(cfg), "--name", "joined")
    assert done.returncode == 0, done.stderr
    oof = pd.read_csv(run_dir / "oof.csv")
    classes = ["bar_h", "bar_v", "cloudy", "dot", "haze"]
    assert [c for c in oof.columns if c.startswith("target_")] == [f"target_{c}" for c in classes]
    train = pd.read_csv(tmp_path / "proj" / "data" / "train.csv").set_index("id")
    expected = multi_hot(train.loc[oof["id"], "label"], " ", classes, "train.csv")
    assert oof[[f"target_{c}" for c in classes]].to_numpy().tolist() == expected.tolist()

    pred = medalist("predict", str(run_dir))
    assert pred.returncode == 0, pred.stderr
    sub = pd.read_csv(run_dir / "submission.csv", keep_default_na=False)
    sample = pd.read_csv(tmp_path / "proj" / "data" / "sample_submission.csv")
    assert list(sub.columns) == ["id", "label"]
    assert sub["id"].tolist() == sample["id"].tolist()
    rows = [row.split(" ") for row in sub["label"]]
    assert all(row and set(row) <= set(classes) for row in rows), rows
    assert all(row == sorted(row, key=classes.index) for row in rows)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("competition.target_type=multiclass", "target_type is multiclass"),
        ("competition.label_separator=''", "label_separator is empty"),
        ("competition.target_column=[label,other]", "one target_column"),
    ],
)
def test_a_separator_that_cannot_make_a_multilabel_target_is_exit_2_in_one_line(
    tmp_path: Path, override: str, needle: str
) -> None:
    cfg = _joined_project(tmp_path / "proj")
    proc = medalist("train", str(cfg), override)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert needle in message and len(message.splitlines()) == 1, message
    assert not (tmp_path / "proj" / "runs").exists() or not any(
        (tmp_path / "proj" / "runs").iterdir()
    )


def test_a_label_outside_the_configured_classes_is_exit_2_naming_the_line(tmp_path: Path) -> None:
    cfg = _joined_project(tmp_path / "proj")
    proc = medalist(
        "folds", str(cfg), "competition.classes=[bar_h,bar_v,dot,cloudy]"
    )  # haze is missing
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "label 'haze' is not among the classes" in proc.stderr
    assert "line 3" in proc.stderr  # row 1 (0-based) is the first "haze"
