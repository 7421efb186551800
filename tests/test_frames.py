"""Stacked video frames ("2.5D" inputs, `data.frame_offsets`): which frames a row stacks, one
augmentation draw for all of them, the channel count and normalisation, wrong input, and a
classification and a segmentation project trained, predicted and packaged end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY_CONFIG, medalist
from frame_cases import wrong_frame_rows
from PIL import Image

from medalist.config import load_config
from medalist.data.dataset import ImageDataset, create_input_norm, create_transform
from medalist.data.frames import FrameStack, frame_neighbours
from medalist.data.images import ImageSource
from medalist.data.rle import rle_encode

VIDEO_CONFIG = (
    TINY_CONFIG.replace(
        "  metric: accuracy\n",
        "  metric: accuracy\n  sequence_column: video\n  frame_column: frame\n",
    )
    .replace("scheme: stratified", "scheme: group")
    .replace("  seed: 42\n", "  seed: 42\n")
    .replace("n_splits: 3", "n_splits: 2")
    .replace("  image_size: 16\n", "  image_size: 16\n  frame_offsets: [-1, 0, 1]\n")
    .replace("epochs: 2", "epochs: 1")
)
VIDEO_CONFIG = VIDEO_CONFIG.replace(
    "  sequence_column: video\n", "  sequence_column: video\n  group_column: video\n"
)


def moving_square(direction: int, frames: int, rng: np.random.Generator, size: int = 24):
    """Frames of a bright square drifting left (-1) or right (+1) over noise, and its masks."""
    x0 = int(rng.integers(2, 6)) if direction > 0 else int(rng.integers(size - 12, size - 8))
    y0 = int(rng.integers(2, size - 8))
    for t in range(frames):
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), dtype=np.uint8)
        x = x0 + direction * 2 * t
        mask[y0 : y0 + 6, x : x + 6] = 1
        img[mask == 1] = 230
        yield img, mask


def make_video_project(
    root: Path, *, segment: bool = False, videos: int = 6, frames: int = 5
) -> Path:
    """Train videos of squares moving left or right (the label: the direction, which one frame
    can't tell), test videos with their rows shuffled; returns the config path."""
    rng = np.random.default_rng(0)
    data = root / "data"
    for sub in ("train", "test"):
        (data / sub).mkdir(parents=True, exist_ok=True)

    def write(split: str, n_videos: int) -> pd.DataFrame:
        rows = []
        for v in range(n_videos):
            direction = 1 if v % 2 else -1
            for t, (img, mask) in enumerate(moving_square(direction, frames, rng)):
                name = f"{split}_{v}_{t}"
                Image.fromarray(img).save(data / split / f"{name}.png")
                label = "right" if direction > 0 else "left"
                target = rle_encode(mask) if segment else label
                rows.append({"id": name, "video": f"{split}{v}", "frame": t * 10, "y": target})
        return pd.DataFrame(rows)

    train = write("train", videos)
    train.rename(columns={"y": "rle" if segment else "label"}).to_csv(
        data / "train.csv", index=False
    )
    test = write("test", 2).sample(frac=1.0, random_state=1).reset_index(drop=True)
    test[["id", "video", "frame"]].to_csv(data / "test.csv", index=False)
    sample = pd.DataFrame(
        {"id": test["id"], ("rle" if segment else "label"): "" if segment else "left"}
    )
    sample.to_csv(data / "sample_submission.csv", index=False)
    text = VIDEO_CONFIG
    if segment:
        text = (
            text.replace("competition:\n", "competition:\n  task: segment\n")
            .replace("target_column: label", "target_column: rle")
            .replace("metric: accuracy", "metric: dice")
            .replace("image_size: 16", "image_size: 32")
        )
    (root / "configs").mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "video.yaml"
    cfg.write_text(text)
    return cfg


# ---- which frames a row stacks ----------------------------------------------------------------
def test_each_row_stacks_its_own_videos_frames_in_frame_order_repeating_the_ends() -> None:
    # Two videos, rows shuffled, frame numbers with gaps: offsets count frames, not numbers.
    table = pd.DataFrame(
        {
            "video": ["b", "a", "a", "b", "a", "a", "b"],
            "frame": [20, 3, 0, 10, 1, 7, 0],
        }
    )
    got = frame_neighbours(table, "video", "frame", [-2, -1, 0, 1], Path("t.csv"))
    # video a in frame order: rows 2 (0), 4 (1), 1 (3), 5 (7); video b: rows 6 (0), 3, 0
    want = {
        2: [2, 2, 2, 4],
        4: [2, 2, 4, 1],
        1: [2, 4, 1, 5],
        5: [4, 1, 5, 5],
        6: [6, 6, 6, 3],
        3: [6, 6, 3, 0],
        0: [6, 3, 0, 0],
    }
    assert got.tolist() == [want[i] for i in range(len(table))]


def test_a_stack_is_its_frames_side_by_side_as_channels_from_one_cached_copy() -> None:
    frames = np.stack([np.full((4, 4, 3), 10 * i + np.arange(3), np.uint8) for i in range(5)])
    source = ImageSource([Path(f"{i}.png") for i in range(5)], 4, 3, cached=frames)
    stack = FrameStack(source, np.array([[0, 0, 1], [3, 4, 4]]))
    assert stack.channels == 9 and len(stack) == 2
    assert stack[0][0, 0].tolist() == [0, 1, 2, 0, 1, 2, 10, 11, 12]
    assert stack[1][2, 3].tolist() == [30, 31, 32, 40, 41, 42, 40, 41, 42]
    assert stack.frames.cached is frames  # the cache is the frames', one copy per frame


def test_one_augmentation_draw_moves_every_stacked_frame_alike() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 16, 16, 1)).astype(np.uint8)  # three distinct frames
    source = ImageSource([Path(f"{i}.png") for i in range(3)], 16, 1, cached=frames)
    stack = FrameStack(source, np.array([[0, 1, 2]] * 40), rows=np.ones(40, dtype=int))
    augment = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "Affine", "rotate": [-30, 30], "p": 1.0},
        {"name": "RandomBrightnessContrast", "p": 1.0},
    ]
    ds = ImageDataset(stack, np.arange(40), None, create_transform(augment, train=True), seed=3)
    flipped = 0
    for i in range(40):
        x, _ = ds[i]
        assert x.shape == (3, 16, 16)
        # Each output frame is that frame under the sample's one draw: redo it frame by frame.
        plain = create_transform(augment, train=True)
        for k in range(3):
            plain.set_random_seed(ds_seed(ds, i))
            want = plain(image=frames[k])["image"][0]
            assert np.array_equal(x[k].numpy(), want.numpy()), (i, k)
        flipped += int(not np.array_equal(x[0].numpy(), ds_unflipped(augment, frames[0], ds, i)))
    assert 5 < flipped < 35  # the flip was drawn both ways across samples, never per frame


