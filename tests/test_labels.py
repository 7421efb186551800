"""`medalist labels` (confident learning on out-of-fold predictions) and `train --exclude`."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, medalist
from PIL import Image

from medalist.cli import main
from medalist.tasks import label_issues as cl

# ---- helpers --------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str):
    """The CLI in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["medalist", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def constructed_oof(n_per_class: int = 10) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Labels and out-of-fold probabilities of 3 classes: most rows confidently right, three
    flipped rows the model confidently puts in another class, one hard row that is right with
    low confidence, one row the model gets wrong without being sure. Returns (labels, probs,
    positions of the special rows)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), n_per_class)
    n = len(labels)
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), labels] = 0.8
    probs += rng.uniform(0, 0.02, (n, 3))
    special = {"flip_a": 2, "flip_b": n_per_class + 3, "flip_c": 2 * n_per_class + 5}
    # (row, the class the model is sure of, its probability of the given label)
    for row, other, own in (
        (2, 1, 0.05),
        (n_per_class + 3, 2, 0.03),
        (2 * n_per_class + 5, 0, 0.07),
    ):
        probs[row] = 0.02
        probs[row, other], probs[row, labels[row]] = 0.9, own
    special["hard"], special["unsure"] = 5, n_per_class + 5
    probs[5] = [0.4, 0.35, 0.25]  # given 0, right but unsure
    probs[n_per_class + 5] = [0.36, 0.34, 0.30]  # given 1, wrong but unsure
    return labels, probs / probs.sum(axis=1, keepdims=True), special


# ---- the method -----------------------------------------------------------------------------


