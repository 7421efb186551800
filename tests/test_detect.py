"""Object detection: box tables in Kaggle's layouts, metrics on hand-made cases, boxes moved by
augmentation and TTA, weighted boxes fusion, the submission, wrong input, and a tiny project
from `medalist new` through folds, train, predict and package --check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import medalist
from detect_data import DETECT_CONFIG, make_detect_competition, make_detect_project
from PIL import Image
from test_bad_input import assert_user_error, run_cli, snapshot

from medalist.config.load import validate_config
from medalist.errors import UserError

pytest.importorskip("ensemble_boxes", reason="detection needs ensemble-boxes (pyproject)")
pytest.importorskip("faster_coco_eval", reason="detection needs faster-coco-eval (pyproject)")

# Three images of 64x48 (width x height); boxes x1 y1 x2 y2 in pixels, and classes.
BOXES = {
    "a": [(4, 6, 20, 30, "cat"), (30, 10, 62, 47, "dog")],
    "b": [(0, 0, 8, 8, "cat")],
}
W, H = 64, 48


def box_config(root: Path, **competition: object) -> object:
    cfg = validate_config(
        {"competition": {"task": "detect", "id_column": "image_id", **competition}}
    )
    cfg._root = root
    return cfg


def write_images(root: Path, names: list[str]) -> None:
    (root / "data" / "train").mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "data" / "train" / f"{n}.png")


def layout_table(layout: str) -> pd.DataFrame:
    """BOXES (and image c without boxes) in one of Kaggle's layouts."""
    rows = []
    for image, boxes in BOXES.items():
        for x1, y1, x2, y2, cls in boxes:
            w, h = x2 - x1, y2 - y1
            if layout == "bbox":
                rows.append(dict(image_id=image, bbox=f"[{x1}, {y1}, {w}, {h}]", class_name=cls))
            elif layout == "xyxy":
                rows.append(
                    dict(image_id=image, x_min=x1, y_min=y1, x_max=x2, y_max=y2, class_name=cls)
                )
            else:
                rows.append(
                    dict(
                        image_id=image,
                        x_center=(x1 + w / 2) / W,
                        y_center=(y1 + h / 2) / H,
                        width=w / W,
                        height=h / H,
                        class_name=cls,
                    )
                )
    rows.append(dict(image_id="c"))  # a row without a box: a negative
    return pd.DataFrame(rows)


def coco_file(path: Path) -> None:
    names = ["a", "b", "c"]
    cats = {"cat": 1, "dog": 2}
    anns = [
        dict(id=k, image_id=names.index(i), bbox=[x1, y1, x2 - x1, y2 - y1], category_id=cats[c])
        for k, (i, (x1, y1, x2, y2, c)) in enumerate(
            (i, b) for i, boxes in BOXES.items() for b in boxes
        )
    ]
    images = [dict(id=k, file_name=f"{n}.png", width=W, height=H) for k, n in enumerate(names)]
    categories = [dict(id=v, name=k) for k, v in cats.items()]
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=categories)))


# ---- data ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["bbox", "xyxy", "cxcywh", "coco"])
def test_each_box_layout_reads_to_the_same_pixel_boxes_and_classes(
    tmp_path: Path, layout: str
) -> None:
    from medalist.data.tables import load_train

    write_images(tmp_path, ["a", "b", "c"])
    if layout == "coco":
        coco_file(tmp_path / "data" / "train.json")
        cfg = box_config(tmp_path, annotations="data/train.json", id_column="image_id")
    else:
        layout_table(layout).to_csv(tmp_path / "data" / "train.csv", index=False)
        cfg = box_config(tmp_path, class_column="class_name")
    train = load_train(cfg).set_index(cfg.competition.id_column)
    names = {"a": "a", "b": "b", "c": "c"} if layout != "coco" else {n: f"{n}.png" for n in "abc"}
    for image, boxes in BOXES.items():
        got = train.loc[names[image], "boxes"]
        # Normalised coordinates come back through a multiplication: equal to 1e-9 px.
        np.testing.assert_allclose(got, np.array([b[:4] for b in boxes], float), atol=1e-9)
        assert train.loc[names[image], "box_labels"] == [b[4] for b in boxes]
    assert train.loc[names["c"], "n_boxes"] == 0
    assert (train["image_width"] == W).all() and (train["image_height"] == H).all()


