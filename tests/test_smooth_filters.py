"""`medalist smooth`'s Gaussian window and median filter beside the moving average, chosen on
the OOF rows and applied to the test set with `--smooth-filter`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from test_smooth import as_video

from medalist.tasks.postprocess import smooth_sequences
from medalist.workflows.predict import predict
from medalist.workflows.smooth import evaluate_smoothing


def test_gaussian_and_median_filters_stay_within_each_sequence_in_frame_order() -> None:
    # Sequence a in frame order: 0, 10, 1, 0, 0 (rows shuffled); b holds one frame.
    values = np.array([1.0, 0.0, 10.0, 0.0, 7.0, 0.0])
    seqs = np.array(["a", "a", "a", "a", "b", "a"])
    frames = np.array([2, 0, 1, 3, 0, 4])  # row 1 is frame 0, row 2 frame 1, ...
    median = smooth_sequences(values, seqs, frames, 3, "median")
    # a's order: rows 1 (0), 2 (10), 0 (1), 3 (0), 5 (0); the spike of one frame is gone.
    assert median.tolist() == [1.0, 5.0, 1.0, 0.0, 7.0, 0.0]
    gauss = smooth_sequences(values, seqs, frames, 3, "gaussian")
    w = np.exp(-0.5 * (1 / 0.75) ** 2)  # sigma = window / 4, the neighbours' weight
    assert gauss[2] == pytest.approx((w * 0 + 10 + w * 1) / (1 + 2 * w))
    assert gauss[1] == pytest.approx((0 + w * 10) / (1 + w))  # the first frame: one neighbour
    assert gauss[4] == 7.0  # a sequence of one frame is left alone
    mean = smooth_sequences(values, seqs, frames, 3, "mean")
    assert mean[2] == pytest.approx(11 / 3)


def test_a_median_of_probability_rows_still_sums_to_one() -> None:
    rows = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    out = smooth_sequences(rows, np.zeros(3), np.arange(3), 3, "median")
    assert np.allclose(out.sum(axis=1), 1.0)
    assert out[1].tolist() == pytest.approx(np.array([0.5, 0.2, 0.1]) / 0.8)


def _two_wrong_frames_in_five(run: Path) -> None:
    """OOF rows right but unsure (0.5 on the class), except two neighbouring frames in every
    five that are confidently wrong: the median of 5 frames repairs them, the mean can't."""
    oof = pd.read_csv(run / "oof.csv")
    train = pd.read_csv(run.parent.parent / "data" / "train.csv").set_index("id")
    cols = [c for c in oof.columns if c.startswith("pred_")]
    hot = np.eye(len(cols))[oof["target"].to_numpy()]
    frame = (oof["id"].map(train["frame"]) // 10).to_numpy()
    wrong = (frame % 5 == 2) | (frame % 5 == 3)
    right = 0.5 * hot + 0.25 * (1 - hot)
    oof[cols] = np.where(wrong[:, None], np.roll(hot, 1, axis=1), right)
    oof.to_csv(run / "oof.csv", index=False)


def test_smooth_recommends_the_median_where_only_it_repairs_the_frames(trained_run: Path) -> None:
    run = as_video(trained_run, wrong_every=None)
    _two_wrong_frames_in_five(run)
    result = evaluate_smoothing(run, [1, 5])
    rows = result.filters.set_index(["filter", "window"])
    assert rows.loc[("median", 5), "verdict"] == "better"
    assert rows.loc[("median", 5), "mean"] > rows.loc[("mean", 5), "mean"]
    assert result.best == 5 and result.best_filter == "median"
    assert list(result.table["window"]) == [1, 5]  # the moving average's own table, as before
    saved = pd.read_csv(run / "analysis" / "smoothing.csv")
    assert set(saved["filter"]) == {"none", "mean", "gaussian", "median"}
    r = medalist("smooth", str(run), "--windows", "1,5")
    assert r.returncode == 0, r.stderr
    assert "--smooth 5 --smooth-filter median" in r.stdout


def test_predict_applies_the_chosen_filter_to_the_test_frames(trained_run: Path) -> None:
    run = as_video(trained_run, wrong_every=None)
    raw = predict(run, out=run / "raw.csv")
    test = pd.read_csv(run.parent.parent / "data" / "test.csv")
    got = predict(run, smooth=3, smooth_filter="median").preds
    want = smooth_sequences(
        raw.preds, test["video"].to_numpy(), test["frame"].to_numpy(), 3, "median"
    )
    assert np.allclose(got, want)
    assert not np.allclose(got, predict(run, smooth=3).preds)  # not the moving average
    r = medalist("predict", str(run), "--smooth", "3", "--smooth-filter", "mode")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--smooth-filter 'mode': use one of mean, gaussian, median" in r.stderr


def test_a_package_smooths_with_the_filter_predict_uses(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medalist.kaggle.package import PackageOptions, create_package
    from medalist.kaggle.runtime import predict_offline

    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    run = as_video(trained_run, wrong_every=None)
    data = run.parent.parent / "data"
    sample = pd.read_csv(data / "sample_submission.csv")[["id"]]
    for c in ("bar_h", "bar_v", "dot"):  # probabilities per class: the filter shows in them
        sample[c] = 0.0
    sample.to_csv(data / "sample_submission.csv", index=False)
    opts = PackageOptions(
        competition="shapes-demo", smooth=3, smooth_filter="median", out=tmp_path / "pkg"
    )
    package = create_package([run], opts)
    assert package.manifest["smooth_filter"] == "median"
    got = predict_offline(package.dataset_dir, data, tmp_path / "s.csv", quick="off")
    assert got.equals(predict(run, smooth=3, smooth_filter="median").submission)
    assert not got.equals(predict(run, smooth=3).submission)