def test_a_mask_moves_with_the_stacked_frames() -> None:
    from medalist.data.dataset import transform_with_mask

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (3, 8, 8, 3)).astype(np.uint8)
    source = ImageSource([Path(f"{i}.png") for i in range(3)], 8, 3, cached=frames)
    stack = FrameStack(source, np.array([[0, 1, 2]]))
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 0:3] = 1
    flip = create_transform([{"name": "HorizontalFlip", "p": 1.0}], train=True)
    x, y = transform_with_mask(stack.sample_transform(flip), stack[0], mask)
    assert np.array_equal(y.numpy(), mask[:, ::-1])
    for k in range(3):
        assert np.array_equal(x[3 * k : 3 * k + 3].numpy(), frames[k][:, ::-1].transpose(2, 0, 1))


def ds_seed(ds: ImageDataset, i: int) -> int:
    from medalist.data.dataset import mix_seed

    return mix_seed(ds.seed, ds.fold, ds.epoch, int(ds.indices[i]), 7)


def ds_unflipped(augment: list, frame: np.ndarray, ds: ImageDataset, i: int) -> np.ndarray:
    """The frame under the sample's draw with the flip taken out (to count the flips)."""
    steps = [dict(s, p=0.0) if s["name"] == "HorizontalFlip" else s for s in augment]
    plain = create_transform(steps, train=True)
    plain.set_random_seed(ds_seed(ds, i))
    return plain(image=frame)["image"][0].numpy()