def test_images_without_a_row_are_negatives_unless_switched_off(tmp_path: Path) -> None:
    from medalist.data.boxes import describe_boxes
    from medalist.data.tables import load_train

    write_images(tmp_path, ["a", "b", "c", "d", "e"])
    layout_table("bbox").to_csv(tmp_path / "data" / "train.csv", index=False)
    cfg = box_config(tmp_path, class_column="class_name")
    train = load_train(cfg)
    assert sorted(train["image_id"]) == ["a", "b", "c", "d", "e"]
    assert describe_boxes(train) == "5 images, 3 boxes, 2 classes, 3 images without boxes"
    cfg.competition.include_unlabeled_images = False
    assert sorted(load_train(cfg)["image_id"]) == ["a", "b", "c"]


def test_the_image_header_gives_the_size_when_the_table_has_none(tmp_path: Path) -> None:
    from medalist.data.tables import load_train

    write_images(tmp_path, ["a", "b", "c"])
    table = layout_table("xyxy")
    table.to_csv(tmp_path / "data" / "train.csv", index=False)
    train = load_train(box_config(tmp_path, class_column="class_name"))
    assert train["image_width"].tolist() == [W] * 3 and train["image_height"].tolist() == [H] * 3
    # With width/height columns the table's sizes are used (the header is not read).
    table.assign(width=128, height=96).to_csv(tmp_path / "data" / "train.csv", index=False)
    train = load_train(box_config(tmp_path, class_column="class_name"))
    assert train["image_width"].tolist() == [128] * 3