@pytest.mark.parametrize("filter_by", cl.FILTERS)
def test_confident_learning_ranks_the_flipped_rows_first_by_self_confidence(filter_by):
    labels, probs, at = constructed_oof()
    ids = pd.Series([f"r{i:02d}" for i in range(len(labels))])
    table, found = cl.issue_table(
        ids, ids.str[-1:], labels, probs, ["a", "b", "c"], filter_by, "self_confidence"
    )
    # Lowest probability of the given label first: 0.03 (row 13), 0.05 (row 2), 0.07 (row 25).
    assert table["id"].tolist() == ["r13", "r02", "r25"]
    assert table["given_label"].tolist() == ["b", "a", "c"]
    assert table["suggested_label"].tolist() == ["c", "b", "a"]
    assert table["rank"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(table["self_confidence"], probs[[13, 2, 25], [1, 0, 2]])
    # A hard but right row and an unsure wrong one are no label issues.
    assert not found.flagged[at["hard"]] and not found.flagged[at["unsure"]]


def test_class_thresholds_are_each_class_mean_self_confidence():
    labels, probs, _ = constructed_oof()
    expected = [probs[labels == k, k].mean() for k in range(3)]
    np.testing.assert_allclose(cl.class_thresholds(labels, probs), expected, rtol=0, atol=1e-12)


def test_prune_by_noise_rate_flags_per_pair_the_calibrated_count_with_the_largest_margin():
    # Class 0: 8 rows, 3 confidently class 1 (p1 0.95, 0.92, 0.9 reach class 1's threshold
    # 0.85) and one unsure (p1 0.55), whose argmax is class 1 too. Calibrated, the joint's
    # (0 -> 1) cell is 3 * 8/7 -> 3: the three largest margins p1 - p0, not the unsure row.
    probs = np.array(
        [[0.95, 0.05]] * 4
        + [[0.05, 0.95], [0.08, 0.92], [0.1, 0.9], [0.45, 0.55]]
        + [[0.2, 0.8]] * 4
        + [[0.1, 0.9]] * 4
    )
    labels = np.array([0] * 8 + [1] * 8)
    guess = cl.confident_guess(probs, cl.class_thresholds(labels, probs))
    assert cl.confident_joint(labels, guess, 2).tolist() == [[4, 3], [0, 4]]
    flagged = cl.find_issues(labels, probs, "prune_by_noise_rate")
    assert np.flatnonzero(flagged).tolist() == [4, 5, 6]


def test_a_row_whose_given_label_is_the_models_first_choice_is_never_flagged():
    # Row 0 (given 0, p0 0.55) is confidently class 1 (p1 0.45 reaches class 1's threshold
    # 0.44) but its most likely class is its own: not an issue under any filter.
    probs = np.array([[0.55, 0.45], [0.9, 0.1], [0.9, 0.1], [0.62, 0.38], [0.5, 0.5]])
    labels = np.array([0, 0, 0, 1, 1])
    guess = cl.confident_guess(probs, cl.class_thresholds(labels, probs))
    assert guess[0] == 1
    for filter_by in cl.FILTERS:
        assert not cl.find_issues(labels, probs, filter_by)[0], filter_by


def test_normalized_margin_ranks_by_the_gap_to_the_strongest_other_class():
    labels = np.array([0, 0])
    probs = np.array([[0.15, 0.45, 0.40], [0.2, 0.75, 0.05]])
    # self-confidence ranks row 0 first (0.15 < 0.2); the margin ranks row 1 first (-0.55 < -0.3)
    assert cl.rank_all(labels, probs, "self_confidence").tolist() == [0, 1]
    assert cl.rank_all(labels, probs, "normalized_margin").tolist() == [1, 0]
    margins = cl.ranking_scores(labels, probs, "normalized_margin")
    np.testing.assert_allclose(margins, [0.35, 0.225], rtol=0, atol=1e-12)


def test_multilabel_issues_are_found_label_by_label():
    rng = np.random.default_rng(1)
    y = (rng.random((20, 2)) > 0.5).astype(float)
    p = np.where(y > 0, 0.9, 0.1) + rng.uniform(-0.03, 0.03, y.shape)
    for row, label in ((4, 1), (9, 0)):  # flipped, and the model is sure of the other value
        p[row, label] = 0.99 if y[row, label] else 0.01
        y[row, label] = 1 - y[row, label]
    ids = pd.Series([f"r{i}" for i in range(20)])
    table, _ = cl.multilabel_issue_table(
        ids, ids, y, p, ["x", "y"], "prune_by_noise_rate", "self_confidence"
    )
    given = dict(
        zip(zip(table["id"], table["label"], strict=True), table["given_label"], strict=True)
    )
    assert given == {("r4", "y"): int(y[4, 1]), ("r9", "x"): int(y[9, 0])}
    suggested = dict(zip(table["id"], table["suggested_label"], strict=True))
    assert suggested == {"r4": 1 - int(y[4, 1]), "r9": 1 - int(y[9, 0])}


# ---- the command on a classification run ------------------------------------------------------


def fake_run(config: Path, name: str, task: dict, oof: pd.DataFrame) -> Path:
    """A run directory with a config, task.json and the given oof.csv (no training)."""
    run = config.parent.parent / "runs" / name
    run.mkdir(parents=True)
    shutil.copy(config, run / "config.yaml")
    (run / "task.json").write_text(json.dumps(task))
    oof.to_csv(run / "oof.csv", index=False)
    return run


def classify_run(config: Path) -> tuple[Path, list[str]]:
    """A fake finished run on the tiny project whose OOF contradicts three labels; returns the
    run and the ids of the contradicted rows, most suspicious first."""
    train = pd.read_csv(config.parent.parent / "data" / "train.csv")
    labels = train["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    probs = np.full((len(train), 3), 0.05)
    probs[np.arange(len(train)), labels] = 0.9
    flipped = {7: 0.02, 20: 0.04, 30: 0.06}  # row -> probability of the given label
    for row, own in flipped.items():
        probs[row] = 0.03
        probs[row, (labels[row] + 1) % 3], probs[row, labels[row]] = 0.95, own
    oof = pd.DataFrame({"id": train["id"], "fold": np.arange(len(train)) % 3, "target": labels})
    for j, c in enumerate(CLASSES):
        oof[f"pred_{c}"] = probs[:, j]
    task = {"kind": "multiclass", "target_columns": ["label"], "classes": CLASSES}
    return fake_run(config, "fake", task, oof), [train["id"][r] for r in flipped]


def test_labels_writes_the_ranked_table_and_a_page_that_shows_each_image(
    tiny_project, monkeypatch, capsys
):
    run, expected = classify_run(tiny_project)
    code, out, err = run_cli(monkeypatch, capsys, "labels", str(run))
    assert code == 0, err
    assert "suspects 3 of 36 rows" in out
    table = pd.read_csv(run / "analysis" / "label_issues.csv")
    assert table.columns.tolist() == [
        "id",
        "fold",
        "given_label",
        "suggested_label",
        "self_confidence",
        "suggested_confidence",
        "score",
        "rank",
    ]
    assert table["id"].tolist() == expected
    train = pd.read_csv(tiny_project.parent.parent / "data" / "train.csv").set_index("id")
    assert table["given_label"].tolist() == train.loc[expected, "label"].tolist()
    shifted = [CLASSES[(CLASSES.index(g) + 1) % 3] for g in table["given_label"]]
    assert table["suggested_label"].tolist() == shifted
    assert (run / "plots" / "label_issues.png").is_file()
    # The page holds each suspect's own pixels, in rank order, next to both labels.
    page = (run / "analysis" / "label_issues.html").read_text()
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 3
    images = tiny_project.parent.parent / "data" / "train"
    for uri, image_id in zip(uris, expected, strict=True):
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))))
        np.testing.assert_array_equal(shown, np.asarray(Image.open(images / f"{image_id}.png")))
    for image_id, given, suggested in zip(expected, table["given_label"], shifted, strict=True):
        assert re.search(rf"{image_id}.*?{given}.*?{suggested}", page, re.S)


