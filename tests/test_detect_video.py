"""Detection on video frames: the temporal boost (boxes that neighbouring frames confirm score
higher, isolated low-score boxes are dropped) chosen by `medalist smooth` and applied by
`predict --smooth`, `package --smooth` and the offline notebook, and wrong filter names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from detect_data import DETECT_CONFIG
from PIL import Image

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


def test_a_one_frame_video_keeps_its_boxes() -> None:
    preds = np.array([[[0, 0, 5, 5, 0.1, 0]]], np.float32)
    assert np.array_equal(boost_sequences(preds, np.array(["v"]), np.array([3]), 3, 0.3), preds)


# ---- the commands on a tiny detection video ------------------------------------------------------
@pytest.mark.slow
def test_smooth_predict_and_package_boost_a_detection_video(tmp_path: Path) -> None:
    project = tmp_path / "p"
    cfg = make_detect_video_project(project)
    r = medalist("train", str(cfg), "--name", "d", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    run = project / "runs" / "d"
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
