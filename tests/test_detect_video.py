"""Detection on video frames: the temporal boost (boxes that neighbouring frames confirm score
higher, isolated low-score boxes are dropped) chosen by `medalist smooth` and applied by
`predict --smooth`, `package --smooth` and the offline notebook, and wrong filter names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import medalist
from detect_data import DETECT_CONFIG
from frame_cases import wrong_frame_rows
from PIL import Image

from medalist.data.dataset import ImageDataset
from medalist.data.frames import FrameStack
from medalist.data.images import ImageSource
from medalist.tasks.detect_temporal import boost_sequences

NAN = [np.nan] * 6

VIDEO_DETECT_CONFIG = (
    DETECT_CONFIG.replace("  test_csv: null\n", "  test_csv: data/test.csv\n")
    .replace(
        "  metric: map50\n",
        "  metric: map50\n  sequence_column: video\n  frame_column: frame\n"
        "  group_column: video\n  include_unlabeled_images: false\n",
    )
    .replace("scheme: stratified", "scheme: group")
)


def make_detect_video_project(root: Path, videos: int = 4, frames: int = 4) -> Path:
    """Videos of a bright square drifting over noise (one box a frame, Global Wheat's layout
    plus `video` and `frame` columns); a test video with its rows shuffled. Returns the
    config path."""
    rng = np.random.default_rng(0)
    data = root / "data"
    for sub in ("train", "test"):
        (data / sub).mkdir(parents=True, exist_ok=True)

    def write(split: str, n_videos: int) -> pd.DataFrame:
        rows = []
        for v in range(n_videos):
            x0, y0 = int(rng.integers(4, 20)), int(rng.integers(4, 40))
            for t in range(frames):
                img = rng.integers(0, 50, (64, 64, 3)).astype(np.uint8)
                x, s = x0 + 4 * t, 16
                img[y0 : y0 + s, x : x + s] = 230
                name = f"{split}{v}_{t}"
                Image.fromarray(img).save(data / split / f"{name}.png")
                rows.append(
                    dict(image_id=name, width=64, height=64, bbox=f"[{x}, {y0}, {s}, {s}]",
                         video=f"{split}{v}", frame=t * 10)
                )  # fmt: skip
        return pd.DataFrame(rows)

    write("train", videos).to_csv(data / "train.csv", index=False)
    test = write("test", 1).sample(frac=1.0, random_state=1).reset_index(drop=True)
    test[["image_id", "video", "frame"]].to_csv(data / "test.csv", index=False)
    test[["image_id"]].assign(PredictionString="").to_csv(
        data / "sample_submission.csv", index=False
    )
    (root / "configs").mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "video.yaml"
    cfg.write_text(VIDEO_DETECT_CONFIG)
    return cfg


# ---- the boost on a constructed video -----------------------------------------------------------
def test_a_flickering_true_box_is_recovered_and_an_isolated_false_box_dropped() -> None:
    true = [10, 10, 30, 30]
    # Video a, frames 0..4 (rows shuffled): the true box flickers to 0.2 on frame 20, where a
    # false box (0.25, seen on no other frame) appears too. Video b at the same frame numbers
    # has the true box's place taken by a box of another class, and isolated boxes.
    rows = {
        ("a", 0): [[*true, 0.9, 0]],
        ("a", 10): [[*true, 0.9, 0]],
        ("a", 20): [[*true, 0.2, 0], [40, 40, 50, 50, 0.25, 0]],
        ("a", 30): [[11, 10, 31, 30, 0.9, 0]],  # moved one pixel: IoU 0.905
        ("a", 40): [[*true, 0.9, 0]],
        ("b", 10): [[*true, 0.6, 1], [40, 40, 50, 50, 0.1, 0]],
        ("b", 20): [[*true, 0.28, 0]],
    }
    order = [("a", 20), ("b", 10), ("a", 0), ("a", 40), ("b", 20), ("a", 30), ("a", 10)]
    preds = np.array([r + [NAN] * (2 - len(r)) for r in (rows[k] for k in order)], np.float32)
    seqs = np.array([k[0] for k in order])
    frames = np.array([k[1] for k in order])
    out = boost_sequences(preds, seqs, frames, 3, floor=0.3)
    got = {k: out[i][~np.isnan(out[i][:, 0])] for i, k in enumerate(order)}
    # Frame 20's true box: both neighbours confirm at 0.9 -> 0.2 + 0.8 * 0.9; the false box
    # (0.25 < 0.3, no neighbour overlaps it) is gone.
    assert got[("a", 20)].shape == (1, 6)
    assert got[("a", 20)][0, 4] == pytest.approx(0.2 + 0.8 * 0.9)
    assert np.array_equal(got[("a", 20)][0, :4], true)
    # Frame 10: neighbours 0 (0.9) and 20 (0.2) -> 0.9 + 0.1 * 0.55; frame 0, one neighbour.
    assert got[("a", 10)][0, 4] == pytest.approx(0.9 + 0.1 * 0.55)
    assert got[("a", 0)][0, 4] == pytest.approx(0.9 + 0.1 * 0.9)
    assert got[("a", 30)][0, 4] == pytest.approx(0.9 + 0.1 * (0.2 + 0.9) / 2)
    # Video b: the class-1 box is not confirmed by the class-0 box beside it (kept: 0.6 is
    # above the floor), the 0.1 box is dropped, and video a's boxes confirm nothing in b.
    assert got[("b", 10)].shape == (1, 6) and got[("b", 10)][0, 4] == pytest.approx(0.6)
    assert got[("b", 20)].shape == (0, 6)
    # The padded width is kept; window 1 changes nothing.
    assert out.shape == preds.shape
    assert np.array_equal(boost_sequences(preds, seqs, frames, 1, 0.3), preds, equal_nan=True)
    # A window of 5 reaches two frames each side: frame 20 is confirmed by 0, 10, 30 and 40.
    wide = boost_sequences(preds, seqs, frames, 5, floor=0.3)
    assert wide[0, 0, 4] == pytest.approx(0.2 + 0.8 * 0.9)


def test_a_neighbours_box_confirms_one_box_so_a_duplicate_is_not_boosted() -> None:
    # Frame 1 has the object twice (NMS left a looser box at 0.15, IoU 0.75 with the good
    # one); frames 0 and 2 have it once. Only the better box is confirmed; the duplicate,
    # confirmed by nothing, is under the floor and goes.
    one = [[10, 10, 30, 30, 0.8, 0]]
    preds = np.array(
        [one + [NAN], [[10, 10, 30, 30, 0.6, 0], [10, 10, 30, 25, 0.15, 0]], one + [NAN]],
        np.float32,
    )
    out = boost_sequences(preds, np.zeros(3), np.arange(3), 3, floor=0.3)
    assert out[1, 0, 4] == pytest.approx(0.6 + 0.4 * 0.8)
    assert np.isnan(out[1, 1]).all()
    # Above the floor the duplicate stays, at its own score.
    kept = boost_sequences(preds, np.zeros(3), np.arange(3), 3, floor=0.1)
    assert kept[1, 1, 4] == pytest.approx(0.15)


def test_a_one_frame_video_keeps_its_boxes() -> None:
    preds = np.array([[[0, 0, 5, 5, 0.1, 0]]], np.float32)
    assert np.array_equal(boost_sequences(preds, np.array(["v"]), np.array([3]), 3, 0.3), preds)


# ---- stacked frames as the detector's input -----------------------------------------------------
def test_one_augmentation_draw_moves_every_stacked_frame_and_the_boxes_alike() -> None:
    from medalist.data.dataset import mix_seed
    from medalist.tasks.detect_fusion import box_transform, transform_boxes

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 48, 64, 3)).astype(np.uint8)  # three distinct frames
    source = ImageSource([Path(f"{i}.png") for i in range(3)], (48, 64), 3, cached=frames)
    stack = FrameStack(source, np.array([[0, 1, 2]] * 12), rows=np.ones(12, dtype=int))
    target = np.array([[8, 6, 30, 20, 0], [40, 10, 60, 40, 1], [np.nan] * 5], np.float32)
    augment = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "Affine", "scale": [0.7, 1.3], "translate_percent": [-0.1, 0.1], "p": 1.0},
        {"name": "RandomBrightnessContrast", "p": 1.0},
    ]
    train = box_transform(augment, (64, 64), train=True)
    ds = ImageDataset(stack, np.arange(12), np.stack([target] * 12), train, seed=3,
                      sample=transform_boxes)  # fmt: skip
    moved = 0
    for i in range(12):
        x, y = ds[i]
        assert x.shape == (9, 64, 64) and y.shape == target.shape
        plain = box_transform(augment, (64, 64), train=True)
        for k in range(3):  # each frame and the boxes under the sample's one draw
            plain.set_random_seed(mix_seed(ds.seed, ds.fold, ds.epoch, int(ds.indices[i]), 7))
            want_x, want_y = transform_boxes(plain, frames[k], target)
            assert np.array_equal(x[3 * k : 3 * k + 3].numpy(), want_x.numpy()), (i, k)
            assert np.array_equal(y.numpy(), want_y.numpy(), equal_nan=True), (i, k)
        moved += int(not np.allclose(y[0, :4].numpy(), target[0, :4]))
    assert moved == 12  # the boxes moved with every draw (the scale is never exactly 1)


def test_in_chans_and_the_detectors_normalisation_follow_the_stacked_frames(
    tmp_path: Path,
) -> None:
    import torch

    from medalist.config import load_config
    from medalist.data.dataset import create_input_norm
    from medalist.models.detector import create_detector

    path = make_detect_video_project(tmp_path / "p", videos=2, frames=2)
    cfg = load_config(path, ["data.frame_offsets=[-1,0,1]"])
    assert cfg.model.in_chans == 9 and cfg.image_channels == 3
    norm = create_input_norm(cfg.data, cfg.model.in_chans)
    assert np.allclose(norm.mean.flatten().numpy() / 255, [0.485, 0.456, 0.406] * 3)
    model = create_detector(cfg, 1, None).eval()
    assert model.transform.image_mean == [0.0] * 9 and model.transform.image_std == [1.0] * 9
    with torch.no_grad():
        out = model([torch.rand(9, 64, 64)])
    assert out[0]["boxes"].shape[1] == 4
    grey = load_config(path, ["data.frame_offsets=[-2,-1,0,1,2]", "data.frames_grey=true"])
    assert grey.model.in_chans == 5 and grey.image_channels == 1


# ---- the commands on a tiny detection video ------------------------------------------------------
@pytest.mark.slow
def test_a_stacked_frame_detector_trains_smooths_predicts_and_packages_alike(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    cfg = make_detect_video_project(project)
    r = medalist("train", str(cfg), "--name", "d", "data.frame_offsets=[-1,0,1]", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    run = project / "runs" / "d"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["in_chans"] == 9 and saved["data"]["frame_offsets"] == [-1, 0, 1]
    r = medalist("smooth", str(run), "--windows", "1,3", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    table = pd.read_csv(run / "analysis" / "smoothing.csv")
    assert table["filter"].tolist() == ["none", "boost"]
    assert table["window"].tolist() == [1, 3]
    assert "boost" in r.stdout and (run / "plots" / "smoothing.png").stat().st_size > 0
    # A classification filter on a detection run: one line, exit 2, nothing written.
    r = medalist("predict", str(run), "--smooth", "3", "--smooth-filter", "mean", cwd=project)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "'mean' is not a filter of a detect run; use boost" in r.stderr
    assert not (run / "submission.csv").exists()
    r = medalist("predict", str(run), cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    plain = pd.read_csv(run / "submission.csv", keep_default_na=False)
    r = medalist("predict", str(run), "--smooth", "3", "--smooth-filter", "boost", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    boosted = pd.read_csv(run / "submission.csv", keep_default_na=False)
    assert boosted["image_id"].tolist() == plain["image_id"].tolist()
    assert not boosted.equals(plain)  # the boost changed the test boxes' scores
    r = medalist(
        "package", "runs/d", "--smooth", "3", "--check", "--competition", "video",
        "--user", "someone", cwd=project,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout
    # The notebook stacked the test frames as predict does (the check compared the strings);
    # a test table without the video column can't be stacked: one line, the file kept.
    test_csv = project / "data" / "test.csv"
    pd.read_csv(test_csv)[["image_id", "frame"]].to_csv(test_csv, index=False)
    before = (run / "submission.csv").read_bytes()
    r = medalist("predict", str(run), cwd=project)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "test.csv: no column 'video' (config competition.sequence_column)" in r.stderr
    assert (run / "submission.csv").read_bytes() == before
    # A fold without its out-of-fold boxes (an ensemble keeps none): one line, not a traceback.
    (run / "fold_1" / "oof_boxes.npz").unlink()
    r = medalist("smooth", str(run), "--windows", "1,3", cwd=project)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "oof_boxes.npz is missing" in r.stderr and "member runs" in r.stderr


def _oof_boxes_the_boost_rescores(project: Path, run: Path) -> tuple[np.ndarray, np.ndarray]:
    """Replace the run's out-of-fold boxes: each image's true box at 0.06, and a false box at
    0.1 that moves 12 px a frame (no neighbour confirms it). Returns (truth, boxes) pooled."""
    import json

    from medalist.tasks.detect_fusion import pad_boxes, save_boxes

    train = pd.read_csv(project / "data" / "train.csv").set_index("image_id")
    truth, pooled = [], []
    for fold in sorted(run.glob("fold_*")):
        rows = []
        for i in pd.read_csv(fold / "oof.csv")["id"].astype(str):
            x, y, w, h = json.loads(train.loc[i, "bbox"])
            t = int(train.loc[i, "frame"]) // 10
            rows.append([[x, y, x + w, y + h, 0.06, 0], [52 - 12 * t, 48, 72 - 12 * t, 60, 0.1, 0]])
            truth.append([[x, y, x + w, y + h, 0]])
        save_boxes(fold / "oof_boxes.npz", pad_boxes(rows, 2))
        pooled += rows
    return pad_boxes(truth, 1, 5), pad_boxes(pooled, 2)


@pytest.mark.slow
def test_the_boost_refits_the_score_threshold_the_submission_cuts_at(tmp_path: Path) -> None:
    """A threshold metric's score threshold is fitted on out-of-fold boxes; the boost raises
    the confirmed ones and drops isolated ones, so predict --smooth and the package fit it again
    on the boosted out-of-fold boxes and cut the test boxes there."""
    import json

    from medalist.tasks.detect_metrics import best_threshold, unpad
    from medalist.workflows.predict import predict

    project = tmp_path / "p"
    cfg = make_detect_video_project(project)
    r = medalist("train", str(cfg), "--name", "d", "competition.metric=wheat_ap", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    run = project / "runs" / "d"
    y, boxes = _oof_boxes_the_boost_rescores(project, run)
    # Unboosted, the best cut keeps the true and the false boxes (0.05): the true ones alone
    # can't be kept. The run's task state says so, as training would have fitted it.
    assert best_threshold("wheat_ap", y, boxes) == (0.05, 0.5)
    state = json.loads((run / "task.json").read_text())
    (run / "task.json").write_text(json.dumps({**state, "score_threshold": 0.05}))
    saved = (run / "task.json").read_bytes()
    r = medalist("predict", str(run), "--smooth", "3", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "score_threshold 0.05 -> 0.1" in r.stdout, r.stdout
    assert (run / "task.json").read_bytes() == saved  # the run keeps its own fit
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    scores = [float(v) for s in sub["PredictionString"] for v in s.split()[::5]]
    # The boosted test boxes include some between the two cuts; only those at 0.1 and up go.
    boosted = np.concatenate([b[:, 4] for b in unpad(predict(run, smooth=3).preds)])
    assert ((boosted >= 0.05) & (boosted < 0.1)).any()
    assert len(scores) == int((boosted >= 0.1).sum()) and min(scores) >= 0.1
    r = medalist(
        "package", "runs/d", "--smooth", "3", "--check", "--competition", "video",
        "--user", "someone", cwd=project,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout and "score_threshold 0.05 -> 0.1" in r.stdout
    manifest = json.loads(
        next(project.glob("packages/*/dataset/medalist-package.json")).read_text()
    )
    assert manifest["task"]["score_threshold"] == 0.1 and manifest["smooth_window"] == 3


# ---- wrong input: exit 2 with one line, as for classify and segment ------------------------------
def _edit_train(project: Path, edit) -> None:
    path = project / "data" / "train.csv"
    edit(pd.read_csv(path)).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("overrides", "edit", "needle"),
    [
        *wrong_frame_rows(2),
        (["predict.smooth_filter=median"], None,
         "predict.smooth_filter = 'median' does not suit competition.task: detect; use boost"),
    ],
)  # fmt: skip
def test_wrong_detection_frame_input_exits_2_with_one_line(
    tmp_path: Path, overrides: list[str], edit, needle: str
) -> None:
    project = tmp_path / "p"
    cfg = make_detect_video_project(project, videos=2, frames=3)
    if edit is not None:
        _edit_train(project, edit)
    r = medalist("train", str(cfg), "data.frame_offsets=[-1,0,1]", *overrides, cwd=project)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0], lines[0]
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())
