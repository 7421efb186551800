"""Ensembles of segmentation runs: OOF probability masks blended with weights fitted on the
run's mask metric, post-processing refitted on the blend, predict and package of the blend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from PIL import Image
from test_segment import make_seg_project

from medalist.data.rle import rle_encode
from medalist.runs import layout
from medalist.tasks.segment_blend import (
    fit_mask_weights,
    read_oof_masks,
    simplex_grid,
    weighted_masks,
)
from medalist.tasks.segment_metrics import per_image_scores


def dice_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return per_image_scores(y, p, 0.5, "dice")


def squares(rng: np.random.Generator, n: int, size: int = 16) -> np.ndarray:
    y = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        y0, x0 = rng.integers(0, size // 2, 2)
        y[i, y0 : y0 + size // 3, x0 : x0 + size // 3] = 1
    return y


def test_simplex_grid_points_sum_to_one_and_include_equal_weights() -> None:
    for m in (2, 3, 4, 6):
        grid = simplex_grid(m)
        assert grid.shape[1] == m and len(grid) <= 121
        assert np.allclose(grid.sum(axis=1), 1.0) and (grid >= 0).all()
        assert any(np.allclose(g, 1.0 / m) for g in grid)
    assert len(simplex_grid(2)) == 12  # 0, 0.1, ..., 1 and equal weights once more


def test_fitted_mask_weights_favour_the_member_whose_masks_are_right() -> None:
    rng = np.random.default_rng(0)
    y = squares(rng, 150)
    good = np.clip(y * 0.7 + rng.uniform(0, 0.35, y.shape), 0, 1).astype(np.float16)
    noise = rng.uniform(0, 1, y.shape).astype(np.float16)
    w = fit_mask_weights(dice_rows, y, [noise, good])
    assert w.sum() == pytest.approx(1.0) and w[1] >= 0.8
    fitted = dice_rows(y, weighted_masks([noise, good], w)).mean()
    equal = dice_rows(y, weighted_masks([noise, good], [0.5, 0.5])).mean()
    assert fitted > equal + 0.1
    # Two members that are each half right (left and right halves): the blend beats both.
    left, right = y.copy().astype(np.float16), y.copy().astype(np.float16)
    left[..., 8:] = 0.3
    right[..., :8] = 0.3
    both = fit_mask_weights(dice_rows, y, [left, right])
    assert both == pytest.approx([0.5, 0.5])


def test_weighted_masks_are_the_normalised_weighted_mean_in_float32() -> None:
    a = np.full((2, 4, 4), 0.2, np.float16)
    b = np.full((2, 4, 4), 0.8, np.float16)
    out = weighted_masks([a, b], [1.0, 3.0])
    assert out.dtype == np.float32
    assert np.allclose(out, 0.25 * np.float32(a) + 0.75 * np.float32(b))


def test_oof_masks_are_read_fold_by_fold_into_the_rows_of_the_merged_table(tmp_path: Path) -> None:

    ids = [f"i{k}" for k in range(6)]
    rng = np.random.default_rng(1)
    want = {i: rng.uniform(0, 1, (3, 5)).astype(np.float16) for i in ids}
    fold_ids = [["i4", "i0", "i2"], ["i5", "i3", "i1"]]
    for k, rows in enumerate(fold_ids):
        for seed in range(2):
            d = tmp_path / (f"fold_{k}" if seed == 0 else f"fold_{k}_seed{seed}")
            d.mkdir()
            pd.DataFrame({"id": rows}).to_csv(d / "oof.csv", index=False)
            # seed 1 predicts 1 - p: the average over seeds is 0.5 everywhere but row i0
            masks = np.stack([want[i] if seed == 0 else 1 - want[i] for i in rows])
            if seed == 1 and k == 0:
                masks[1] = want["i0"]
            np.save(d / "oof_masks.npy", masks.astype(np.float16))
    merged = pd.DataFrame({"id": ids, "fold": [0, 1, 0, 1, 0, 1]})
    dirs = [[layout.fold_dir(tmp_path, k, i) for i in range(2)] for k in range(2)]
    got = read_oof_masks(merged, dirs, (3, 5), 1)
    assert got.dtype == np.float16 and got.shape == (6, 3, 5)
    assert np.array_equal(got[0], want["i0"])
    for r in range(1, 6):
        mean = (want[ids[r]].astype(np.float32) + (1 - want[ids[r]]).astype(np.float32)) / 2
        assert np.array_equal(got[r], mean.astype(np.float16))


def test_a_run_without_its_oof_masks_is_named_and_not_blended(tmp_path: Path) -> None:

    from medalist.errors import UserError

    (tmp_path / "fold_0").mkdir()
    with pytest.raises(UserError, match="fold_0/oof_masks.npy is missing"):
        read_oof_masks(pd.DataFrame({"id": ["a"]}), [[tmp_path / "fold_0"]], (2, 2), 1)


@pytest.mark.slow
def test_two_segment_runs_ensemble_predict_and_package_check(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    cfg = make_seg_project(project, n_train=24, n_test=4)
    for name, lr in (("a", "1.0e-2"), ("b", "3.0e-3")):
        r = medalist("train", str(cfg), f"train.lr={lr}", "--name", name, cwd=project)
        assert r.returncode == 0, r.stderr[-3000:]
    r = medalist("ensemble", "a", "b", "--name", "ens", cwd=project)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "against the best run" in r.stdout
    ens = project / "runs" / "ens"
    spec = json.loads((ens / "ensemble.json").read_text())
    assert spec["members"] == ["a", "b"] and sum(spec["weights"].values()) == pytest.approx(1)
    assert len(spec["fold_weights"]) == 2 and "dice" in spec["objective"]
    scores = json.loads((ens / "scores.json").read_text())
    assert len(scores["folds"]) == 2 and set(scores["members"]) == {"a", "b"}
    assert "threshold" in scores and "postprocess" in scores
    task = json.loads((ens / "task.json").read_text())
    assert task["threshold"] == scores["threshold"]
    # the blend's oof.csv: a row per image, the blended masks' areas and Dice
    oof = pd.read_csv(ens / "oof.csv")
    a_oof = pd.read_csv(project / "runs" / "a" / "oof.csv")
    assert sorted(oof["id"]) == sorted(a_oof["id"])
    assert list(oof.columns) == list(a_oof.columns)
    assert oof["dice"].mean() == pytest.approx(scores["oof"])
    r = medalist("predict", "runs/ens", cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]
    from medalist.runs.rundir import open_run_dir
    from medalist.workflows.inference import run_test_predictions
    from medalist.workflows.predict import ensemble_test_predictions

    members = {n: run_test_predictions(open_run_dir(project / "runs" / n)).preds for n in "ab"}
    want = sum(spec["weights"][n] * members[n].astype(np.float32) for n in "ab")
    assert np.allclose(ensemble_test_predictions(open_run_dir(ens)), want, atol=1e-6)
    r = medalist("report", "runs/ens", cwd=project)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = medalist("runs", cwd=project)
    assert r.returncode == 0 and "ensemble: a + b" in r.stdout, r.stdout[-2000:]
    sub = pd.read_csv(ens / "submission.csv", keep_default_na=False)
    sample = pd.read_csv(project / "data" / "sample_submission.csv")
    assert list(sub["id"]) == list(sample["id"])
    r = medalist(
        "package", "runs/ens", "--check", "--competition", "seg-demo", "--user", "someone",
        cwd=project,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout


# ---- smoothing masks over video frames ------------------------------------------------------


def fake_video_run(project: Path) -> Path:
    """A segmentation run made by hand (no training): 3 videos of 8 frames (each video one
    still object), 3 folds; its OOF masks right (0.9 on the mask, 0.1 off it) except frames 2
    and 5, which are inverted and which a 3-frame average repairs."""
    from medalist.config.load import load_config
    from medalist.tasks.segment import SegmentTask

    cfg_path = make_seg_project(project, n_train=24, n_test=2)
    data = project / "data"
    train = pd.read_csv(data / "train.csv", keep_default_na=False)
    train["video"] = "v" + (np.arange(24) // 8).astype(str)
    train["frame"] = np.arange(24) % 8
    for i in range(24):  # 32 px frames; an object that stays put within each video
        Image.new("RGB", (32, 32)).save(data / "train" / f"{train['id'][i]}.png")
        mask = np.zeros((32, 32), np.uint8)
        v = i // 8
        mask[4 + 6 * v : 14 + 6 * v, 3 + 5 * v : 20 + 2 * v] = 1
        train.loc[i, "rle"] = rle_encode(mask)
    train.to_csv(data / "train.csv", index=False)
    text = cfg_path.read_text().replace("n_splits: 2", "n_splits: 3")
    text = text.replace("competition:\n", "competition:\n  sequence_column: video\n")
    text = text.replace("competition:\n", "competition:\n  frame_column: frame\n")
    cfg_path.write_text(text)
    cfg = load_config(cfg_path)
    task = SegmentTask.from_config(cfg, train)
    y = task.encode(train).astype(np.float32)
    p = 0.8 * y + 0.1
    wrong = train["frame"].isin([2, 5]).to_numpy()
    p[wrong] = 1 - p[wrong]
    run = project / "runs" / "video"
    folds = np.arange(24) % 3
    for k in range(3):
        (run / f"fold_{k}").mkdir(parents=True)
        rows = np.flatnonzero(folds == k)[::-1]  # a fold's rows in its own order
        pd.DataFrame({"id": train["id"][rows]}).to_csv(run / f"fold_{k}/oof.csv", index=False)
        np.save(run / f"fold_{k}/oof_masks.npy", p[rows].astype(np.float16))
    (run / "config.yaml").write_text(text)
    (run / "task.json").write_text(json.dumps(task.state()))
    pd.DataFrame({"id": train["id"], "fold": folds}).to_csv(run / "oof.csv", index=False)
    return run


def test_smooth_averages_each_pixel_over_neighbouring_frames_of_a_segment_run(
    tmp_path: Path,
) -> None:
    from medalist.workflows.smooth import evaluate_smoothing

    run = fake_video_run(tmp_path / "proj")
    result = evaluate_smoothing(run, [1, 3])
    table = result.table.set_index("window")
    assert table.loc[1, "mean"] < 0.8  # 2 frames in 8 inverted
    assert table.loc[3, "mean"] == pytest.approx(1.0)
    assert table.loc[3, "verdict"] == "better" and result.best == 3
    r = medalist("smooth", str(run), "--windows", "1,3", cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "best window beyond noise: 3 frames" in r.stdout


def test_runs_whose_masks_differ_in_size_are_not_blended(tmp_path: Path) -> None:
    import shutil

    project = tmp_path / "proj"
    run = fake_video_run(project)
    (run / "scores.json").write_text(json.dumps({"metric": "dice", "higher_is_better": True}))
    other = project / "runs" / "big"
    shutil.copytree(run, other)
    text = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(text.replace("image_size: 32", "image_size: 64"))
    r = medalist("ensemble", "video", "big", "--name", "ens", cwd=project)
    assert r.returncode == 2, r.stderr
    assert "64x64 px against" in r.stderr and "32x32 px" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (project / "runs" / "ens").exists()
