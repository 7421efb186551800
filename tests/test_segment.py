"""Segmentation (`competition.task: segment`): masks from run-length text or a mask folder, a U-Net
per fold, out-of-fold masks and a fitted threshold, run-length submissions at each test image's
own size."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, assert_drawn_png, medalist
from PIL import Image

from medalist.data.rle import rle_area, rle_decode, rle_encode
from medalist.tasks.metrics import get_metric
from medalist.tasks.segment_metrics import per_image_scores

# The tiny classification config, made a segmentation one: masks want 32 px (a U-Net halves the
# image five times), two folds of 16 images and a higher learning rate to learn in 3 epochs.
SEG_CONFIG = (
    TINY_CONFIG.replace("competition:\n", "competition:\n  task: segment\n")
    .replace("target_column: label", "target_column: rle")
    .replace("metric: accuracy", "metric: dice")
    .replace("n_splits: 3", "n_splits: 2")
    .replace("image_size: 16", "image_size: 32")
    .replace("epochs: 2", "epochs: 3")
    .replace("lr: 3.0e-3", "lr: 1.0e-2")
)


def blob_image(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with a bright rectangle (or nothing, one time in four), and its mask."""
    img = rng.integers(0, 70, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    if rng.random() > 0.25:
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        y1, x1 = y0 + int(rng.integers(h // 4, h // 2)), x0 + int(rng.integers(w // 4, w // 2))
        mask[y0:y1, x0:x1] = 1
        img[mask == 1] = rng.integers(180, 255, (int(mask.sum()), 3)).astype(np.uint8)
    return img, mask


def make_seg_project(
    root: Path, *, n_train: int = 32, n_test: int = 6, mask_dir: bool = False, seed: int = 0
) -> Path:
    """A segmentation competition in Kaggle's layout (images of several sizes); returns the
    config path. With `mask_dir`, masks are PNG files instead of an RLE column. The test
    images' masks are kept in `root/truth/`."""
    rng = np.random.default_rng(seed)
    data = root / "data"
    for sub in ("train", "test", "masks"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train):
        h, w = (40, 36) if i % 2 else (32, 48)
        img, mask = blob_image(rng, h, w)
        Image.fromarray(img).save(data / "train" / f"img_{i:03d}.png")
        Image.fromarray(mask * 255).save(data / "masks" / f"img_{i:03d}.png")
        rows.append({"id": f"img_{i:03d}", "rle": rle_encode(mask)})
    pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
    test_ids = []
    (root / "truth").mkdir(exist_ok=True)  # the test set's hidden masks, outside data/
    for j in range(n_test):
        h, w = (40, 36) if j % 2 else (32, 48)
        img, mask = blob_image(rng, h, w)
        Image.fromarray(img).save(data / "test" / f"t_{j:03d}.png")
        Image.fromarray(mask * 255).save(root / "truth" / f"t_{j:03d}.png")
        test_ids.append(f"t_{j:03d}")
    pd.DataFrame({"id": test_ids}).to_csv(data / "test.csv", index=False)
    # The sample's order differs from test.csv's: the submission must follow the sample.
    pd.DataFrame({"id": test_ids[::-1], "rle": ""}).to_csv(
        data / "sample_submission.csv", index=False
    )
    (root / "configs").mkdir(parents=True, exist_ok=True)
    text = SEG_CONFIG
    if mask_dir:
        text = text.replace("  target_column: rle\n", "  mask_dir: data/masks\n")
    cfg = root / "configs" / "baseline.yaml"
    cfg.write_text(text)
    return cfg


def decode_by_hand(text: object, h: int, w: int, order: str = "column") -> np.ndarray:
    """Kaggle's run-length text drawn pixel by pixel (1-based starts, counting down each column
    or along each row), written apart from medalist's decoder so that a mistake the encoder and
    decoder share can't hide; a run past the image raises IndexError."""
    mask = np.zeros((h, w), dtype=np.uint8)
    numbers = [int(v) for v in text.split()] if isinstance(text, str) else []
    for start, length in zip(numbers[0::2], numbers[1::2], strict=True):
        for k in range(start - 1, start - 1 + length):
            mask[(k % h, k // h) if order == "column" else (k // w, k % w)] = 1
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two masks; 1 when both are empty."""
    a, b = a > 0, b > 0
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2 * int((a & b).sum()) / total


def image_hw(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.height, img.width


def l_shape(h: int, w: int) -> np.ndarray:
    """An L in the upper left: no flip, transpose or stretch of it lands on itself."""
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[h // 8 : h * 3 // 4, w // 8 : w // 8 + w // 5] = 1
    mask[h * 3 // 4 - h // 6 : h * 3 // 4, w // 8 : w * 3 // 4] = 1
    return mask


# ---- run-length encoding and mask metrics ----------------------------------------------------
def test_rle_counts_pixels_down_columns_by_default_and_along_rows_when_asked() -> None:
    mask = np.array([[0, 1, 1], [0, 1, 0]], dtype=np.uint8)
    assert rle_encode(mask) == "3 3"  # columns: 0 0 | 1 1 | 1 0
    assert rle_encode(mask, "row") == "2 2 5 1"  # rows: 0 1 1 | 0 1 0
    assert np.array_equal(rle_decode("3 3", (2, 3)), mask)
    assert np.array_equal(rle_decode("2 2 5 1", (2, 3), "row"), mask)
    assert rle_encode(np.zeros((4, 4))) == "" and not rle_decode(float("nan"), (4, 4)).any()
    assert rle_area("3 3 10 2") == 5


@pytest.mark.parametrize("order", ["column", "row"])
def test_rle_round_trips_random_masks(order: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = (rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) > 0.6).astype(
            np.uint8
        )
        text = rle_encode(mask, order)
        assert np.array_equal(rle_decode(text, mask.shape, order), mask)
        assert rle_area(text) == int(mask.sum())


@pytest.mark.parametrize(
    ("text", "why"),
    [("1 2 3", "odd count"), ("5 10", "past the"), ("0 3", "count from 1"), ("a b", "whole")],
)
def test_malformed_rle_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        rle_decode(text, (3, 4))


def test_dice_and_iou_score_each_image_and_count_empty_against_empty_as_perfect() -> None:
    y = np.zeros((3, 4, 4), dtype=np.uint8)
    y[0, :2] = 1  # 8 pixels
    y[1, :1] = 1  # 4 pixels
    p = np.zeros((3, 4, 4))
    p[0, :1] = 0.9  # 4 of the 8 pixels: dice 2*4/12, iou 4/8
    p[1, :1] = 0.4  # below 0.5: nothing predicted, dice 0
    # image 2: both empty, 1
    dice = per_image_scores(y, p, 0.5, "dice")
    assert np.allclose(dice, [2 * 4 / 12, 0.0, 1.0])
    assert np.allclose(per_image_scores(y, p, 0.3, "dice"), [2 * 4 / 12, 1.0, 1.0])
    assert np.allclose(per_image_scores(y, p, 0.5, "iou"), [0.5, 0.0, 1.0])
    assert get_metric("dice")(y, p) == pytest.approx(dice.mean())
    assert get_metric("iou").higher_is_better


def test_mask_strata_merge_a_stratum_smaller_than_the_fold_count(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.data.masks import mask_strata

    cfg = load_config(make_seg_project(tmp_path / "proj", n_train=2, n_test=1), ["cv.n_splits=5"])
    areas = [0] * 3 + list(range(1, 38))  # 3 empty masks, 37 of growing area
    train = pd.DataFrame({"id": range(40), "rle": [f"1 {a}" if a else "" for a in areas]})
    strata = mask_strata(cfg, train, [])
    counts = strata.value_counts()
    assert counts.min() >= 5 and strata.nunique() >= 3
    # The empty masks share one stratum with the smallest areas, not with the largest.
    assert strata[0] == strata[3] != strata[39]


def test_masks_all_of_one_area_make_one_stratum_beside_the_empty_ones(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.data.masks import mask_strata

    cfg = load_config(make_seg_project(tmp_path / "proj", n_train=2, n_test=1), ["cv.n_splits=5"])
    areas = [0] * 5 + [12] * 35  # 5 empty masks, 35 of one size (fixed-size boxes, full frames)
    train = pd.DataFrame({"id": range(40), "rle": [f"1 {a}" if a else "" for a in areas]})
    strata = mask_strata(cfg, train, [])
    assert strata.notna().all()
    assert strata.tolist() == [0] * 5 + [1] * 35


def test_augmentation_moves_the_mask_with_the_image() -> None:
    from medalist.data.dataset import ImageDataset, create_transform
    from medalist.data.images import ImageSource
    from medalist.tasks.segment import SegmentTask

    rng = np.random.default_rng(0)
    img, mask = blob_image(rng, 32, 32)
    while not mask.any():
        img, mask = blob_image(rng, 32, 32)
    source = ImageSource([Path("unused.png")], 32, 3, cached=img[None])
    steps = [{"name": "HorizontalFlip", "p": 1.0}, {"name": "Affine", "rotate": 90, "p": 1.0}]
    transform = create_transform(steps, train=True)
    sample = SegmentTask.transform_sample  # what the fold loop hands the dataset for masks
    x, m = ImageDataset(source, np.array([0]), mask[None], transform, sample=sample)[0]
    assert m.shape == (32, 32) and int(m.sum()) > 0
    # The bright pixels of the augmented image are the mask's pixels, wherever they went.
    bright = x.numpy().min(axis=0) >= 180
    assert np.array_equal(bright, m.numpy() > 0)
    assert not np.array_equal(m.numpy(), mask)


def test_tta_flips_each_predicted_mask_back_before_averaging(tmp_path: Path) -> None:
    import torch

    from medalist.config import load_config
    from medalist.data.dataset import ImageDataset, InputNorm, create_transform
    from medalist.data.images import ImageSource
    from medalist.engine.fold_loop import predict_array
    from medalist.tasks.segment import SegmentTask

    class FirstChannel(torch.nn.Module):  # logits = the image itself: flips with its input
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 4

    cfg = load_config(make_seg_project(tmp_path / "proj", n_train=2, n_test=1))
    task = SegmentTask.from_state(cfg, {})
    rng = np.random.default_rng(0)
    images = np.stack([blob_image(rng, 32, 32)[0] for _ in range(3)])
    ds = ImageDataset(ImageSource([Path("x.png")] * 3, 32, 3, cached=images), np.arange(3), None,
                      create_transform([], train=False))  # fmt: skip
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    norm = InputNorm([0.5], [0.25], 3)
    plain = predict_array(FirstChannel(), task, loader, norm=norm)
    both = predict_array(FirstChannel(), task, loader, norm=norm, tta=["hflip", "vflip"])
    assert plain.shape == (3, 32, 32) and plain.dtype == np.float16
    assert np.allclose(both.astype(np.float32), plain.astype(np.float32), atol=1e-3)
    assert not np.allclose(plain[:, :, ::-1].astype(np.float32), plain.astype(np.float32))

    ramp = torch.linspace(-3, 3, 32)

    class WithARamp(torch.nn.Module):  # plus a left-to-right ramp that stays as the image flips
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 4 + ramp

    # The mirrored view, flipped back, sees the ramp mirrored: TTA is the mean of both views.
    x = torch.cat([norm(batch) for batch, _ in loader])[:, 0]
    views = [torch.sigmoid(x * 4 + ramp), torch.sigmoid(x * 4 + ramp.flip(-1))]
    got = predict_array(WithARamp(), task, loader, norm=norm, tta=["hflip"]).astype(np.float32)
    assert np.allclose(got, ((views[0] + views[1]) / 2).numpy(), atol=1e-3)
    assert not np.allclose(got, views[0].numpy(), atol=1e-2)


@pytest.mark.parametrize("order", ["column", "row"])
def test_submitted_masks_are_the_predictions_at_each_test_images_own_height_and_width(
    tmp_path: Path, order: str
) -> None:
    import cv2

    from medalist.config import load_config
    from medalist.tasks.segment import SegmentTask

    path = make_seg_project(tmp_path / "proj", n_train=2, n_test=4)  # 32x48 and 40x36 images
    cfg = load_config(path, [f"competition.rle_order={order}"])
    data = tmp_path / "proj" / "data"
    ids = pd.read_csv(data / "test.csv")["id"]
    truth = {i: l_shape(*image_hw(data / "test" / f"{i}.png")) for i in ids}
    # What a model that got each L right predicts: the L at data.image_size (32x32).
    preds = np.stack([cv2.resize(truth[i].astype(np.float32), (32, 32)) for i in ids])
    sample = pd.read_csv(data / "sample_submission.csv", keep_default_na=False)
    sub = SegmentTask.from_state(cfg, {}).format_submission(ids, preds.astype(np.float16), sample)
    assert list(sub["id"]) == list(sample["id"])
    for i, text in zip(sub["id"], sub["rle"], strict=True):
        got = decode_by_hand(text, *truth[i].shape, order)
        assert dice(got, truth[i]) > 0.9, (i, dice(got, truth[i]))


# ---- end to end ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seg_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A trained 2-fold segmentation run (trained once for this module) and its CLI output."""
    project = tmp_path_factory.mktemp("seg") / "proj"
    cfg = make_seg_project(project, n_test=12)
    r = medalist("train", str(cfg), "--name", "seg", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    return project / "runs" / "seg", r


@pytest.fixture
def seg_copy(seg_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> Path:
    """A private copy of the trained segmentation project; returns its run directory."""
    shutil.copytree(seg_run[0].parent.parent, tmp_path / "proj")
    return tmp_path / "proj" / "runs" / "seg"


def oof_dice_by_threshold(run: Path, data: Path) -> dict[float, float]:
    """Mean Dice of a run's stored out-of-fold masks (fold_*/oof_masks.npy) against the
    training masks (decoded here, resized to 32 px nearest), at each threshold of 0.2-0.8."""
    import cv2

    texts = pd.read_csv(data / "train.csv", keep_default_na=False).set_index("id")["rle"]
    probs, masks = [], []
    for fold in sorted(run.glob("fold_*/oof_masks.npy")):
        probs.append(np.load(fold).astype(np.float32))
        for i in pd.read_csv(fold.parent / "oof.csv")["id"]:
            y = decode_by_hand(texts[i], *image_hw(data / "train" / f"{i}.png"))
            masks.append(cv2.resize(y, (32, 32), interpolation=cv2.INTER_NEAREST))
    p = np.concatenate(probs)
    assert len(p) == len(masks) == len(texts)
    grid = [round(0.2 + 0.05 * k, 2) for k in range(13)]
    return {
        t: float(np.mean([dice(a >= t, y) for a, y in zip(p, masks, strict=True)])) for t in grid
    }


@pytest.mark.slow
def test_segment_run_trains_unets_and_writes_oof_masks_threshold_and_an_rle_submission(
    seg_run: tuple[Path, subprocess.CompletedProcess], seg_copy: Path, tmp_path: Path
) -> None:
    r, run = seg_run[1], seg_copy
    assert "analysis failed" not in r.stderr
    assert "verdict:" in r.stdout
    scores = json.loads((run / "scores.json").read_text())
    assert scores["metric"] == "dice" and len(scores["folds"]) == 2
    # The threshold and its score, recomputed from the stored masks against the true ones.
    oof_dice = oof_dice_by_threshold(run, tmp_path / "proj" / "data")
    best = max(oof_dice.values())
    fitted = min((t for t, d in oof_dice.items() if d >= best - 1e-12), key=lambda t: abs(t - 0.5))
    assert scores["threshold"] == pytest.approx(fitted)
    assert scores["oof_at_threshold"] == pytest.approx(best, abs=1e-9)
    assert scores["oof"] == pytest.approx(oof_dice[0.5], abs=1e-9)
    oof = pd.read_csv(run / "oof.csv")
    assert list(oof.columns) == ["id", "fold", "target_area", "pred_area", "dice"]
    assert len(oof) == 32 and oof["dice"].between(0, 1).all()
    # The pooled score at 0.5 is the mean of the per-image Dice (every image counted once).
    assert scores["oof"] == pytest.approx(oof["dice"].mean(), abs=1e-9)
    # Every fold's masks are stored in the order of its table, at data.image_size.
    for k in range(2):
        masks = np.load(run / f"fold_{k}" / "oof_masks.npy")
        part = pd.read_csv(run / f"fold_{k}" / "oof.csv")
        assert masks.shape == (len(part), 32, 32) and masks.dtype == np.float16
        assert 0.0 <= float(masks.min()) and float(masks.max()) <= 1.0
    # The model learnt the bright rectangles: better than predicting nothing everywhere
    # (which scores only the empty images, about a quarter).
    empty = float((oof["target_area"] == 0).mean())
    assert scores["oof_at_threshold"] > empty + 0.15
    # The error analysis lists the lowest-scoring images and draws them.
    worst = pd.read_csv(run / "analysis" / "worst_predictions.csv")
    assert worst["dice"].is_monotonic_increasing and worst["dice"].iloc[0] == oof["dice"].min()
    assert_drawn_png(run / "plots" / "worst_predictions.png")

    r = medalist("predict", str(run), "--tta", "hflip", cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    sample = pd.read_csv(tmp_path / "proj" / "data" / "sample_submission.csv")
    assert list(sub.columns) == ["id", "rle"] and list(sub["id"]) == list(sample["id"])
    # Each mask, decoded at its image's own height and width, covers that image's rectangle:
    # a mask transposed, or resized to (w, h), would land elsewhere.
    scores = {}
    for i, text in zip(sub["id"], sub["rle"], strict=True):
        truth = np.asarray(Image.open(tmp_path / "proj" / "truth" / f"{i}.png")) > 0
        if truth.any():
            scores[i] = dice(decode_by_hand(text, *truth.shape), truth)
    assert len(scores) >= 6 and np.mean(list(scores.values())) > 0.5, scores  # 0.69 here


@pytest.mark.slow
def test_segment_reads_masks_from_a_folder_and_stratifies_folds_by_empty_masks(
    tmp_path: Path,
) -> None:
    cfg = make_seg_project(tmp_path / "proj", mask_dir=True)
    r = medalist("train", str(cfg), "train.epochs=1", "--name", "m", cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-3000:]
    oof = pd.read_csv(tmp_path / "proj" / "runs" / "m" / "oof.csv")
    # The folder's masks are the same as the run-length ones: the areas say so.
    train = pd.read_csv(tmp_path / "proj" / "data" / "train.csv").set_index("id")
    for i, area in zip(oof["id"], oof["target_area"], strict=True):
        h, w = Image.open(tmp_path / "proj" / "data" / "train" / f"{i}.png").size[::-1]
        assert area == pytest.approx(rle_area(train.loc[i, "rle"]) / (h * w), abs=0.08)
    empties = oof.assign(empty=oof["target_area"] == 0).groupby("fold")["empty"].sum()
    assert abs(int(empties.iloc[0]) - int(empties.iloc[1])) <= 1


@pytest.mark.slow
def test_same_segment_config_and_seed_give_the_same_oof_masks(tmp_path: Path) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=16)
    for name in ("a", "b"):
        r = medalist("train", str(cfg), "train.epochs=1", "--name", name, cwd=tmp_path / "proj")
        assert r.returncode == 0, r.stderr[-3000:]
    runs = tmp_path / "proj" / "runs"
    for k in range(2):
        a = np.load(runs / "a" / f"fold_{k}" / "oof_masks.npy")
        b = np.load(runs / "b" / f"fold_{k}" / "oof_masks.npy")
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_a_segment_package_runs_offline_and_matches_medalist_predict(
    seg_copy: Path, tmp_path: Path
) -> None:
    r = medalist(
        "package", "runs/seg", "--check", "--competition", "seg-demo", "--user", "someone",
        cwd=tmp_path / "proj",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout and "columns ['id', 'rle']" in r.stdout
    # The quick path writes the sample (empty masks), which is a valid submission here.
    assert "quick path: valid" in r.stdout


@pytest.mark.slow
def test_smoothing_a_segment_run_without_video_frames_exits_2(
    seg_copy: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    before = sorted(p.name for p in (project / "runs").iterdir())
    r = medalist("smooth", "runs/seg", cwd=project)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "competition.sequence_column" in r.stderr
    assert sorted(p.name for p in (project / "runs").iterdir()) == before


def test_the_package_check_compares_masks_by_pixels_and_tolerates_one_percent() -> None:
    from medalist.kaggle.check import CheckFailed, compare_submissions

    want = pd.DataFrame({"id": ["a", "b"], "rle": ["1 200", ""]})
    near = pd.DataFrame({"id": ["a", "b"], "rle": ["1 199", ""]})  # one pixel of 200
    far = pd.DataFrame({"id": ["a", "b"], "rle": ["1 150", ""]})  # 50 of 200
    assert compare_submissions(near, want, 1e-5) == 0.0
    with pytest.raises(CheckFailed, match="25.00% of its pixels"):
        compare_submissions(far, want, 1e-5)
    with pytest.raises(CheckFailed, match="labels differ"):
        compare_submissions(
            pd.DataFrame({"id": ["a"], "label": ["cat"]}),
            pd.DataFrame({"id": ["a"], "label": ["dog"]}),
            1e-5,
        )


@pytest.mark.parametrize("masks", ["rle", "folder"])
def test_new_infers_a_segmentation_config_that_folds_stratify_by_mask_area(
    tmp_path: Path, masks: str
) -> None:
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_seg_project(tmp_path / "comp", n_train=48, n_test=2)
    data = tmp_path / "comp" / "data"
    if masks == "folder":
        pd.read_csv(data / "train.csv")[["id"]].to_csv(data / "train.csv", index=False)
    else:
        shutil.rmtree(data / "masks")
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    assert cfg.competition.task == "segment" and cfg.competition.metric == "dice"
    assert cfg.data.image_size % 32 == 0
    if masks == "folder":
        assert cfg.competition.mask_dir == "data/masks" and cfg.target_columns == []
        assert report.unresolved == []
    else:
        assert cfg.competition.target_column == "rle" and cfg.competition.mask_dir is None
        # Whether the text counts down columns or along rows only the competition says.
        assert [s.split(":")[0] for s in report.unresolved] == ["competition.rle_order"]
    r = medalist("folds", str(report.config_path), cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-2000:]
    folds = pd.read_csv(next((tmp_path / "proj" / "folds").glob("*.csv")))
    train = pd.read_csv(tmp_path / "comp" / "data" / "train.csv", keep_default_na=False)
    if masks == "rle":  # each fold holds its share of the empty masks
        empty = folds.merge(train, on="id").assign(empty=lambda d: d["rle"] == "")
        per_fold = empty.groupby("fold")["empty"].sum()
        assert per_fold.max() - per_fold.min() <= 1


@pytest.mark.slow
def test_segment_seeds_average_the_masks_and_record_the_seed_spread(tmp_path: Path) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=16)
    r = medalist(
        "train", str(cfg), "train.epochs=1", "--seeds", "2", "--name", "s", cwd=tmp_path / "proj"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "proj" / "runs" / "s"
    scores = json.loads((run / "scores.json").read_text())
    assert scores["seeds"] == [0, 1] and len(scores["seed_scores"]) == 2
    oof = pd.read_csv(run / "oof.csv").set_index("id")
    assert scores["oof"] == pytest.approx(oof["dice"].mean(), abs=1e-9)
    # The table's Dice is that of the two seeds' averaged masks, not of either seed alone.
    part = pd.read_csv(run / "fold_0" / "oof.csv")
    a = np.load(run / "fold_0" / "oof_masks.npy").astype(np.float32)
    b = np.load(run / "fold_0_seed1" / "oof_masks.npy").astype(np.float32)
    y = np.zeros_like(a)  # the masks at 32x32, from the run-length text
    train = pd.read_csv(tmp_path / "proj" / "data" / "train.csv", keep_default_na=False)
    texts = dict(zip(train["id"], train["rle"], strict=True))
    import cv2

    for j, i in enumerate(part["id"]):
        h, w = Image.open(tmp_path / "proj" / "data" / "train" / f"{i}.png").size[::-1]
        y[j] = cv2.resize(rle_decode(texts[i], (h, w)), (32, 32), interpolation=cv2.INTER_NEAREST)
    mean = ((a + b) / 2).astype(np.float16)
    want = per_image_scores(y, mean, 0.5, "dice")
    assert np.allclose(oof.loc[part["id"], "dice"].to_numpy(), want)


def test_check_memorises_one_batch_of_masks_and_draws_them(tmp_path: Path) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=12, n_test=2)
    r = medalist("check", str(cfg), "--images", "4", cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "PASS" in r.stdout
    (grid,) = (tmp_path / "proj" / "checks").glob("*/plots/input_batch.png")
    assert_drawn_png(grid)


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.image_size=48", "multiple of 32; use 32 or 64"),
        ("competition.metric=accuracy", "use dice or iou"),
        ("model.backbone=not_a_net", "not a timm model"),
        (
            "competition.task=classify competition.mask_dir=data/masks",
            "competition.mask_dir is set but competition.task is 'classify'",
        ),
    ],
)
def test_segment_settings_that_cannot_work_exit_2_before_a_run_starts(
    tmp_path: Path, override: str, expected: str
) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=8, n_test=2)
    r = medalist("train", str(cfg), *override.split(), cwd=tmp_path / "proj")
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "proj" / "runs").exists()


def test_a_malformed_rle_row_names_its_line_and_exits_2(tmp_path: Path) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=8, n_test=2)
    table = tmp_path / "proj" / "data" / "train.csv"
    df = pd.read_csv(table, keep_default_na=False)
    df.loc[3, "rle"] = "1 5 9"
    df.to_csv(table, index=False)
    r = medalist("train", str(cfg), cwd=tmp_path / "proj")
    assert r.returncode == 2, r.stderr
    assert "line 5" in r.stderr and "odd count" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "proj" / "runs").exists()


def test_a_missing_mask_file_is_named_and_exits_2(tmp_path: Path) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=8, n_test=2, mask_dir=True)
    (tmp_path / "proj" / "data" / "masks" / "img_005.png").unlink()
    r = medalist("train", str(cfg), cwd=tmp_path / "proj")
    assert r.returncode == 2, r.stderr
    assert "img_005.png not found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "proj" / "runs").exists()


# ---- several classes ----------------------------------------------------------------------------
def make_two_class_project(root: Path, *, long: bool, n_train: int = 32, n_test: int = 4) -> Path:
    """Red rectangles (class "red") and green ones ("green"), either, both or none per image:
    one row per image and class present (Kaggle's long format) or a column per class (wide)."""
    rng = np.random.default_rng(3)
    data = root / "data"
    for sub in ("train", "test"):
        (data / sub).mkdir(parents=True, exist_ok=True)

    def picture(h: int, w: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
        masks = {}
        present = [True, True] if rng.random() > 0.5 else [rng.random() > 0.5] * 2
        present[1] = not present[0] if not all(present) else True  # at least one per image
        for (channel, name), shown in zip(((0, "red"), (1, "green")), present, strict=True):
            mask = np.zeros((h, w), dtype=np.uint8)
            if shown:
                y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
                mask[y0 : y0 + h // 3, x0 : x0 + w // 3] = 1
                img[mask == 1, channel] = 240
            masks[name] = mask
        return img, masks

    rows, wide = [], []
    for i in range(n_train):
        img, masks = picture(32, 40)
        Image.fromarray(img).save(data / "train" / f"img_{i:03d}.png")
        texts = {k: rle_encode(m) for k, m in masks.items()}
        rows += [{"id": f"img_{i:03d}", "class": k, "rle": t} for k, t in texts.items() if t]
        wide.append({"id": f"img_{i:03d}", **texts})
    test_ids = [f"t_{j:03d}" for j in range(n_test)]
    (root / "truth").mkdir()  # the test set's hidden masks, outside data/
    for t in test_ids:
        img, masks = picture(40, 32)  # taller than wide, where the training images are wide
        Image.fromarray(img).save(data / "test" / f"{t}.png")
        for name, mask in masks.items():
            Image.fromarray(mask * 255).save(root / "truth" / f"{t}_{name}.png")
    pd.DataFrame({"id": test_ids}).to_csv(data / "test.csv", index=False)
    if long:
        pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
        sample = [
            {"id": t, "class": c, "rle": ""} for t in test_ids[::-1] for c in ("green", "red")
        ]
        pd.DataFrame(sample).to_csv(data / "sample_submission.csv", index=False)
        target = "  target_column: rle\n  class_column: class\n"
    else:
        pd.DataFrame(wide).to_csv(data / "train.csv", index=False)
        pd.DataFrame({"id": test_ids, "green": "", "red": ""}).to_csv(
            data / "sample_submission.csv", index=False
        )
        target = "  target_column: [red, green]\n"
    (root / "configs").mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "baseline.yaml"
    cfg.write_text(SEG_CONFIG.replace("  target_column: rle\n", target))
    return cfg


def test_mean_dice_over_several_classes_is_the_mean_over_image_class_pairs() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((5, 3, 8, 8)) > 0.7).astype(np.uint8)
    p = rng.random((5, 3, 8, 8))
    pairs = per_image_scores(y.reshape(15, 8, 8), p.reshape(15, 8, 8), 0.5, "dice")
    assert get_metric("dice")(y, p) == pytest.approx(pairs.mean())
    per_class = [per_image_scores(y[:, j], p[:, j], 0.5, "dice").mean() for j in range(3)]
    assert get_metric("dice")(y, p) == pytest.approx(np.mean(per_class))


@pytest.mark.slow
def test_long_format_classes_train_one_sigmoid_each_and_submit_a_row_per_image_and_class(
    tmp_path: Path,
) -> None:
    cfg = make_two_class_project(tmp_path / "proj", long=True, n_test=8)
    project = tmp_path / "proj"
    r = medalist("train", str(cfg), "train.epochs=10", "--name", "two", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "analysis failed" not in r.stderr
    run = project / "runs" / "two"
    scores = json.loads((run / "scores.json").read_text())
    assert set(scores["thresholds"]) == {"green", "red"}
    oof = pd.read_csv(run / "oof.csv")
    assert list(oof.columns) == [
        "id", "fold",
        "target_area_green", "pred_area_green", "dice_green",
        "target_area_red", "pred_area_red", "dice_red",
        "dice",
    ]  # fmt: skip
    assert np.allclose(oof["dice"], (oof["dice_green"] + oof["dice_red"]) / 2)
    assert scores["oof"] == pytest.approx(oof["dice"].mean(), abs=1e-9)
    # Images without a row for a class have an empty mask of that class.
    train = pd.read_csv(project / "data" / "train.csv")
    red = set(train.loc[train["class"] == "red", "id"])
    assert ((oof["target_area_red"] > 0) == oof["id"].isin(red)).all()
    assert np.load(run / "fold_0" / "oof_masks.npy").shape[1:] == (2, 32, 32)
    # Each class is learnt on its own: better than predicting nothing for it.
    for c in ("red", "green"):
        empty = float((oof[f"target_area_{c}"] == 0).mean())
        assert oof[f"dice_{c}"].mean() > empty + 0.1, c

    r = medalist("predict", str(run), cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    sample = pd.read_csv(project / "data" / "sample_submission.csv", keep_default_na=False)
    assert list(sub.columns) == ["id", "class", "rle"]
    assert sub[["id", "class"]].equals(sample[["id", "class"]])
    # Each mask decoded at its test image's own height and width covers that class's square.
    scores = {}
    for i, c, text in zip(sub["id"], sub["class"], sub["rle"], strict=True):
        truth = np.asarray(Image.open(project / "truth" / f"{i}_{c}.png")) > 0
        if truth.any():
            scores[(i, c)] = dice(decode_by_hand(text, 40, 32), truth)
    assert len(scores) >= 8 and np.mean(list(scores.values())) > 0.7, scores  # 0.86 here
    # The offline notebook writes the same long-format submission.
    r = medalist("package", str(run), "--check", "--competition", "two", "--user", "u", cwd=project)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "columns ['id', 'class', 'rle']" in r.stdout


@pytest.mark.slow
def test_wide_format_classes_read_a_column_each_and_submit_a_column_each(tmp_path: Path) -> None:
    cfg = make_two_class_project(tmp_path / "proj", long=False, n_train=16)
    project = tmp_path / "proj"
    r = medalist("train", str(cfg), "train.epochs=1", "--name", "w", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    oof = pd.read_csv(project / "runs" / "w" / "oof.csv")
    assert {"dice_red", "dice_green", "dice"} <= set(oof.columns)
    r = medalist("predict", "runs/w", "--tta", "vflip", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(project / "runs" / "w" / "submission.csv", keep_default_na=False)
    assert list(sub.columns) == ["id", "green", "red"]


def test_long_format_mistakes_exit_2_with_the_line(tmp_path: Path) -> None:
    cfg = make_two_class_project(tmp_path / "proj", long=True, n_train=8, n_test=2)
    project = tmp_path / "proj"
    table = project / "data" / "train.csv"
    original = pd.read_csv(table, keep_default_na=False)
    pd.concat([original, original.iloc[[1]]]).to_csv(table, index=False)
    r = medalist("train", str(cfg), cwd=project)
    assert r.returncode == 2 and "on several lines" in r.stderr, r.stderr
    assert "line 3" in r.stderr and "Traceback" not in r.stderr
    original.to_csv(table, index=False)
    r = medalist("train", str(cfg), "competition.classes=[red]", cwd=project)
    assert r.returncode == 2 and "'green' is not in competition.classes" in r.stderr, r.stderr
    assert not (project / "runs").exists()


def test_new_reads_a_long_format_table_as_classes_of_masks(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_two_class_project(tmp_path / "comp", long=True, n_train=40, n_test=2)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    cfg = load_config(report.config_path)
    comp = cfg.competition
    assert (comp.task, comp.target_column, comp.class_column) == ("segment", "rle", "class")
    assert comp.metric == "dice" and cfg.cv.scheme == "stratified"
    r = medalist("folds", str(report.config_path), cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-2000:]
    folds = pd.read_csv(next((tmp_path / "proj" / "folds").glob("*.csv")))
    assert len(folds) == 40 and folds["id"].is_unique  # one row per image, not per class


@pytest.mark.parametrize("mask_name", ["{}.png", "{}_mask.gif"])
def test_new_writes_the_table_of_a_mask_folder_beside_its_images_when_there_is_none(
    tmp_path: Path, mask_name: str
) -> None:
    # An image folder and a folder of its masks, no training table (Carvana names its masks
    # <id>_mask.gif). Before, new stopped: "has no train.csv".
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_seg_project(tmp_path / "comp", n_train=12, n_test=2, mask_dir=True)
    data = tmp_path / "comp" / "data"
    (data / "train.csv").unlink()
    (data / "test.csv").unlink()
    for mask in sorted((data / "masks").iterdir()):
        Image.open(mask).save(data / "masks" / mask_name.format(mask.stem))
        if mask.name != mask_name.format(mask.stem):
            mask.unlink()
    Image.new("RGB", (32, 32)).save(data / "train" / "no_mask.png")  # has no mask: left out

    report = create_project(tmp_path / "proj", data)
    assert report.unresolved == []
    table = pd.read_csv(tmp_path / "proj" / "configs" / "train_folders.csv")
    assert table["id"].tolist() == [f"img_{i:03d}.png" for i in range(12)]
    cfg = load_config(report.config_path)
    assert (cfg.competition.task, cfg.competition.mask_dir) == ("segment", "data/masks")
    done = medalist(
        "train", str(report.config_path), "model.backbone=resnet10t", "data.image_size=32",
        "train.epochs=1", "cv.n_splits=2", "track.backends=[none]", "--name", "m",
        cwd=tmp_path / "proj",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    oof = pd.read_csv(tmp_path / "proj" / "runs" / "m" / "oof.csv")
    assert sorted(oof["id"]) == table["id"].tolist()
