"""Segmentation options: decoder architectures, mask losses, and the post-processing fitted on the
out-of-fold masks (minimum component area, minimum total area), kept only where it beats noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import medalist
from test_segment import make_seg_project

from medalist.config import load_config
from medalist.tasks import segment_postprocess as pp

N, SIZE = 40, 32


def square(mask: np.ndarray, y: int, x: int, side: int) -> None:
    mask[y : y + side, x : x + side] = 1


def test_keep_components_empties_only_the_components_smaller_than_the_minimum() -> None:
    m = np.zeros((16, 16), bool)
    m[0:2, 0:2] = True  # 4 px
    m[8:14, 8:14] = True  # 36 px
    kept = pp.keep_components(m, 5)
    assert kept[8:14, 8:14].all() and not kept[0:2, 0:2].any() and kept.sum() == 36
    assert pp.keep_components(m, 0) is m


def _noisy_predictions(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every image: a true 10x10 square, predicted exactly, plus 2x2 false blobs."""
    truth = np.zeros((N, SIZE, SIZE), np.uint8)
    pred = np.zeros((N, SIZE, SIZE), bool)
    for i in range(N):
        y, x = rng.integers(0, 12, 2)
        square(truth[i], y, x, 10)
        pred[i] = truth[i] > 0
        for _ in range(3):
            by, bx = rng.integers(24, 30, 2)
            pred[i, by : by + 2, bx : bx + 2] = True
    return truth, pred


def test_min_area_fitted_on_oof_masks_drops_the_noise_blobs_and_keeps_the_objects() -> None:
    truth, pred = _noisy_predictions(np.random.default_rng(0))
    folds = np.arange(N) % 5
    fitted = pp.fit_class(truth, pred, folds, "dice", ["min_area"])
    # Blobs are at most 4 px apart from touching ones (<= 16 px); the squares are 100 px.
    assert 4 < fitted["min_area"] <= 100
    assert fitted["min_area_verdict"] == "better"
    assert fitted["after"] == 1.0 and fitted["before"] < 0.95


def test_min_total_area_predicts_empty_images_empty() -> None:
    rng = np.random.default_rng(1)
    truth = np.zeros((N, SIZE, SIZE), np.uint8)
    pred = np.zeros((N, SIZE, SIZE), bool)
    for i in range(N):
        if i % 2:  # an object, found
            square(truth[i], 4, 4, 12)
            pred[i] = truth[i] > 0
        else:  # no object, but a 3x3 false alarm (one component: min_area alone can't tell)
            y, x = rng.integers(0, 20, 2)
            pred[i, y : y + 3, x : x + 3] = True
    fitted = pp.fit_class(truth, pred, np.arange(N) % 5, "dice", ["min_total_area"])
    assert fitted["min_area"] == 0
    assert 9 < fitted["min_total_area"] <= 144
    assert fitted["min_total_area_verdict"] == "better" and fitted["after"] == 1.0


def test_post_processing_stays_off_when_it_cannot_beat_no_post_processing() -> None:
    truth, _ = _noisy_predictions(np.random.default_rng(2))
    fitted = pp.fit_class(truth, truth > 0, np.arange(N) % 5, "iou", ["min_area", "min_total_area"])
    assert (fitted["min_area"], fitted["min_total_area"]) == (0, 0)
    assert fitted["before"] == fitted["after"] == 1.0


def test_applying_the_post_processing_zeroes_dropped_components_and_too_small_masks() -> None:
    prob = np.zeros((16, 16), np.float16)
    prob[0:2, 0:2] = 0.9
    prob[8:14, 8:14] = 0.8
    assert pp.apply(prob, 0.5, 0, 0) is prob
    out = pp.apply(prob, 0.5, 5, 0)
    assert out[0:2, 0:2].max() == 0 and (out[8:14, 8:14] == prob[8:14, 8:14]).all()
    assert pp.apply(prob, 0.5, 5, 40).max() == 0  # 36 px left, below 40: empty


