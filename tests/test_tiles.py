"""Large segmentation images: random crops to train on, sliding windows over the whole image to
validate and predict, and the settings that can't work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import medalist
from PIL import Image
from test_segment import make_seg_project

from medalist.data.tiles import sliding_window, tile_starts


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(45, 16, 5), (37, 16, 0), (16, 16, 4), (100, 32, 31), (33, 32, 8)],
)
def test_tiles_cover_every_pixel_overlap_as_asked_and_end_on_the_edge(
    length: int, tile: int, overlap: int
) -> None:
    starts = tile_starts(length, tile, overlap)
    covered = np.zeros(length, int)
    for s in starts:
        assert 0 <= s and s + tile <= length
        covered[s : s + tile] += 1
    assert (covered >= 1).all()
    assert starts[0] == 0 and starts[-1] == length - tile
    steps = np.diff(starts)
    assert (steps <= tile - overlap).all() and (steps > 0).all()


def test_an_overlap_of_a_whole_tile_is_refused() -> None:
    with pytest.raises(ValueError, match="below the tile size"):
        tile_starts(64, 16, 16)


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap"), [(45, 37, 16, 5), (64, 48, 32, 8), (33, 50, [32, 16], [4, 3])]
)
def test_sliding_windows_give_a_pointwise_models_whole_image_output_exactly(
    h: int, w: int, tile: int | list[int], overlap: int | list[int]
) -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 2, kernel_size=1)
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        whole = model(x)
        tiled = sliding_window(model, x, tile, overlap)
    assert tiled.shape == whole.shape and tiled.dtype == whole.dtype
    assert torch.equal(tiled, whole)


def test_each_pixel_is_the_mean_of_the_tiles_that_cover_it() -> None:
    calls: list[int] = []

    def fn(t: torch.Tensor) -> torch.Tensor:  # tile k outputs k everywhere
        calls.append(len(calls))
        return torch.full((t.shape[0], 1, *t.shape[-2:]), float(len(calls) - 1))

    out = sliding_window(fn, torch.zeros(1, 1, 10, 24), [10, 16], [0, 8])
    # columns: tiles start at 0 and 8: 0-7 tile 0 only, 8-15 both, 16-23 tile 1 only
    assert len(calls) == 2
    assert torch.equal(out[0, 0, 0], torch.tensor([0.0] * 8 + [0.5] * 8 + [1.0] * 8))


# ---- through the commands --------------------------------------------------------------------


def make_large_project(root: Path, n_train: int = 16, n_test: int = 4, side: int = 64) -> Path:
    """The segmentation project with every image (and mask) at side x side."""
    cfg = make_seg_project(root, n_train=n_train, n_test=n_test)
    data = root / "data"
    from medalist.data.rle import rle_decode, rle_encode

    train = pd.read_csv(data / "train.csv", keep_default_na=False)
    for i, row in train.iterrows():
        path = data / "train" / f"{row['id']}.png"
        img = Image.open(path)
        w, h = img.size
        mask = rle_decode(row["rle"], (h, w))
        img.resize((side, side), Image.NEAREST).save(path)
        big = np.array(Image.fromarray(mask * 255).resize((side, side), Image.NEAREST)) > 0
        train.loc[i, "rle"] = rle_encode(big.astype(np.uint8))
    train.to_csv(data / "train.csv", index=False)
    for path in (data / "test").glob("*.png"):
        Image.open(path).resize((side, side), Image.NEAREST).save(path)
    return cfg


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["data.image_size=64", "data.crop_size=96"],
            "data.crop_size = 96 is larger than the images",
        ),
        (["data.image_size=64", "predict.tile_size=40"], "predict.tile_size = 40: a U-Net halves"),
        (["data.image_size=64", "data.crop_size=48"], "data.crop_size = 48: a U-Net halves"),
        (
            ["data.image_size=64", "predict.tile_size=32", "predict.tile_overlap=32"],
            "predict.tile_overlap = 32 is not below predict.tile_size = 32",
        ),
        (
            ["data.image_size=null", "data.crop_size=32"],
            "data.image_size: null keeps the images' own size, but",
        ),
        (
            [
                "competition.task=classify",
                "competition.target_column=rle",
                "competition.metric=accuracy",
                "data.crop_size=32",
            ],
            "data.crop_size is for segmentation",
        ),
    ],
)
def test_crops_and_tiles_that_cannot_work_exit_2_before_a_run_starts(
    tmp_path: Path, overrides: list[str], expected: str
) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=8, n_test=2)  # images of two sizes
    before = cfg.read_text()
    r = medalist("train", str(cfg), *overrides, cwd=tmp_path / "proj")
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "proj" / "runs").exists() and cfg.read_text() == before


@pytest.mark.slow
def test_train_on_crops_of_original_size_images_and_predict_in_tiles(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    cfg = make_large_project(project)
    overrides = [
        "data.image_size=null", "data.crop_size=32", "predict.tile_size=32",
        "predict.tile_overlap=16", "train.epochs=2",
    ]  # fmt: skip
    r = medalist("train", str(cfg), *overrides, "--name", "big", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    run = project / "runs" / "big"
    assert "image_size: 64" in (run / "config.yaml").read_text()  # the images' own size
    for k in range(2):  # out-of-fold masks of the whole image, not of a crop
        assert np.load(run / f"fold_{k}" / "oof_masks.npy").shape[1:] == (64, 64)
    caches = list((project / ".cache").glob("images-*.npy"))
    assert [np.load(c, mmap_mode="r").shape[1:3] for c in caches] == [(64, 64)]  # once, whole
    r = medalist("predict", "runs/big", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    assert len(sub) == 4
    scores = json.loads((run / "scores.json").read_text())
    assert 0 <= scores["mean"] <= 1


def _task(**data: object):
    from medalist.config.load import validate_config
    from medalist.tasks.classify import competition_metric
    from medalist.tasks.segment import SegmentTask

    cfg = validate_config(
        {"competition": {"task": "segment", "metric": "dice"}, "data": data, "predict": {}}
    )
    return cfg, SegmentTask(cfg, competition_metric(cfg), "id")


def test_training_sees_random_crops_moved_with_their_masks_and_validation_the_whole_image():
    from medalist.data.dataset import transform_with_mask

    _, task = _task(image_size=64, crop_size=[32, 48], augment=[])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    mask = (image[:, :, 0] > 127).astype(np.uint8)
    train = task.create_transform([], train=True)
    corners = set()
    for seed in range(6):
        train.set_random_seed(seed)
        x, y = transform_with_mask(train, image, mask)
        assert x.shape == (3, 32, 48) and y.shape == (32, 48)
        assert torch.equal(y, (x[0] > 127).to(y.dtype))  # the mask's crop is the image's
        corners.add(tuple(x[:, 0, 0].tolist()))
    assert len(corners) > 1  # a new crop each draw
    x, y = transform_with_mask(task.create_transform([], train=False), image, mask)
    assert x.shape == (3, 64, 64) and y.shape == (64, 64)


def test_validation_and_prediction_run_the_model_over_tiles_of_the_whole_image() -> None:
    calls = []

    class Spy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, kernel_size=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(tuple(x.shape[-2:]))
            return self.conv(x)

    _, task = _task(image_size=64, crop_size=32)
    task.cfg.predict.tile_size, task.cfg.predict.tile_overlap = 32, 8
    model = Spy()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = model(x).sigmoid()[:, 0].to(torch.float16)
        calls.clear()
        got = task.predict_batch(model, x)
        assert calls == [(32, 32)] * 9  # starts 0, 24, 32 on each side
        loss, masks = task.validation_batch(model, lambda out, y: out.mean(), x, None)
    assert torch.equal(got, want) and torch.equal(masks, want)
