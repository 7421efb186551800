"""Video frames: `competition.sequence_column`/`frame_column`, `medalist smooth`, `--smooth W`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import assert_drawn_png, medalist

from medalist.tasks.postprocess import smooth_sequences
from medalist.workflows.predict import predict
from medalist.workflows.smooth import evaluate_smoothing


def as_video(run: Path, *, wrong_every: int | None = 3) -> Path:
    """Give the trained tiny project sequences of frames: train frames by class (a sequence per
    class), test frames in two sequences. With `wrong_every`, the run's OOF predictions are
    made right except on every n-th frame, which a 3-frame average repairs."""
    data = run.parent.parent / "data"
    train = pd.read_csv(data / "train.csv")
    train["video"] = "v_" + train["label"].astype(str)
    train["frame"] = train.groupby("video").cumcount() * 10
    train.to_csv(data / "train.csv", index=False)
    test = pd.read_csv(data / "test.csv")
    test["video"] = np.where(np.arange(len(test)) < 5, "t_a", "t_b")
    test["frame"] = np.arange(len(test))[::-1]  # rows out of frame order on purpose
    test.to_csv(data / "test.csv", index=False)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["competition"].update(sequence_column="video", frame_column="frame")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if wrong_every:
        oof = pd.read_csv(run / "oof.csv")
        cols = [c for c in oof.columns if c.startswith("pred_")]
        frame = oof["id"].map(train.set_index("id")["frame"]) // 10
        hot = np.eye(len(cols))[oof["target"].to_numpy()]
        wrong = np.roll(hot, 1, axis=1)
        flicker = (frame % wrong_every == 1).to_numpy()[:, None]
        p = np.where(flicker, 0.55 * wrong + 0.35 * hot + 0.1 / 3, 0.8 * hot + 0.2 / 3)
        oof[cols] = p
        oof.to_csv(run / "oof.csv", index=False)
    return run


def test_a_moving_average_stays_within_each_sequence_in_frame_order():
    preds = np.array([[1.0, 0], [0, 1], [1, 0], [5, 5], [0, 1]])
    got = smooth_sequences(preds, np.array(["a", "a", "a", "b", "a"]), np.array([0, 1, 2, 0, 3]), 3)
    want = np.array([[0.5, 0.5], [2 / 3, 1 / 3], [1 / 3, 2 / 3], [5, 5], [0.5, 0.5]])
    assert np.allclose(got, want)
    shuffled = smooth_sequences(np.array([1.0, 2, 3, 10]), [1, 1, 1, 2], [2, 1, 0, 0], 3)
    assert np.allclose(shuffled, [1.5, 2.0, 2.5, 10.0])
    assert np.array_equal(smooth_sequences(preds, np.zeros(5), np.arange(5), 1), preds)


def test_smooth_finds_the_window_that_repairs_flickering_frames(trained_run: Path):
    run = as_video(trained_run)
    result = evaluate_smoothing(run, [1, 3, 5])
    table = result.table.set_index("window")
    assert table.loc[1, "mean"] == pytest.approx(2 / 3, abs=0.05)  # every 3rd frame wrong
    assert table.loc[3, "mean"] == pytest.approx(1.0)
    assert table.loc[3, "verdict"] == "better" and result.best in (3, 5)
    assert_drawn_png(run / "plots" / "smoothing.png")
    assert (run / "analysis" / "smoothing.csv").is_file()
    r = medalist("smooth", str(run), "--windows", "1,3")
    assert r.returncode == 0, r.stderr
    assert "best window beyond noise: 3 frames" in r.stdout and "--smooth 3" in r.stdout


def test_predict_smooth_averages_the_test_predictions_over_frames(trained_run: Path):
    run = as_video(trained_run, wrong_every=None)
    raw = predict(run, out=run / "raw.csv")
    smoothed = predict(run, smooth=3)
    test = pd.read_csv(run.parent.parent / "data" / "test.csv")
    want = smooth_sequences(raw.preds, test["video"].to_numpy(), test["frame"].to_numpy(), 3)
    assert np.allclose(smoothed.preds, want) and not np.allclose(raw.preds, want)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["predict"]["smooth_window"] = 3  # the config's window is the default
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert np.allclose(predict(run).preds, want)


def test_a_package_smooths_as_predict_does(trained_run: Path, tmp_path: Path, monkeypatch):
    from medalist.kaggle.package import PackageOptions, create_package
    from medalist.kaggle.runtime import predict_offline

    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    run = as_video(trained_run, wrong_every=None)
    opts = PackageOptions(competition="shapes-demo", smooth=3, out=tmp_path / "pkg")
    package = create_package([run], opts)
    assert package.manifest["smooth_window"] == 3
    data = run.parent.parent / "data"
    got = predict_offline(package.dataset_dir, data, tmp_path / "s.csv", quick="off")
    want = predict(run, smooth=3).submission
    assert got.equals(want)


# ---- bad input ------------------------------------------------------------------------------


def test_an_even_window_is_refused(trained_run: Path):
    run = as_video(trained_run, wrong_every=None)
    r = medalist("predict", str(run), "--smooth", "4")
    assert r.returncode == 2 and "--smooth 4: give an odd number" in r.stderr
    r = medalist("smooth", str(run), "--windows", "1,2")
    assert r.returncode == 2 and "2 is not an odd number" in r.stderr
    assert "Traceback" not in r.stderr


def test_smoothing_a_run_without_frames_says_what_to_set(trained_run: Path):
    r = medalist("smooth", str(trained_run))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "competition.sequence_column and competition.frame_column" in r.stderr


def test_a_test_table_without_the_frame_columns_is_a_clear_error(trained_run: Path):
    run = as_video(trained_run, wrong_every=None)
    data = run.parent.parent / "data"
    pd.read_csv(data / "test.csv")[["id"]].to_csv(data / "test.csv", index=False)
    before = (run / "submission.csv").read_bytes()
    r = medalist("predict", str(run), "--smooth", "3")
    assert r.returncode == 2 and "test table has no column 'video'" in r.stderr
    assert (run / "submission.csv").read_bytes() == before  # the old submission is intact


def test_frame_columns_are_checked_when_the_tables_load(tiny_project: Path):
    data = tiny_project.parent.parent / "data"
    train = pd.read_csv(data / "train.csv")
    train["video"], train["frame"] = "v", "first"
    train.to_csv(data / "train.csv", index=False)
    r = medalist("folds", str(tiny_project), "competition.sequence_column=video")
    assert r.returncode == 2 and "set both competition.sequence_column" in r.stderr
    r = medalist(
        "folds",
        str(tiny_project),
        "competition.sequence_column=video",
        "competition.frame_column=frame",
    )
    assert r.returncode == 2 and "frame column 'frame' needs a number" in r.stderr
    r = medalist("folds", str(tiny_project), "predict.smooth_window=4")
    assert r.returncode == 2 and "predict.smooth_window" in r.stderr


def test_folds_warn_when_a_sequence_is_split_and_not_when_grouped(tiny_project: Path):
    data = tiny_project.parent.parent / "data"
    train = pd.read_csv(data / "train.csv")
    train["video"] = "v" + (train.index // 4).astype(str)
    train["frame"] = train.index % 4
    train.to_csv(data / "train.csv", index=False)
    seq = ["competition.sequence_column=video", "competition.frame_column=frame"]
    r = medalist("folds", str(tiny_project), *seq)
    assert r.returncode == 0 and "sequences have frames in several folds" in r.stderr
    r = medalist(
        "folds", str(tiny_project), *seq, "cv.scheme=group", "competition.group_column=video"
    )
    assert r.returncode == 0 and "several folds" not in r.stderr