@pytest.mark.parametrize(
    "arch", ["unetplusplus", "fpn", "deeplabv3plus", "manet", "linknet", "pan", "upernet"]
)
def test_each_architecture_builds_on_the_timm_backbone_and_outputs_a_mask_per_class(
    tmp_path: Path, arch: str
) -> None:
    from medalist.models.factory import create_segmenter

    cfg = load_config(make_seg_project(tmp_path / "p", n_train=2, n_test=1), [f"model.arch={arch}"])
    model = create_segmenter(cfg, 2, None).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 128, 128))
    assert out.shape == (1, 2, 128, 128)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.arch=unetplus"], "not a segmentation architecture; did you mean unetplusplus"),
        (["model.arch=pspnet", "data.image_size=36"], "output stride of 8, so it takes a multiple"),
        (["model.arch=pan", "data.image_size=32"], "is too small for pan on test_resnet"),
        (["train.loss=weighted_ce"], "does not fit masks"),
    ],
)
def test_segment_architecture_and_loss_mistakes_exit_2_with_one_line(
    tmp_path: Path, overrides: list[str], expected: str
) -> None:
    cfg = make_seg_project(tmp_path / "proj", n_train=8, n_test=2)
    r = medalist("train", str(cfg), *overrides, cwd=tmp_path / "proj")
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "proj" / "runs").exists()


def test_a_mask_loss_with_a_classification_task_exits_2(tiny_project: Path) -> None:
    r = medalist("train", str(tiny_project), "train.loss=lovasz", cwd=tiny_project.parent.parent)
    assert r.returncode == 2 and "is a mask loss" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "loss", ["bce_dice", "bce", "dice", "focal", "lovasz", "tversky", "jaccard"]
)
@pytest.mark.parametrize("classes", [1, 2])
def test_each_mask_loss_is_lower_for_the_right_mask_than_for_its_inverse(
    tmp_path: Path, loss: str, classes: int
) -> None:
    from medalist.tasks.segment_losses import create_mask_loss

    cfg = load_config(make_seg_project(tmp_path / "p", n_train=2, n_test=1), [f"train.loss={loss}"])
    fn = create_mask_loss(cfg, classes)
    target = torch.zeros((2, classes, 16, 16)) if classes > 1 else torch.zeros((2, 16, 16))
    target[..., 4:12, 4:12] = 1
    logits = (target * 2 - 1) * 6
    logits = logits if classes > 1 else logits.unsqueeze(1)
    right, wrong = float(fn(logits, target)), float(fn(-logits, target))
    assert np.isfinite(right) and right < wrong


def test_the_submission_applies_the_fitted_minimum_area_at_each_test_image_size(
    tmp_path: Path,
) -> None:
    import pandas as pd

    from medalist.data.rle import rle_decode
    from medalist.tasks.segment import SegmentTask

    cfg = load_config(make_seg_project(tmp_path / "p", n_train=2, n_test=2))
    sample = pd.read_csv(cfg.path(cfg.competition.sample_submission))
    ids = pd.Series(["t_000", "t_001"])
    preds = np.zeros((2, 32, 32), np.float16)
    preds[:, 2:4, 2:4] = 0.9  # a 4 px blob
    preds[:, 10:26, 10:26] = 0.9  # a 256 px object
    kept = SegmentTask.from_state(cfg, {"min_areas": [20]}).format_submission(ids, preds, sample)
    plain = SegmentTask.from_state(cfg, {}).format_submission(ids, preds, sample)
    for sub in (kept, plain):
        assert list(sub["id"]) == list(sample["id"])
    # t_000 is 48 wide and 32 high (see make_seg_project): pixels map 1.5x across, 1x down.
    row = kept.set_index("id").loc["t_000", "rle"]
    mask = rle_decode(row, (32, 48))
    assert mask[:, :8].sum() == 0 and mask[10:26, 15:39].all()
    blob = rle_decode(plain.set_index("id").loc["t_000", "rle"], (32, 48))
    assert blob[:, :8].sum() > 0 and (blob & ~mask.astype(bool)).sum() == blob[:, :8].sum()
