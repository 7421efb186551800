"""Ranked submissions (Humpback Whale's and Happywhale's MAP@5, Quick, Draw!'s MAP@3): the
metric `map@K` scores the K likeliest classes, the submission lists them best first in one
column, and `medalist new` reads K from a sample that lists K labels a row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, assert_one_line_error, make_project, medalist, train_then_predict

from medalist.config import load_config
from medalist.errors import UserError
from medalist.tasks.classify_metrics import map_at_k
from medalist.tasks.metrics import get_metric
from medalist.tasks.submission import ranked_labels
from medalist.workflows.scaffold import create_project
from medalist.workflows.scaffold.infer import ranked_count

# Five classes drawn as the three shapes (conftest.draw draws anything else as a dot).
WHALES = ["bar_h", "bar_v", "new_whale", "w_1a2b3c", "w_9f8e7d"]


def test_map_at_k_scores_one_over_the_rank_of_the_true_class_within_the_first_k() -> None:
    probs = np.array(
        [
            [0.1, 0.6, 0.3],  # ranks: 1, 2, 0 -> true 1 first: 1
            [0.5, 0.2, 0.3],  # ranks: 0, 2, 1 -> true 1 third: 1/3
            [0.2, 0.3, 0.5],  # ranks: 2, 1, 0 -> true 1 second: 1/2
            [0.7, 0.1, 0.2],  # true 1 third; at k=2 it scores 0
        ]
    )
    y = np.array([1, 1, 1, 1])
    assert map_at_k(y, probs, k=3) == pytest.approx((1 + 1 / 3 + 1 / 2 + 1 / 3) / 4)
    assert map_at_k(y, probs, k=2) == pytest.approx((1 + 0 + 1 / 2 + 0) / 4)
    assert map_at_k(y, probs, k=1) == pytest.approx(1 / 4)


def test_map_at_k_of_several_true_labels_averages_the_precision_at_each_one_found() -> None:
    probs = np.array([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.9, 0.3]])
    y = np.array([[1, 0, 0, 1], [1, 1, 0, 0]])
    # row 1 ranks 0, 1, 3, 2: hits at ranks 1 and 3 -> (1/1 + 2/3) / 2
    # row 2 ranks 2, 3, 1, 0: at k=3 one hit at rank 3 -> (1/3) / 2
    assert map_at_k(y, probs, k=3) == pytest.approx(((1 + 2 / 3) / 2 + (1 / 3) / 2) / 2)
    with pytest.raises(ValueError, match="class probabilities"):
        map_at_k(np.array([1.0, 2.0]), np.array([[0.3], [0.4]]), k=5)


def test_the_metric_map_at_k_is_read_from_its_name_and_k_must_be_1_to_100() -> None:
    metric = get_metric("MAP@5")
    assert metric.higher_is_better
    probs = np.eye(7)[[6, 5, 4]] + np.linspace(0, 0.5, 7)  # the true class first, then 6, 5...
    assert metric.fn(np.array([6, 5, 0]), probs) == pytest.approx((1 + 1 + 0) / 3)
    with pytest.raises(UserError, match="k must be 1 to 100"):
        get_metric("map@0")
    with pytest.raises(UserError, match=r"map@K"):
        get_metric("mapk")


def test_a_ranked_row_lists_the_k_likeliest_classes_best_first_with_blanks_made_underscores():
    probs = np.array([[0.1, 0.5, 0.15, 0.25], [0.4, 0.3, 0.2, 0.1]])
    classes = ["The Eiffel Tower", "cat", "new_whale", "dog"]
    assert ranked_labels(classes, probs, 3).tolist() == [
        "cat dog new_whale",
        "The_Eiffel_Tower cat new_whale",
    ]
    # another separator keeps the names as they are
    assert ranked_labels(classes, probs, 2, "|").tolist() == ["cat|dog", "The Eiffel Tower|cat"]


@pytest.mark.parametrize(
    ("values", "k"),
    [
        (["new_whale w_23a388d w_9b5109b w_9c506f6 w_0369a5c"] * 4, 5),
        (["airplane angel apple", "bed bee bird"], 3),
        (["1 1", "1 1"], None),  # a run-length mask
        (["a b c", "a b"], None),  # not the same count a row
        (["new_whale", "new_whale"], None),  # one label a row
        (["0.5 0 0 10 10", "0.3 4 4 8 8"], None),  # boxes: numbers
    ],
)
def test_a_sample_listing_the_same_number_of_labels_a_row_reads_as_ranked(
    values: list[str], k: int | None
) -> None:
    sub = pd.DataFrame({"Image": [f"{i}.jpg" for i in range(len(values))], "Id": values})
    assert ranked_count(sub, "Image") == k


def _whale_data(tmp_path: Path) -> Path:
    """The shapes competition as Humpback Whale lays it out: Image,Id and a sample of 5
    labels a row."""
    make_project(tmp_path / "shapes", labels=WHALES, n_per_class=6, n_test=6)
    data = tmp_path / "whales"
    (tmp_path / "shapes" / "data").rename(data)
    train = pd.read_csv(data / "train.csv")
    train = train.assign(id=train["id"] + ".png").rename(columns={"id": "Image", "label": "Id"})
    train.to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv")
    sample = pd.DataFrame({"Image": sample["id"] + ".png", "Id": " ".join(WHALES)})
    sample.to_csv(data / "sample_submission.csv", index=False)
    (data / "test.csv").unlink()
    return data


def test_new_guesses_map_at_5_from_a_sample_of_five_labels_and_the_submission_lists_five(
    tmp_path: Path,
) -> None:
    data = _whale_data(tmp_path)
    report = create_project(tmp_path / "proj", data)
    assert any(
        s.startswith("competition.metric: ") and "5 labels a row" in s for s in report.unresolved
    )
    cfg = load_config(report.config_path)
    assert cfg.competition.metric == "map@5"

    sub = train_then_predict(tmp_path / "proj", "w")
    sample = pd.read_csv(data / "sample_submission.csv")
    assert sub["Image"].tolist() == sample["Image"].tolist()
    rows = [row.split(" ") for row in sub["Id"]]
    assert all(len(row) == 5 and len(set(row)) == 5 and set(row) == set(WHALES) for row in rows)
    scores = pd.read_csv(tmp_path / "proj" / "runs" / "w" / "oof.csv")
    assert len(scores) == 30


def test_new_reads_a_ranked_sample_whose_column_the_training_table_does_not_have(
    tmp_path: Path,
) -> None:
    # Happywhale: train.csv image,species,individual_id; the sample image,predictions.
    data = _whale_data(tmp_path)
    train = pd.read_csv(data / "train.csv")
    train = pd.DataFrame(
        {"image": train["Image"], "species": "beluga", "individual_id": train["Id"]}
    )
    train.to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv")
    ranked = "37c7aba965a5 114207cab555 a6e325d8e924 19fbb960f07d c995c043c353"
    pd.DataFrame({"image": sample["Image"], "predictions": ranked}).to_csv(
        data / "sample_submission.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    assert (cfg.competition.metric, cfg.competition.target_column) == ("map@5", "individual_id")

    sub = train_then_predict(tmp_path / "proj", "h")
    assert list(sub.columns) == ["image", "predictions"]
    assert all(set(row.split(" ")) == set(WHALES) for row in sub["predictions"])


def test_a_class_name_with_blanks_is_one_token_of_a_ranked_row(tmp_path: Path) -> None:
    names = {"bar_h": "The Eiffel Tower", "bar_v": "bee", "dot": "apple"}
    cfg = make_project(tmp_path / "proj", TINY_CONFIG.replace("accuracy", "map@3"))
    data = tmp_path / "proj" / "data"
    train = pd.read_csv(data / "train.csv")
    train.assign(label=train["label"].map(names)).to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv").assign(label="apple bee The_Eiffel_Tower")
    sample.to_csv(data / "sample_submission.csv", index=False)
    assert load_config(cfg).competition.metric == "map@3"

    sub = train_then_predict(tmp_path / "proj", "q")
    assert {frozenset(row.split(" ")) for row in sub["label"]} == {
        frozenset({"The_Eiffel_Tower", "bee", "apple"})
    }


def test_a_ranked_metric_on_a_number_target_or_k_of_0_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = make_project(tmp_path / "proj", TINY_CONFIG.replace("accuracy", "map@0"))
    assert_one_line_error(medalist("train", str(cfg)), "map@0", "k must be 1 to 100")

    data = tmp_path / "proj" / "data"
    train = pd.read_csv(data / "train.csv")
    train.assign(label=np.arange(len(train)) * 0.5).to_csv(data / "train.csv", index=False)
    text = TINY_CONFIG.replace("metric: accuracy", "metric: map@5\n  target_type: regression")
    cfg.write_text(text.replace("scheme: stratified", "scheme: kfold"))
    assert_one_line_error(medalist("train", str(cfg)), "map@5", "regression", "rmse")
    assert not (tmp_path / "proj" / "runs").exists() or not any(
        (tmp_path / "proj" / "runs").iterdir()
    )


def test_the_submission_check_names_a_label_that_is_not_a_class(trained_run: Path) -> None:
    from medalist.tasks.classify import ClassifyTask

    cfg = load_config(trained_run / "config.yaml")
    train = pd.read_csv(trained_run.parent.parent / "data" / "train.csv")
    task = ClassifyTask.from_config(cfg, train)
    sample = pd.read_csv(trained_run.parent.parent / "data" / "sample_submission.csv")
    good = sample.assign(label="dot")
    task.check_submission(good, sample)
    bad = sample.assign(label=["dot"] * (len(sample) - 1) + ["circle"])
    with pytest.raises(UserError, match="circle"):
        task.check_submission(bad, sample)


def test_joined_labels_scored_by_map_at_k_submit_the_k_likeliest_labels_a_row(
    tmp_path: Path,
) -> None:
    from test_joined_labels import EXTRA, _joined_project

    cfg = _joined_project(tmp_path / "proj")
    cfg.write_text(cfg.read_text().replace("metric: f1", "metric: map@3"))
    sub = train_then_predict(tmp_path / "proj", "j")
    labels = set(pd.read_csv(tmp_path / "proj" / "data" / "train.csv")["label"].str.split().sum())
    assert labels == {"bar_h", "bar_v", "dot", *EXTRA}
    rows = [row.split(" ") for row in sub["label"]]
    assert all(len(row) == 3 and len(set(row)) == 3 and set(row) <= labels for row in rows)
