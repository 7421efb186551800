"""Every target kind trains and predicts: binary, multi-label (per-label thresholds), regression."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, TINY_CONFIG, make_competition
from sklearn.metrics import roc_auc_score

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


def drawn_label(j: int) -> str:
    """The shape make_competition draws on test image j."""
    return CLASSES[j % len(CLASSES)]


def f1(y: np.ndarray, hit: np.ndarray) -> float:
    tp, fp, fn = (
        int((hit & (y == 1)).sum()),
        int((hit & (y == 0)).sum()),
        int((~hit & (y == 1)).sum()),
    )
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@pytest.mark.slow
def test_multilabel_thresholds_are_fitted_on_the_oof_and_applied_to_the_submission(
    tmp_path: Path,
) -> None:
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
    # Trained enough that the probabilities spread out and the best cut is not 0.5 anyway.
    run = train(config, ["train.epochs=8", "train.lr=1e-2"], name="ml")
    oof = pd.read_csv(run.run.path / "oof.csv")
    assert {"target_horizontal", "pred_horizontal", "pred_vertical"} <= set(oof.columns)
    # Each label's threshold is the lowest of the grid with the best F1 on the OOF predictions.
    grid = np.round(np.linspace(0.05, 0.95, 19), 2)
    for label, fitted in zip(["horizontal", "vertical"], run.scores["thresholds"], strict=True):
        y, p = oof[f"target_{label}"].to_numpy(), oof[f"pred_{label}"].to_numpy()
        scores = np.array([f1(y, p >= t) for t in grid])
        assert fitted == pytest.approx(grid[np.flatnonzero(scores >= scores.max() - 1e-12)[0]])
    # The submission cuts the fold-averaged probabilities at the run's thresholds: moved to
    # each label's median test probability, half the rows become 1 where 0.5 would say else.
    task_file = run.run.path / "task.json"
    result = predict(run.run.path)
    moved = np.median(result.preds, axis=0)
    state = json.loads(task_file.read_text())
    assert state["thresholds"] == run.scores["thresholds"]  # what predict reads
    task_file.write_text(json.dumps({**state, "thresholds": moved.tolist()}))
    sub = predict(run.run.path).submission
    assert list(sub.columns) == ["id", "horizontal", "vertical"]
    for j, label in enumerate(["horizontal", "vertical"]):
        assert list(sub[label]) == list((result.preds[:, j] >= moved[j]).astype(int))


@pytest.mark.slow
def test_regression_recovers_the_target_scale(tmp_path: Path) -> None:
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
    # 16 epochs at a higher rate: enough for the shapes' values to be learnt, not just ranked.
    run = train(config, ["train.epochs=16", "train.lr=1e-2"], name="reg")
    assert run.scores["metric"] == "rmse" and run.scores["higher_is_better"] is False
    oof = pd.read_csv(run.run.path / "oof.csv")
    spread = float(np.std(list(values.values())))  # 8.6: predicting the mean scores this
    # Standardised for training, then put back: on the target's scale, and close to it.
    assert run.scores["oof"] < 0.25 * spread
    by_value = oof.groupby("target")["pred"].mean()
    assert np.allclose(by_value.to_numpy(), by_value.index.to_numpy(), atol=2.0), by_value
    sub = predict(run.run.path).submission
    truth = [values[drawn_label(int(i.removeprefix("t_")))] for i in sub["id"]]
    assert sub["label"].dtype.kind == "f"
    assert np.sqrt(np.mean((sub["label"] - truth) ** 2)) < 0.25 * spread, sub.assign(truth=truth)


def test_binary_with_auc_submits_the_positive_class_probability(tmp_path: Path) -> None:
    cfg = TINY_CONFIG.replace("metric: accuracy", "metric: roc_auc")
    config = project_with(
        tmp_path,
        lambda df: df.assign(label=(df["label"] == "dot").astype(int)),
        lambda s: s.assign(label=0.5),
        cfg,
    )
    run = train(config, ["train.epochs=4"], name="bin")
    sub = predict(run.run.path).submission
    assert sub["label"].between(0, 1).all()
    # Dots (label 1) get the higher probabilities: P(1), not P(0), which would rank them last.
    dot = np.array([drawn_label(int(i.removeprefix("t_"))) == "dot" for i in sub["id"]])
    assert roc_auc_score(dot, sub["label"]) >= 0.9, sub.assign(dot=dot)


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
