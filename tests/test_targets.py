"""Every target kind trains and predicts: binary, multi-label (per-label thresholds), regression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, make_competition

from medalist.tasks.metrics import get_metric
from medalist.workflows.predict import predict
from medalist.workflows.train import train


def project_with(tmp_path: Path, train_fn, sample_fn, config: str) -> Path:
    data = make_competition(tmp_path / "p" / "data")
    df = pd.read_csv(data / "train.csv")
    train_fn(df).to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv")
    sample_fn(sample).to_csv(data / "sample_submission.csv", index=False)
    (tmp_path / "p" / "configs").mkdir()
    path = tmp_path / "p" / "configs" / "c.yaml"
    path.write_text(config)
    return path


def test_multilabel_uses_sigmoid_outputs_and_per_label_thresholds(tmp_path: Path) -> None:
    def labels(df):
        return df.assign(
            horizontal=(df["label"] == "bar_h").astype(int),
            vertical=(df["label"] == "bar_v").astype(int),
        ).drop(columns="label")

    cfg = TINY_CONFIG.replace("target_column: label", "target_column: [horizontal, vertical]")
    cfg = cfg.replace("metric: accuracy", "metric: f1").replace(
        "scheme: stratified", "scheme: multilabel"
    )
    config = project_with(
        tmp_path, labels, lambda s: s.drop(columns="label").assign(horizontal=0, vertical=0), cfg
    )
    run = train(config, name="ml")
    scores = run.scores
    assert len(scores["thresholds"]) == 2 and all(0 < t < 1 for t in scores["thresholds"])
    oof = pd.read_csv(run.run.path / "oof.csv")
    assert {"target_horizontal", "pred_horizontal", "pred_vertical"} <= set(oof.columns)
    sub = predict(run.run.path).submission
    assert list(sub.columns) == ["id", "horizontal", "vertical"]
    assert set(np.unique(sub[["horizontal", "vertical"]])) <= {0, 1}


def test_regression_predicts_on_the_target_scale(tmp_path: Path) -> None:
    values = {"bar_h": 10.0, "bar_v": 20.5, "dot": 31.25}
    cfg = TINY_CONFIG.replace("metric: accuracy", "metric: rmse").replace(
        "scheme: stratified", "scheme: kfold"
    )
    config = project_with(
        tmp_path,
        lambda df: df.assign(label=df["label"].map(values)),
        lambda s: s.assign(label=0.0),
        cfg,
    )
    run = train(config, name="reg")
    assert run.scores["metric"] == "rmse" and run.scores["higher_is_better"] is False
    oof = pd.read_csv(run.run.path / "oof.csv")
    assert abs(oof["pred"].mean() - oof["target"].mean()) < 15  # standardised, then put back
    sub = predict(run.run.path).submission
    assert sub["label"].dtype.kind == "f"


def test_binary_with_auc_submits_the_positive_class_probability(tmp_path: Path) -> None:
    cfg = TINY_CONFIG.replace("metric: accuracy", "metric: roc_auc")
    config = project_with(
        tmp_path,
        lambda df: df.assign(label=(df["label"] == "dot").astype(int)),
        lambda s: s.assign(label=0.5),
        cfg,
    )
    run = train(config, name="bin")
    sub = predict(run.run.path).submission
    assert sub["label"].between(0, 1).all() and sub["label"].nunique() > 1


@pytest.mark.parametrize(
    ("name", "y", "p", "expected"),
    [
        ("accuracy", [0, 1, 2], [[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]], 2 / 3),
        ("rmse", [1.0, 2.0], [1.0, 4.0], np.sqrt(2.0)),
        ("qwk", [0, 1, 2, 2], [0.1, 1.2, 1.9, 2.2], 1.0),
        ("log_loss", [0, 1], [[1.0, 0.0], [0.0, 1.0]], 0.0),
        ("roc_auc", [0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], 1.0),
    ],
)
def test_builtin_metrics_and_their_direction(name, y, p, expected) -> None:
    metric = get_metric(name)
    assert metric(np.array(y), np.array(p)) == pytest.approx(expected, abs=1e-6)
    assert metric.higher_is_better == (name not in ("rmse", "log_loss"))


def test_custom_metric_is_imported_from_module_and_function(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "mymetric.py").write_text(
        "def score(y, p):\n    return float((p.argmax(1) == y).mean())\n"
        "score.greater_is_better = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    metric = get_metric("mymetric:score")
    assert metric(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]])) == 0.5
    assert metric.higher_is_better