def test_labels_on_a_multilabel_run_names_the_label_of_each_suspect(
    tiny_project, monkeypatch, capsys
):
    train = pd.read_csv(tiny_project.parent.parent / "data" / "train.csv")
    n = len(train)
    y = np.stack([np.arange(n) % 2, (np.arange(n) // 2) % 2], axis=1).astype(float)
    p = np.where(y > 0, 0.92, 0.06)
    p[10, 1], y[10, 1] = 0.99 if y[10, 1] else 0.01, 1 - y[10, 1]  # given the wrong value
    oof = pd.DataFrame({"id": train["id"], "fold": np.arange(n) % 3})
    for j, name in enumerate(["round", "bright"]):
        oof[f"target_{name}"], oof[f"pred_{name}"] = y[:, j], p[:, j]
    task = {
        "kind": "multilabel",
        "target_columns": ["round", "bright"],
        "classes": ["round", "bright"],
        "thresholds": [0.5, 0.5],
    }
    run = fake_run(tiny_project, "multi", task, oof)
    code, out, err = run_cli(monkeypatch, capsys, "labels", str(run))
    assert code == 0, err
    assert "suspects 1 of 72 row-label pairs" in out
    table = pd.read_csv(run / "analysis" / "label_issues.csv")
    assert table[["id", "label", "given_label", "suggested_label"]].values.tolist() == [
        [train["id"][10], "bright", int(y[10, 1]), 1 - int(y[10, 1])]
    ]


def test_labels_refuses_a_regression_run_with_exit_2(tiny_project, monkeypatch, capsys):
    oof = pd.DataFrame({"id": ["a", "b"], "fold": [0, 1], "target": [1.5, 2.0], "pred": [1, 2]})
    task = {"kind": "regression", "target_columns": ["label"], "classes": []}
    run = fake_run(tiny_project, "reg", task, oof)
    before = files_of(run)
    code, _, err = run_cli(monkeypatch, capsys, "labels", str(run))
    assert_one_line_error(code, err, "regression", "reg")
    assert files_of(run) == before


@pytest.mark.parametrize(
    "args, needle",
    [(["--filter-by", "loss"], "--filter-by 'loss'"), (["--rank-by", "x"], "--rank-by 'x'")],
)
def test_labels_refuses_an_unknown_method_with_exit_2(
    tiny_project, monkeypatch, capsys, args, needle
):
    run, _ = classify_run(tiny_project)
    code, _, err = run_cli(monkeypatch, capsys, "labels", str(run), *args)
    assert_one_line_error(code, err, needle)
    assert not (run / "analysis").exists()


def test_labels_on_an_unfinished_run_says_to_finish_it(tiny_project, monkeypatch, capsys):
    run, _ = classify_run(tiny_project)
    (run / "oof.csv").unlink()
    code, _, err = run_cli(monkeypatch, capsys, "labels", str(run))
    assert_one_line_error(code, err, "no oof.csv", "--resume")


# ---- segmentation -----------------------------------------------------------------------------


@pytest.mark.slow
def test_labels_ranks_the_images_whose_given_mask_the_model_confidently_contradicts(
    tmp_path, monkeypatch, capsys
):
    from test_segment import make_seg_project

    from medalist.config import load_config
    from medalist.data.rle import rle_encode
    from medalist.data.tables import load_train
    from medalist.tasks.segment import SegmentTask

    config = make_seg_project(tmp_path / "proj", n_train=16, n_test=2)
    cfg = load_config(config)
    train = load_train(cfg)
    true = SegmentTask.from_config(cfg, train).encode(train)  # (16, 32, 32)
    full = [i for i in range(len(train)) if true[i].sum() > 0]
    # The model is sure of the true masks; the table is made wrong for two images: one mask
    # erased (a missed annotation), one moved to the opposite corner.
    csv = config.parent.parent / "data" / "train.csv"
    table = pd.read_csv(csv)
    erased, moved = full[1], full[4]
    table.loc[erased, "rle"] = ""
    h, w = np.asarray(Image.open(tmp_path / "proj/data/train" / f"{table['id'][moved]}.png")).shape[
        :2
    ]
    wrong = np.zeros((h, w), np.uint8)
    wrong[-h // 3 :, -w // 3 :] = 1
    table.loc[moved, "rle"] = rle_encode(wrong)
    table.to_csv(csv, index=False)
    probs = np.where(true > 0, 0.97, 0.02).astype(np.float16)
    run = config.parent.parent / "runs" / "seg"
    for k in range(2):
        rows = np.arange(len(train))[np.arange(len(train)) % 2 == k]
        (run / f"fold_{k}").mkdir(parents=True)
        pd.DataFrame({"id": train["id"][rows], "fold": k}).to_csv(
            run / f"fold_{k}/oof.csv", index=False
        )
        np.save(run / f"fold_{k}/oof_masks.npy", probs[rows])
    shutil.copy(config, run / "config.yaml")
    task = {"kind": "mask", "classes": ["mask"], "columns": ["rle"], "thresholds": [0.5]}
    (run / "task.json").write_text(json.dumps(task))

    code, out, err = run_cli(monkeypatch, capsys, "labels", str(run))
    assert code == 0, err
    assert "suspects 2 of 16 images" in out
    found = pd.read_csv(run / "analysis" / "label_issues.csv")
    assert sorted(found["id"]) == sorted(train["id"][[erased, moved]])
    assert found["disagreement"].tolist() == [1.0, 1.0]
    assert found.columns.tolist()[:2] == ["id", "fold"] and "rank" in found.columns
    page = (run / "analysis" / "label_issues.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 2
    assert (run / "plots" / "label_issues.png").is_file()


# ---- train --exclude --------------------------------------------------------------------------


@pytest.mark.slow
def test_train_exclude_leaves_exactly_those_ids_out_and_resume_keeps_them(tiny_project):
    project = tiny_project.parent.parent
    drop = ["img_0004", "img_0011", "img_0019", "img_0030"]
    listed = project / "suspects.csv"
    pd.DataFrame({"id": drop + drop[:1], "note": "x"}).to_csv(listed, index=False)
    r = medalist(
        "train",
        str(tiny_project),
        "--name",
        "ex",
        "--exclude",
        str(listed),
        "--folds",
        "0",
        cwd=project,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    listed.unlink()  # the resumed run must not need the file it started from
    r = medalist("train", "--resume", "runs/ex", cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]
    run = project / "runs" / "ex"
    every = pd.read_csv(project / "data" / "train.csv")["id"]
    kept = sorted(set(every) - set(drop))
    assert sorted(pd.read_csv(run / "oof.csv")["id"]) == kept
    folds = pd.read_csv(run / "folds.csv")
    assert sorted(folds["id"]) == kept
    assert pd.read_csv(run / "excluded.csv")["id"].tolist() == drop
    # The kept rows are in the folds a run without --exclude gets (the project's folds file).
    (shared,) = (project / "folds").glob("*.csv")
    original = pd.read_csv(shared).set_index("id")["fold"]
    assert len(original) == len(every)
    assert folds.set_index("id")["fold"].to_dict() == original.loc[kept].to_dict()


@pytest.mark.parametrize(
    "content, needles",
    [
        (None, ["not found"]),
        ("image,label\nimg_0001,dot\n", ["no 'id' column", "image, label"]),
        ("id\nimg_0001\nnot_a_row\n", ["1 of its 2 ids are not in the train table", "not_a_row"]),
        ("id\n", ["lists no ids"]),
        ("id\n" + "".join(f"img_{i:04d}\n" for i in range(36)), ["every training row"]),
    ],
    ids=["missing", "no-id-column", "unknown-id", "empty", "everything"],
)
def test_train_exclude_with_a_bad_file_exits_2_and_writes_nothing(
    tiny_project, monkeypatch, capsys, content, needles
):
    project = tiny_project.parent.parent
    listed = project / "suspects.csv"
    if content is not None:
        listed.write_text(content)
    before = files_of(project)
    code, _, err = run_cli(
        monkeypatch, capsys, "train", str(tiny_project), "--exclude", str(listed)
    )
    assert_one_line_error(code, err, "--exclude", *needles)
    assert files_of(project) == before