BAD_ROWS = {
    "outside": (lambda t: t.assign(bbox=t["bbox"].where(t.index != 1, "[40, 10, 30, 5]")),
                "line 3: the box", "outside its 64x48 image"),
    "zero width": (lambda t: t.assign(bbox=t["bbox"].where(t.index != 0, "[4, 6, 0, 5]")),
                   "line 2: the box has zero or negative width"),
    "malformed": (lambda t: t.assign(bbox=t["bbox"].where(t.index != 2, "[1, 2, three, 4]")),
                  "line 4, column 'bbox'", "not four numbers"),
    "missing image": (lambda t: pd.concat([t, pd.DataFrame([dict(image_id="zz", bbox="[1, 1, 2, 2]")])]),  # noqa: E501
                      "line 6: image zz.png of this box row is missing"),
    "empty": (lambda t: t.iloc[:0], "the box table has no rows"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_wrong_box_row_is_refused_naming_its_line(tmp_path: Path, case: str) -> None:
    from medalist.data.tables import load_train

    write_images(tmp_path, ["a", "b", "c"])
    change, *needles = BAD_ROWS[case]
    change(layout_table("bbox")).to_csv(tmp_path / "data" / "train.csv", index=False)
    with pytest.raises(UserError) as err:
        load_train(box_config(tmp_path, class_column="class_name"))
    assert "\n" not in str(err.value)
    for needle in needles:
        assert needle in str(err.value)


def test_clip_boxes_clips_a_box_that_crosses_the_border_instead(tmp_path: Path) -> None:
    from medalist.data.tables import load_train

    write_images(tmp_path, ["a", "b", "c"])
    table = layout_table("bbox")
    table.loc[1, "bbox"] = "[40, 10, 30, 5]"  # x2 = 70 > 64
    table.to_csv(tmp_path / "data" / "train.csv", index=False)
    train = load_train(box_config(tmp_path, class_column="class_name", clip_boxes=True))
    assert train.loc[0, "boxes"][1].tolist() == [40.0, 10.0, 64.0, 15.0]


def test_a_format_that_contradicts_the_values_is_refused(tmp_path: Path) -> None:
    from medalist.data.tables import load_train

    write_images(tmp_path, ["a", "b", "c"])
    layout_table("xyxy").to_csv(tmp_path / "data" / "train.csv", index=False)
    with pytest.raises(UserError, match=r"line 2, column 'x_min': 4 is above 1 but .*normalized"):
        load_train(box_config(tmp_path, class_column="class_name", box_normalized=True))
    # Read as x, y, w, h the same numbers reach past the image.
    with pytest.raises(UserError, match="outside its 64x48 image"):
        load_train(box_config(tmp_path, class_column="class_name", box_format="xywh"))


def test_stratified_folds_balance_box_counts_and_classes(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.workflows.folds import run_folds

    cfg = make_detect_project(tmp_path / "proj", n_train=24, negatives=6)
    train = pd.read_csv(tmp_path / "proj" / "data" / "train.csv")
    counts = train.groupby("image_id").size()
    for seed in range(4):  # every split, not a lucky one
        overrides = ["competition.class_column=cls", "cv.n_splits=3", f"cv.seed={seed}"]
        path, _ = run_folds(load_config(cfg, overrides))
        folds = pd.read_csv(path)
        folds["n"] = folds["id"].map(counts).fillna(0)
        negatives = folds.assign(neg=folds["n"] == 0).groupby("fold")["neg"].sum()
        assert negatives.tolist() == [2, 2, 2]  # the 6 negatives split evenly


def test_box_strata_keep_negatives_apart_and_merge_strata_smaller_than_the_folds() -> None:
    from medalist.data.boxes import box_strata

    labels = [[]] * 3 + [["a"]] * 3 + [["a", "a"]] * 3 + [["a", "b", "b", "b"]] * 2 + [["b"]]
    images = pd.DataFrame({"box_labels": labels, "n_boxes": [len(x) for x in labels]})
    strata = box_strata(images, ["a", "b"], n_splits=2).tolist()
    assert strata[:3] == ["0|00"] * 3  # the negatives
    assert len(set(strata[:3]) & set(strata[3:])) == 0
    # The lone image with only class b joins its neighbour; no stratum is under 2 images.
    assert min(pd.Series(strata).value_counts()) >= 2


@pytest.mark.parametrize(
    ("layout", "fmt", "normalised"),
    [("bbox", "xywh", False), ("xyxy", "xyxy", False), ("cxcywh", "cxcywh", True)],
)
def test_new_reads_the_box_layout_from_the_column_names_and_values(
    tmp_path: Path, layout: str, fmt: str, normalised: bool
) -> None:
    from medalist.config import load_config
    from medalist.data.tables import load_train
    from medalist.workflows.scaffold import create_project

    write_images(tmp_path / "comp", ["a", "b", "c"])
    data = tmp_path / "comp" / "data"
    layout_table(layout).to_csv(data / "train.csv", index=False)
    (data / "test").mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(data / "test" / "t.png")
    pd.DataFrame({"image_id": ["t"], "PredictionString": [""]}).to_csv(
        data / "sample_submission.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    comp = cfg.competition
    assert (comp.task, comp.box_format, comp.box_normalized) == ("detect", fmt, normalised)
    assert comp.class_column == "class_name"
    # The written config reads the table back to the boxes it holds.
    boxes = load_train(cfg).set_index("image_id")["boxes"]
    np.testing.assert_allclose(boxes["b"], [[0, 0, 8, 8]], atol=1e-9)


# ---- metrics ------------------------------------------------------------------------------------
def pad(rows: list[list[tuple]], width: int) -> np.ndarray:
    from medalist.tasks.detect_fusion import pad_boxes

    return pad_boxes([np.array(r, float).reshape(-1, width) for r in rows], 4, width)


def test_wheat_ap_counts_matches_over_its_iou_thresholds_exactly() -> None:
    from medalist.tasks.detect_metrics import wheat_at

    y = pad([[(0, 0, 10, 10, 0), (20, 20, 30, 30, 0)], []], 5)
    # One exact box, one of IoU 0.6 (a 10x6 box inside a 10x10 one); nothing on the empty image.
    p = pad([[(0, 0, 10, 10, 0.9, 0), (20, 20, 30, 26, 0.8, 0)], []], 6)
    # IoU 0.5, 0.55, 0.6: 2 TP -> 1; 0.65, 0.7, 0.75: 1 TP 1 FP 1 FN -> 1/3; empty image: 1.
    assert wheat_at(y, p, 0.5) == pytest.approx(((3 + 3 * (1 / 3)) / 6 + 1) / 2, abs=1e-12)
    # Above the second box's score only the exact box counts: 1 TP, 1 FN at every IoU.
    assert wheat_at(y, p, 0.85) == pytest.approx((0.5 + 1) / 2, abs=1e-12)
    # A prediction on the empty image is a false positive there: it scores 0.
    p2 = pad([[(0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.9, 0)], [(1, 1, 5, 5, 0.9, 0)]], 6)
    assert wheat_at(y, p2, 0.5) == pytest.approx(0.5, abs=1e-12)


def test_fbeta_iou_pools_counts_over_images_with_beta_two() -> None:
    from medalist.tasks.detect_metrics import fbeta_at

    y = pad([[(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 0)]], 5)
    p = pad([[(0, 0, 10, 10, 0.9, 0)], [(50, 50, 60, 60, 0.9, 0)]], 6)
    # At every IoU threshold: TP 1, FP 1, FN 1 -> F2 = 5 / (5 + 4 + 1) = 0.5.
    assert fbeta_at(y, p, 0.5) == pytest.approx(0.5, abs=1e-12)
    # A missed box weighs four times a false one: TP 1, FN 1 -> 5 / (5 + 4) = 5/9.
    only_first = pad([[(0, 0, 10, 10, 0.9, 0)], []], 6)
    assert fbeta_at(y, only_first, 0.5) == pytest.approx(5 / 9, abs=1e-12)


def test_map50_is_one_for_perfect_boxes_and_drops_when_a_false_box_outranks_a_true_one() -> None:
    from medalist.tasks.detect_metrics import METRICS

    map50 = METRICS["map50"][0]
    y = pad([[(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 0)]], 5)
    perfect = pad([[(0, 0, 10, 10, 0.9, 0)], [(0, 0, 10, 10, 0.8, 0)]], 6)
    assert map50(y, perfect) == pytest.approx(1.0, abs=1e-9)
    # A false box scored above both true ones: precision 1/2 at recall 1/2, 2/3 at recall 1;
    # COCO's interpolated 101-point AP is then 2/3 over the whole recall range.
    worse = pad([[(0, 0, 10, 10, 0.9, 0), (40, 40, 50, 50, 0.95, 0)], [(0, 0, 10, 10, 0.8, 0)]], 6)
    assert map50(y, worse) == pytest.approx(2 / 3, abs=1e-2)
    assert map50(y, worse) < 0.7


# ---- boxes move with the image ------------------------------------------------------------------
def detect_task(root: Path, **overrides: object):
    from medalist.tasks.detect import DetectTask

    raw = yaml.safe_load(DETECT_CONFIG)
    for key, value in overrides.items():
        section, name = key.split(".")
        raw[section][name] = value
    cfg = validate_config(raw)
    cfg._root = root
    return DetectTask(cfg, DetectTask.from_state(cfg, {}).metric, "image_id", ["square", "bar"])


def test_letterbox_scales_boxes_with_the_image_and_a_flip_moves_them(tmp_path: Path) -> None:
    from medalist.data.images import letterbox

    task = detect_task(tmp_path)
    img = np.zeros((32, 64, 3), np.uint8)  # a 64x32 image into the 64x64 input: scale 1
    img[4:12, 10:20] = 255
    boxed = letterbox(img, (64, 64))
    assert boxed.shape == (64, 64, 3) and boxed[32:].max() == 0  # padded below
    y = pad([[(10, 4, 20, 12, 1)]], 5)[0]
    flip = task.create_transform([{"name": "HorizontalFlip", "p": 1.0}], train=True)
    x, t = task.transform_sample(flip, boxed, y)
    assert tuple(x.shape) == (3, 64, 64)
    assert t[0].tolist() == [44.0, 4.0, 54.0, 12.0, 1.0]  # 64 - 20, 64 - 10
    assert x[0, 4:12, 44:54].min() == 255  # the pixels went where the box went
    # A 128x64 image is halved to fit: its boxes are halved with it.
    from medalist.tasks.detect import input_scales

    assert input_scales(task.cfg, np.array([128]), np.array([64])).tolist() == [[0.5, 0.5]]


def test_tta_flips_the_boxes_back_before_they_are_fused(tmp_path: Path) -> None:
    import torch

    task = detect_task(tmp_path)
    p = torch.tensor(pad([[(10, 4, 20, 12, 0.9, 0)]], 6))
    flipped = p.clone()
    flipped[..., 0], flipped[..., 2] = 64 - p[..., 2], 64 - p[..., 0]
    back = task.undo_view(flipped, "hflip")
    torch.testing.assert_close(back, p, rtol=0, atol=0, equal_nan=True)
    fused = task.combine_views([p, back])
    assert torch.allclose(fused[0, 0, :4], p[0, 0, :4], atol=1e-4)


def test_weighted_boxes_fusion_of_identical_boxes_returns_them(tmp_path: Path) -> None:
    task = detect_task(tmp_path)
    p = pad([[(10, 4, 20, 12, 0.9, 1), (30, 30, 40, 44, 0.6, 0)], []], 6)
    fused = task.combine([p, p, p])
    assert fused.shape[0] == 2 and np.isnan(fused[1]).all()
    np.testing.assert_allclose(fused[0, :2], p[0, :2], atol=1e-4)
    # Boxes outside the input or of no size are dropped before ensemble_boxes sees them.
    bad = p.copy()
    bad[0, 2] = [9, 5, 5, 9, 0.9, 0]  # x2 < x1: ensemble_boxes would swap and keep it
    assert np.isfinite(task.combine([bad, bad])[0, :, 0]).sum() == 2


@pytest.mark.parametrize("detector", ["fcos", "retinanet"])
def test_validation_gets_torchvisions_detections_and_eval_mode_losses_from_one_pass(
    tmp_path: Path, detector: str
) -> None:
    import torch
    from torch import nn

    from medalist.models.detector import create_detector, loss_and_detections

    task = detect_task(tmp_path, **{"model.detector": detector})
    torch.manual_seed(0)
    model = create_detector(task.cfg, 2, None)
    x = torch.rand(2, 3, 64, 64)
    y = torch.tensor(pad([[(4, 4, 30, 30, 1)], []], 5))
    model.eval()
    with torch.no_grad():
        expected = model(list(x))
        losses, detections = loss_and_detections(model, list(x), task._targets(y))
        model.train()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        train_losses = model(list(x), task._targets(y))
    for got, want in zip(detections, expected, strict=True):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    for key, value in train_losses.items():
        torch.testing.assert_close(losses[key], value, rtol=0, atol=0)


# ---- submission ---------------------------------------------------------------------------------
def test_the_submission_writes_boxes_in_each_test_images_own_pixels(tmp_path: Path) -> None:
    (tmp_path / "data" / "test").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(tmp_path / "data" / "test" / "t.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "data" / "test" / "u.png")
    task = detect_task(tmp_path)
    task.classes = ["square"]
    preds = pad([[(10, 4, 20, 12, 0.91234, 0)], []], 6)
    sample = pd.DataFrame({"image_id": ["u", "t"], "PredictionString": ""})
    sub = task.format_submission(pd.Series(["t", "u"]), preds, sample)
    # t is 128x64, halved into the input: its box doubles on the way back.
    assert sub["PredictionString"].tolist() == ["", "0.9123 20.0 8.0 20.0 16.0"]
    task.cfg.competition.prediction_format = "{label} {score} {x1} {y1} {x2} {y2}"
    task.cfg.competition.empty_prediction = "none 1 0 0 1 1"
    sub = task.format_submission(pd.Series(["t", "u"]), preds, sample)
    assert sub["PredictionString"].tolist() == [
        "none 1 0 0 1 1",
        "square 0.9123 20.0 8.0 40.0 24.0",
    ]


def test_an_unknown_template_field_is_refused(tmp_path: Path) -> None:
    from medalist.tasks.detect import check_format

    with pytest.raises(UserError, match="unknown field"):
        check_format("{conf} {x} {y}")
    check_format("{class_index} {score:.3f} {x1} {y1} {x2} {y2}")


# ---- wrong input through the CLI ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.detector=yolo", "model.detector"),
        ("model.backbone=test_vit", "feature"),
        ("competition.metric=accuracy", "detection scores boxes"),
        ("model.fpn_channels=40", "multiple of 32"),
    ],
)
def test_settings_that_cannot_detect_exit_2_before_a_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, override, needle
) -> None:
    cfg = make_detect_project(tmp_path / "proj", n_train=6, n_test=1)
    before = snapshot(tmp_path / "proj")
    code, err = run_cli(monkeypatch, capsys, "train", str(cfg), override)
    assert_user_error(code, err, needle)
    assert snapshot(tmp_path / "proj") == before


def test_a_wrong_box_row_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    cfg = make_detect_project(tmp_path / "proj", n_train=6, n_test=1)
    path = tmp_path / "proj" / "data" / "train.csv"
    table = pd.read_csv(path)
    table.loc[0, "bbox"] = "[1, 2, 3]"
    table.to_csv(path, index=False)
    code, err = run_cli(monkeypatch, capsys, "folds", str(cfg))
    assert_user_error(code, err, "train.csv line 2, column 'bbox'")


def test_a_class_the_run_did_not_train_on_is_refused(tmp_path: Path) -> None:
    from medalist.data.tables import load_train

    cfg_path = make_detect_project(tmp_path / "proj", n_train=6, n_test=1)
    from medalist.config import load_config

    cfg = load_config(cfg_path, ["competition.class_column=cls"])
    task = detect_task(tmp_path / "proj")
    task.cfg = cfg
    task.classes = ["square"]  # as a run that never saw a bar
    with pytest.raises(UserError, match="class 'bar' is not one this run trains on"):
        task.encode(load_train(cfg))


# ---- end to end ---------------------------------------------------------------------------------
def tiny(config: Path) -> None:
    raw = yaml.safe_load(config.read_text())
    raw["cv"]["n_splits"] = 2
    raw["model"].update(backbone="test_resnet", fpn_channels=32, detections_per_image=20)
    raw["data"]["image_size"] = 64
    raw["train"].update(epochs=2, batch_size=4, threads=1, warmup_epochs=0, lr=3e-3)
    raw["track"]["backends"] = ["none"]
    config.write_text(yaml.safe_dump(raw))


@pytest.mark.slow
def test_a_project_made_from_a_box_table_trains_predicts_and_packages(tmp_path: Path) -> None:
    from medalist.workflows.scaffold import create_project

    make_detect_competition(tmp_path / "comp" / "data", n_train=16, n_test=3)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    config = report.config_path
    written = yaml.safe_load(config.read_text())["competition"]
    assert written["task"] == "detect" and written["box_format"] == "xywh"
    assert written["box_normalized"] is False and written["class_column"] == "cls"
    tiny(config)
    project = tmp_path / "proj"
    for args in (["folds", str(config)], ["train", str(config), "--name", "d"]):
        r = medalist(*args, cwd=project)
        assert r.returncode == 0, r.stderr[-3000:]
    assert "analysis failed" not in r.stderr
    run = project / "runs" / "d"
    history = pd.read_csv(run / "fold_0" / "history.csv")
    assert {"train_classification", "train_bbox_regression", "train_bbox_ctrness"} <= set(history)
    oof = pd.read_csv(run / "oof.csv")
    assert list(oof.columns) == ["id", "fold", "n_true", "n_pred", "matched_50", "image_score"]
    train = pd.read_csv(tmp_path / "comp" / "data" / "train.csv")
    assert dict(zip(oof["id"], oof["n_true"], strict=True)) == {
        **{f"im{i:03d}": 0 for i in range(2)},
        **train.groupby("image_id").size().to_dict(),
    }
    with np.load(run / "fold_0" / "oof_boxes.npz") as z:
        assert len(z["counts"]) == (oof["fold"] == 0).sum()
    scores = json.loads((run / "scores.json").read_text())
    assert scores["metric"] == "map50" and len(scores["folds"]) == 2
    # The error analysis: AP by object size (all the squares are small), the most-missed
    # images drawn, a remedy with its reason, and the report renders them.
    sizes = pd.read_csv(run / "analysis" / "ap_by_size.csv").set_index("size")
    assert sizes.loc["small", "boxes"] == oof["n_true"].sum()
    assert (run / "plots" / "most_missed.png").stat().st_size > 10_000
    diagnosis = json.loads((run / "diagnosis.json").read_text())
    assert all(s.get("reason") for s in diagnosis["suggestions"])
    # Two epochs find few of the small squares: a larger input is the first remedy (the
    # scaffold's augmentation already scales, so no scale step is suggested).
    overrides = [s["override"] or "" for s in diagnosis["suggestions"]]
    assert "data.image_size=128" in overrides
    assert not any(o.startswith("data.augment") for o in overrides)
    r = medalist("report", "runs/d", cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]

    r = medalist("predict", str(run), "--tta", "hflip", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    assert list(sub["image_id"]) == ["t00", "t01", "t02"]
    fields = sub["PredictionString"].str.split().map(len)
    assert (fields % 6 == 0).all() and fields.sum() > 0  # "{label} {score} x1 y1 x2 y2"

    r = medalist(
        "package", "runs/d", "--check", "--competition", "det-demo", "--user", "someone",
        cwd=project,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout

    # Runs whose boxes are in another input size are not blended: the command says so and
    # changes nothing (tests/test_detect_ensemble.py blends runs that match).
    shutil.copytree(run, project / "runs" / "d2")
    saved = yaml.safe_load((project / "runs" / "d2" / "config.yaml").read_text())
    saved["data"]["image_size"] = 96
    (project / "runs" / "d2" / "config.yaml").write_text(yaml.safe_dump(saved))
    before = snapshot(project / "runs")
    r = medalist("ensemble", "runs/d", "runs/d2", cwd=project)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "[96, 96] against" in r.stderr and snapshot(project / "runs") == before


def test_a_small_fcos_predicts_a_lone_small_image() -> None:
    """32 pyramid channels at 64 px: the 1x1 top level would give GroupNorm one value per group."""
    import torch

    from medalist.models.detector import create_detector

    cfg = validate_config(
        {
            "competition": {"task": "detect"},
            "model": {"backbone": "test_resnet", "fpn_channels": 32},
            "data": {"image_size": 64},
        }
    )
    model = create_detector(cfg, 2, None).eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 64, 64)])
    assert out["boxes"].shape[1] == 4 and len(out["scores"]) == len(out["boxes"])
