"""`medalist ensemble` of detection runs: their OOF boxes fused by weighted boxes fusion with
run weights fitted on OOF, the honest nested CV against the best run, and the ensemble through
predict and package --check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from detect_data import make_detect_project
from test_detect import detect_task

from medalist.tasks.detect_fusion import pad_boxes
from medalist.workflows.ensemble import honest_folds

pytest.importorskip("ensemble_boxes", reason="detection needs ensemble-boxes (pyproject)")


def truth_and_members(n: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True boxes of `n` images; a member that finds them exactly, one whose boxes are shifted
    by 9 px (IoU under 0.5 with a 12 px box) and scored higher."""
    rng = np.random.default_rng(0)
    truth, good, shifted = [], [], []
    for _ in range(n):
        boxes = []
        for _ in range(int(rng.integers(1, 3))):
            x, y = (int(v) for v in rng.integers(0, 40, 2))
            boxes.append((x, y, x + 12, y + 12))
        truth.append([(*b, 0) for b in boxes])
        good.append([(*b, 0.7, 0) for b in boxes])
        shifted.append([(b[0] + 9, b[1] + 9, b[2] + 9, b[3] + 9, 0.9, 0) for b in boxes])
    return pad_boxes(truth, 3, 5), pad_boxes(good, 4), pad_boxes(shifted, 4)


@pytest.mark.parametrize("metric", ["map50", "wheat_ap"])
def test_fitted_weights_favour_the_member_whose_boxes_are_the_truth(
    tmp_path: Path, metric: str
) -> None:
    task = detect_task(tmp_path, **{"competition.metric": metric})
    y, good, shifted = truth_and_members()
    w = task.fit_blend_weights(y, [shifted, good])
    assert w.sum() == pytest.approx(1.0) and w[1] > w[0]
    fused = task.combine([shifted, good], w)
    equal = task.combine([shifted, good], [0.5, 0.5])
    assert task.score(y, fused) == pytest.approx(1.0)  # the true boxes, alone
    assert task.score(y, equal) < 0.9  # the shifted boxes outrank or crowd them
    # The threshold metric's score threshold is refitted on the fused boxes.
    out = task.fit_postprocess(y, fused)
    if metric == "wheat_ap":
        assert out["score_threshold"] <= 0.7 and out["oof"] == pytest.approx(1.0)


def test_a_weight_of_zero_leaves_a_member_out_of_the_fusion(tmp_path: Path) -> None:
    task = detect_task(tmp_path)
    y, good, shifted = truth_and_members()
    assert np.array_equal(task.combine([shifted, good], [0.0, 1.0]), good, equal_nan=True)


def test_honest_cv_refits_the_box_weights_without_the_fold_it_scores(tmp_path: Path) -> None:
    task = detect_task(tmp_path)
    y, good, shifted = truth_and_members(8)
    folds = np.repeat([0, 1], 4)
    scores, weights = honest_folds(task, y, [shifted, good], folds, "fit")
    assert scores == pytest.approx([1.0, 1.0])
    assert all(w[1] > w[0] for w in weights)
    # Fold 0's true boxes are where the shifted member puts them: the weights fitted on fold 1
    # prefer the other member, so fold 0's honest score drops (weights fitted on all the rows
    # would have hidden that).
    y2 = y.copy()
    y2[:4, :, :4] += 9
    scores, weights = honest_folds(task, y2, [shifted, good], folds, "fit")
    assert weights[0][1] > weights[0][0] and weights[1][0] >= weights[1][1]
    assert scores[0] < 0.5 and scores[1] < 0.9


# ---- end to end -----------------------------------------------------------------------------
@pytest.mark.slow
def test_two_detection_runs_blend_predict_and_package(tmp_path: Path) -> None:
    config = make_detect_project(tmp_path, n_train=12, n_test=3)
    for name, extra in (("a", []), ("b", ["train.seed=7", "train.lr=2e-3"])):
        r = medalist("train", str(config), *extra, "--name", name, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
    r = medalist("ensemble", "runs/a", "runs/b", "--name", "blend", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "against the best run" in r.stdout
    run = tmp_path / "runs" / "blend"
    spec = json.loads((run / "ensemble.json").read_text())
    assert spec["members"] == ["a", "b"] and sum(spec["weights"].values()) == pytest.approx(1)
    assert len(spec["fold_weights"]) == 2
    scores = json.loads((run / "scores.json").read_text())
    assert len(scores["folds"]) == 2 and scores["against_best"]["run"] in ("a", "b")
    assert set(scores["members"]) == {"a", "b"}
    oof = pd.read_csv(run / "oof.csv")
    member = pd.read_csv(tmp_path / "runs" / "a" / "oof.csv")
    assert list(oof.columns) == list(member.columns)
    assert sorted(oof["id"]) == sorted(member["id"]) and oof["n_true"].sum() > 0

    r = medalist("predict", "runs/blend", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    assert list(sub["image_id"]) == ["t00", "t01", "t02"]
    r = medalist(
        "package", "runs/blend", "--check", "--competition", "det-demo", "--user", "someone",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout
    for args in (["compare", "runs/a", "runs/blend"], ["report", "runs/blend"]):
        r = medalist(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]


def test_a_members_oof_boxes_are_read_in_its_oof_tables_order_and_a_lost_image_is_named(
    tmp_path: Path,
) -> None:
    from detect_data import make_detect_competition

    from medalist.data.tables import load_train
    from medalist.errors import UserError
    from medalist.tasks.detect_fusion import save_boxes

    make_detect_competition(tmp_path / "data", n_train=6)
    task = detect_task(tmp_path)
    task.classes = ["object"]  # the table has no class column
    train = load_train(task.cfg)
    y = task.encode(train)
    ones = np.ones(y.shape[:2] + (1,), np.float32)
    boxes = np.concatenate([y[..., :4], ones, y[..., 4:]], axis=2)  # the truth, scored 1
    ids = train["image_id"].astype(str).tolist()
    folds = []
    for k, rows in enumerate([[0, 2, 4], [1, 3, 5]]):
        d = tmp_path / "runs" / "r" / f"fold_{k}"
        d.mkdir(parents=True)
        pd.DataFrame({"id": [ids[i] for i in rows], "fold": k}).to_csv(d / "oof.csv", index=False)
        save_boxes(d / "oof_boxes.npz", boxes[rows])
        folds.append([d])
    oof = pd.DataFrame({"id": ids[::-1], "fold": [1, 0] * 3})
    got_y, got = task.preds_from_oof(oof, folds)
    assert np.array_equal(got_y, y[::-1], equal_nan=True)
    assert np.array_equal(got[:, : y.shape[1], :4], got_y[..., :4], equal_nan=True)
    assert task.score(got_y, got) == pytest.approx(1.0)
    lost = pd.concat([oof, pd.DataFrame({"id": ["nowhere"], "fold": [0]})])
    with pytest.raises(UserError, match="image 'nowhere' of .*oof.csv has no out-of-fold boxes"):
        task.preds_from_oof(lost, folds)
    with pytest.raises(UserError, match="this is a detection run"):
        task.preds_from_oof(oof)  # smoothing reads the table alone