def test_in_chans_and_the_normalisation_follow_the_stacked_frames(tmp_path: Path) -> None:
    path = make_video_project(tmp_path / "p")
    cfg = load_config(path)
    assert cfg.model.in_chans == 9 and cfg.image_channels == 3
    norm = create_input_norm(cfg.data, cfg.model.in_chans)
    assert np.allclose(norm.mean.flatten().numpy() / 255, [0.485, 0.456, 0.406] * 3)
    grey = load_config(path, ["data.frames_grey=true", "data.frame_offsets=[-2,-1,0,1,2]"])
    assert grey.model.in_chans == 5 and grey.image_channels == 1
    norm = create_input_norm(grey.data, 5)
    assert np.allclose(norm.std.flatten().numpy() / 255, [np.mean([0.229, 0.224, 0.225])] * 5)
    single = load_config(path, ["data.frame_offsets=null"])
    assert single.model.in_chans == 3


# ---- wrong input: exit 2 with one line -----------------------------------------------------------
def _edit_table(project: Path, edit) -> None:
    path = project / "data" / "train.csv"
    df = edit(pd.read_csv(path))
    df.to_csv(path, index=False)


@pytest.mark.parametrize(("overrides", "edit", "needle"), wrong_frame_rows(4))
def test_wrong_frame_input_exits_2_with_one_line(
    tmp_path: Path, overrides: list[str], edit, needle: str
) -> None:
    project = tmp_path / "p"
    cfg = make_video_project(project, videos=2, frames=3)
    if edit is not None:
        _edit_table(project, edit)
    r = medalist("train", str(cfg), *overrides, cwd=project)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0], lines[0]
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


# ---- end to end --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("segment", [False, True], ids=["classify", "segment"])
def test_a_stacked_frame_project_trains_predicts_and_packages_alike(
    tmp_path: Path, segment: bool
) -> None:
    project = tmp_path / "p"
    cfg = make_video_project(project, segment=segment)
    r = medalist("train", str(cfg), "--name", "v", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    run = project / "runs" / "v"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["in_chans"] == 9 and saved["data"]["frame_offsets"] == [-1, 0, 1]
    r = medalist("predict", str(run), cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    sample = pd.read_csv(project / "data" / "sample_submission.csv")
    assert sub["id"].tolist() == sample["id"].tolist()
    r = medalist(
        "package", "runs/v", "--check", "--competition", "video", "--user", "someone",
        cwd=project,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout
    assert json.loads((run / "scores.json").read_text())["oof"] >= 0
    # A test table without the video columns can't be stacked: one line, the old file kept.
    test_csv = project / "data" / "test.csv"
    pd.read_csv(test_csv)[["id", "frame"]].to_csv(test_csv, index=False)
    before = (run / "submission.csv").read_bytes()
    r = medalist("predict", str(run), cwd=project)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "test.csv: no column 'video' (config competition.sequence_column)" in r.stderr
    assert (run / "submission.csv").read_bytes() == before


@pytest.mark.slow
def test_check_memorises_stacked_frames_and_draws_each_rows_own_frame(tmp_path: Path) -> None:
    project = tmp_path / "p"
    cfg = make_video_project(project)
    r = medalist("check", str(cfg), "--steps", "40", cwd=project)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    (grid,) = project.glob("checks/*/plots/input_batch.png")
    assert grid.stat().st_size > 0
