"""Segmentation layouts beyond run-length text and one-class mask folders: index masks
(`competition.mask_mode: index`, one class per pixel, softmax, void pixels ignored), a mask
file per image and class (`competition.mask_pattern`), and ids that join image and class
(`competition.id_class_separator`, Severstal's ImageId_ClassId)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from PIL import Image
from test_segment import SEG_CONFIG, decode_by_hand

VOID = 255


def index_picture(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with a red rectangle (class 1) and a green one (class 2) that may touch
    (the later one wins: one class per pixel), and a void band (255) along the bottom edge of
    one image in two."""
    img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    for value, channel in ((1, 0), (2, 1)):
        if rng.random() > 0.2:
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            mask[y0 : y0 + h // 3, x0 : x0 + w // 3] = value
            img[y0 : y0 + h // 3, x0 : x0 + w // 3, channel] = 240
    if rng.random() > 0.5:
        mask[-3:, :] = VOID
    return img, mask


def make_index_project(root: Path, *, n_train: int = 16, n_test: int = 4, seed: int = 0) -> Path:
    """An index-mask competition: train.csv lists the ids, masks/ holds PNGs of 0 (background),
    1, 2 and 255 (void); the sample submission has a row per test image and class 1 and 2
    (background is not submitted). The test masks are kept in `root/truth/`."""
    rng = np.random.default_rng(seed)
    data = root / "data"
    for sub in ("train", "test", "masks"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"img_{i:03d}" for i in range(n_train)]
    for i in ids:
        img, mask = index_picture(rng, 32, 40)
        Image.fromarray(img).save(data / "train" / f"{i}.png")
        Image.fromarray(mask).save(data / "masks" / f"{i}.png")
    pd.DataFrame({"id": ids}).to_csv(data / "train.csv", index=False)
    (root / "truth").mkdir(exist_ok=True)
    test_ids = [f"t_{j:03d}" for j in range(n_test)]
    for t in test_ids:
        img, mask = index_picture(rng, 40, 32)  # taller than wide
        Image.fromarray(img).save(data / "test" / f"{t}.png")
        Image.fromarray(mask).save(root / "truth" / f"{t}.png")
    pd.DataFrame({"id": test_ids}).to_csv(data / "test.csv", index=False)
    sample = [{"id": t, "class": c, "rle": ""} for t in test_ids[::-1] for c in (1, 2)]
    pd.DataFrame(sample).to_csv(data / "sample_submission.csv", index=False)
    (root / "configs").mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "baseline.yaml"
    cfg.write_text(
        SEG_CONFIG.replace(
            "  target_column: rle\n",
            "  target_column: rle\n  mask_dir: data/masks\n  mask_mode: index\n"
            "  ignore_index: 255\n  classes: [0, 1, 2]\n  class_column: class\n",
        )
    )
    return cfg


def test_new_reads_index_masks_with_a_void_value_the_sample_does_not_list(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_index_project(tmp_path / "comp", n_train=8, n_test=2)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    comp = load_config(report.config_path).competition
    assert (comp.task, comp.mask_mode, comp.mask_dir) == ("segment", "index", "data/masks")
    assert comp.ignore_index == VOID and comp.classes == [0, 1, 2]
    assert comp.class_column == "class"
    assert report.inferred["competition.ignore_index"] == "255"
    why = report.reasons["competition.ignore_index"]
    assert "255 is not among the sample's classes (1, 2)" in why and "void" in why


# ---- the metric, the loss and the submission -------------------------------------------------
def _index_task(cfg_path: Path, overrides: list[str] = ()):  # noqa: ANN202 - a test helper
    from medalist.config import load_config
    from medalist.tasks.segment import SegmentTask

    cfg = load_config(cfg_path, list(overrides))
    state = {"kind": "index", "classes": ["0", "1", "2"], "values": [0, 1, 2], "void": VOID}
    return SegmentTask.from_state(cfg, state)


def test_index_dice_leaves_void_pixels_out_of_every_class(tmp_path: Path) -> None:
    from medalist.tasks.segment_index import index_scores

    task = _index_task(make_index_project(tmp_path / "proj", n_train=2, n_test=1))
    y = np.zeros((1, 4, 6), dtype=np.uint8)
    y[0, :, :3] = 1
    y[0, 3, :] = VOID  # the bottom row is void
    label = np.where(y == VOID, 2, y)  # right everywhere, and class 2 on every void pixel
    probs = np.eye(3, dtype=np.float16)[label].transpose(0, 3, 1, 2)
    # Class 2 is absent from the scored pixels of both: 1; counted, void would make it 0.
    assert index_scores(y, probs, 3).tolist() == [[1.0, 1.0, 1.0]]
    assert task.score(y, probs) == 1.0
    # One scored pixel of class 1 predicted as 0: class 0's Dice 2*9/(9+10), class 1's 2*8/(9+8).
    label[0, 0, 0] = 0
    probs = np.eye(3, dtype=np.float16)[label].transpose(0, 3, 1, 2)
    got = index_scores(y, probs, 3)[0]
    assert got[0] == pytest.approx(18 / 19) and got[1] == pytest.approx(16 / 17)
    assert got[2] == 1.0
    oof = task.oof_frame(pd.Series(["a"]), np.array([0]), y, probs)
    assert oof["target_area_1"].iloc[0] == pytest.approx(9 / 18)  # of the 18 scored pixels
    assert oof["dice"].iloc[0] == pytest.approx((18 / 19 + 16 / 17 + 1) / 3)


def test_the_index_loss_ignores_the_void_pixels(tmp_path: Path) -> None:
    import torch

    task = _index_task(make_index_project(tmp_path / "proj", n_train=2, n_test=1))
    loss = task.create_loss(task.cfg, np.zeros(1))
    y = torch.tensor(np.random.default_rng(0).integers(0, 3, (2, 8, 8)), dtype=torch.uint8)
    y[:, :2] = VOID
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    other = logits.clone()
    other[:, :, :2] = 50 * torch.randn(2, 3, 2, 8)  # only the void pixels' logits change
    assert float(loss(other, y)) == pytest.approx(float(loss(logits, y)), abs=1e-6)
    changed = logits.clone()
    changed[:, 0, 4] += 5.0  # class 0 on a scored row: the loss moves
    assert abs(float(loss(changed, y)) - float(loss(logits, y))) > 1e-3


def test_an_index_submission_decodes_to_the_true_classes_on_a_non_square_image(
    tmp_path: Path,
) -> None:
    cfg = make_index_project(tmp_path / "proj", n_train=2, n_test=2)
    data = tmp_path / "proj" / "data"
    truth = {}
    for k, t in enumerate(["t_000", "t_001"]):  # 48 high, 32 wide: the model's own size
        label = np.zeros((48, 32), dtype=np.int64)
        label[4:40, 3:9] = 1  # an L of class 1: no flip or transpose lands on itself
        label[34:40, 3:26] = 1
        label[6:14, 18 + k : 28] = 2
        truth[t] = label
        Image.fromarray(np.zeros((48, 32, 3), np.uint8)).save(data / "test" / f"{t}.png")
    task = _index_task(cfg, ["data.image_size=[48,32]"])
    ids = pd.Series(list(truth))
    probs = np.stack([np.eye(3, dtype=np.float16)[truth[t]].transpose(2, 0, 1) for t in ids])
    sample = pd.DataFrame([{"id": t, "class": c, "rle": ""} for t in ids[::-1] for c in (2, 1)])
    sub = task.format_submission(ids, probs, sample)
    assert sub[["id", "class"]].equals(sample[["id", "class"]])
    for i, c, text in zip(sub["id"], sub["class"], sub["rle"], strict=True):
        assert np.array_equal(decode_by_hand(text, 48, 32), (truth[i] == c).astype(np.uint8))


# ---- end to end -----------------------------------------------------------------------------
@pytest.mark.slow
def test_an_index_mask_project_from_new_trains_predicts_and_packages(tmp_path: Path) -> None:
    from medalist.workflows.scaffold import create_project

    make_index_project(tmp_path / "comp", n_train=16, n_test=4)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    project, cfg = tmp_path / "proj", str(report.config_path)
    small = [
        "model.backbone=test_resnet", "data.image_size=32", "cv.n_splits=2", "train.epochs=1",
        "train.batch_size=8", "train.threads=1", "data.num_workers=0", "track.backends=[none]",
    ]  # fmt: skip
    r = medalist("folds", cfg, *small, cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]
    r = medalist("train", cfg, *small, "--name", "idx", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "analysis failed" not in r.stderr
    run = project / "runs" / "idx"
    assert json.loads((run / "task.json").read_text())["void"] == VOID
    oof = pd.read_csv(run / "oof.csv")
    per_class = [f"{part}_{c}" for c in "012" for part in ("target_area", "pred_area", "dice")]
    assert list(oof.columns) == ["id", "fold", *per_class, "dice"]
    assert np.allclose(oof["dice"], oof[["dice_0", "dice_1", "dice_2"]].mean(axis=1))
    scores = json.loads((run / "scores.json").read_text())
    assert scores["oof"] == pytest.approx(oof["dice"].mean(), abs=1e-9)
    assert set(scores["oof_dice_per_class"]) == {"0", "1", "2"}
    table = pd.read_csv(run / "analysis" / "per_class.csv")
    assert table["class"].tolist() == [0, 1, 2]
    assert table["dice"].tolist() == pytest.approx(list(scores["oof_dice_per_class"].values()))
    # The areas are shares of the scored pixels: void (the bottom rows of some) left out.
    assert np.allclose(oof[["target_area_0", "target_area_1", "target_area_2"]].sum(axis=1), 1)
    masks = np.load(run / "fold_0" / "oof_masks.npy")
    assert masks.dtype == np.float16 and masks.shape[1:] == (3, 32, 32)
    assert np.allclose(masks.astype(np.float32).sum(axis=1), 1, atol=1e-2)  # softmax

    r = medalist("predict", "runs/idx", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
    sample = pd.read_csv(project / "data" / "sample_submission.csv", keep_default_na=False)
    assert sub[["id", "class"]].equals(sample[["id", "class"]])
    for i in sub["id"].unique():  # one class per pixel: the classes' masks never overlap
        both = [decode_by_hand(t, 40, 32) for t in sub.loc[sub["id"] == i, "rle"]]
        assert not (both[0] & both[1]).any()
    r = medalist(
        "package", "runs/idx", "--check", "--competition", "idx", "--user", "u", cwd=project
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout and "columns ['id', 'class', 'rle']" in r.stdout


# ---- wrong input ----------------------------------------------------------------------------
def _exits_2(project: Path, *args: str) -> str:
    r = medalist(*args, cwd=project)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def test_an_index_mask_value_outside_the_classes_names_file_value_and_keys(
    tmp_path: Path,
) -> None:
    cfg = make_index_project(tmp_path / "proj", n_train=6, n_test=1)
    project = tmp_path / "proj"
    path = project / "data" / "masks" / "img_003.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[0, 0] = 7
    Image.fromarray(mask).save(path)
    err = _exits_2(project, "train", str(cfg))
    assert "img_003.png has pixel value 7, which is not a class (0, 1, 2)" in err
    assert "competition.classes" in err and "competition.ignore_index" in err
    assert not (project / "runs").exists()
    # Without classes in the config, 7 is one of the classes the masks hold.
    r = medalist("folds", str(cfg), "competition.classes=null", cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]


def test_an_index_mask_of_another_size_than_its_image_names_both_sizes(tmp_path: Path) -> None:
    cfg = make_index_project(tmp_path / "proj", n_train=6, n_test=1)
    project = tmp_path / "proj"
    Image.fromarray(np.zeros((40, 32), np.uint8)).save(project / "data" / "masks" / "img_002.png")
    err = _exits_2(project, "train", str(cfg))
    assert "img_002.png is 40x32 but its image" in err and "img_002.png is 32x40" in err
    assert not (project / "runs").exists()


@pytest.mark.parametrize(
    ("mode", "loss", "says"),
    [
        ("index", "bce_dice", "does not fit index masks"),
        ("index", "bce", "does not fit index masks"),
        ("sigmoid", "ce_dice", "is for one class per pixel"),
    ],
)
def test_a_loss_that_does_not_fit_the_mask_mode_exits_2(
    tmp_path: Path, mode: str, loss: str, says: str
) -> None:
    cfg = make_index_project(tmp_path / "proj", n_train=4, n_test=1)
    project = tmp_path / "proj"
    extra = [] if mode == "index" else ["competition.ignore_index=null"]
    err = _exits_2(
        project, "train", str(cfg), f"competition.mask_mode={mode}", f"train.loss={loss}", *extra
    )
    assert says in err and "train.loss" in err
    assert not (project / "runs").exists()


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("competition.mask_dir=null", "set competition.mask_dir too"),
        ("competition.ignore_index=300", "0 to 255"),
        ("competition.ignore_index=void", "names no class of competition.classes"),
    ],
)
def test_index_mode_settings_that_cannot_work_exit_2(
    tmp_path: Path, override: str, says: str
) -> None:
    cfg = make_index_project(tmp_path / "proj", n_train=4, n_test=1)
    assert says in _exits_2(tmp_path / "proj", "train", str(cfg), override)


# ---- ids that join image and class (Severstal) ----------------------------------------------
JOINED = "ImageId_ClassId"


def make_joined_project(root: Path, *, n_train: int = 16, n_test: int = 3) -> Path:
    """Severstal's layout: train.csv has `ImageId_ClassId` (`img_000.png_red`) and
    `EncodedPixels`, a row per image and class (empty where the class is absent); the sample
    submission joins the ids the same way and there is no test.csv."""
    from test_segment import make_two_class_project

    make_two_class_project(root, long=True, n_train=n_train, n_test=n_test)
    data = root / "data"
    long = pd.read_csv(data / "train.csv", keep_default_na=False)
    texts = {(i, c): t for i, c, t in zip(long["id"], long["class"], long["rle"], strict=True)}
    ids = sorted(long["id"].unique())
    rows = [
        {JOINED: f"{i}.png_{c}", "EncodedPixels": texts.get((i, c), "")}
        for i in ids
        for c in ("red", "green")
    ]
    pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
    sample = pd.read_csv(data / "sample_submission.csv", keep_default_na=False)
    joined = sample["id"] + ".png_" + sample["class"]
    pd.DataFrame({JOINED: joined, "EncodedPixels": ""}).to_csv(
        data / "sample_submission.csv", index=False
    )
    (data / "test.csv").unlink()
    cfg = root / "configs" / "baseline.yaml"
    text = cfg.read_text().replace("  id_column: id\n", f"  id_column: {JOINED}\n")
    text = text.replace(
        "  target_column: rle\n  class_column: class\n",
        "  target_column: EncodedPixels\n  class_column: ClassId\n  id_class_separator: _\n",
    )
    cfg.write_text(text.replace("test_csv: data/test.csv", "test_csv: null"))
    return cfg


def test_joined_ids_are_split_when_read_and_joined_again_in_the_submission(
    tmp_path: Path,
) -> None:
    from medalist.config import load_config
    from medalist.data.tables import load_sample_submission, load_tables
    from medalist.tasks.segment import SegmentTask

    cfg_path = make_joined_project(tmp_path / "proj", n_train=4, n_test=3)
    project = tmp_path / "proj"
    cfg = load_config(cfg_path, ["data.image_size=[40,32]"])  # the test images' own size
    tables = load_tables(cfg, need_test=True)
    # One row per image, a mask column per class, decoded as the joined rows gave them.
    original = pd.read_csv(project / "data" / "train.csv", keep_default_na=False)
    assert tables.train[JOINED].tolist() == [f"img_{i:03d}.png" for i in range(4)]
    task = SegmentTask.from_config(load_config(cfg_path), tables.train)
    assert task.classes == ["green", "red"]
    masks = task.encode(tables.train)  # (4, classes, 32, 32): the images are 32x40
    for row in original.itertuples(index=False):
        image, _, cls = row[0].rpartition("_")
        got = masks[tables.train[JOINED].tolist().index(image), task.classes.index(cls)]
        import cv2

        want = cv2.resize(decode_by_hand(row[1], 32, 40), (32, 32), interpolation=0)
        assert np.array_equal(got, want), row[0]
    # The test images come from the sample's joined ids: one per image, in the sample's order.
    sample = load_sample_submission(cfg)
    assert tables.test[JOINED].tolist() == ["t_002.png", "t_001.png", "t_000.png"]
    truth = {
        (t, c): (np.asarray(Image.open(project / "truth" / f"{t[:-4]}_{c}.png")) > 0)
        for t in tables.test[JOINED]
        for c in ("green", "red")
    }
    probs = np.stack(
        [np.stack([truth[(t, c)] for c in task.classes]) for t in tables.test[JOINED]]
    ).astype(np.float16)
    sub = SegmentTask.from_state(cfg, task.state()).format_submission(
        tables.test[JOINED], probs, sample
    )
    assert list(sub.columns) == [JOINED, "EncodedPixels"]
    assert sub[JOINED].tolist() == sample[JOINED].tolist()  # joined again, the sample's order
    for joined, text in zip(sub[JOINED], sub["EncodedPixels"], strict=True):
        image, _, cls = joined.rpartition("_")
        assert np.array_equal(decode_by_hand(text, 40, 32), truth[(image, cls)]), joined


def test_new_reads_joined_ids_as_image_and_class(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_joined_project(tmp_path / "comp", n_train=24, n_test=2)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    comp = load_config(report.config_path).competition
    assert (comp.task, comp.id_column, comp.id_class_separator) == ("segment", JOINED, "_")
    assert (comp.class_column, comp.target_column) == ("ClassId", "EncodedPixels")
    assert comp.image_dir == "data/train" and comp.test_image_dir == "data/test"
    r = medalist("folds", str(report.config_path), cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-2000:]
    folds = pd.read_csv(next((tmp_path / "proj" / "folds").glob("*.csv")))
    assert len(folds) == 24 and folds.iloc[:, 0].is_unique  # a row per image, not per class


def test_a_joined_id_without_the_separator_names_its_line(tmp_path: Path) -> None:
    cfg = make_joined_project(tmp_path / "proj", n_train=4, n_test=1)
    table = tmp_path / "proj" / "data" / "train.csv"
    rows = pd.read_csv(table, keep_default_na=False)
    rows.loc[3, JOINED] = "nosplit"
    rows.to_csv(table, index=False)
    err = _exits_2(tmp_path / "proj", "train", str(cfg))
    assert "line 5: id 'nosplit' is not an image id and a class joined by '_'" in err


# ---- a mask file per image and class --------------------------------------------------------
def make_class_files_project(root: Path, *, n_train: int = 16, n_test: int = 3) -> Path:
    """The two-class competition with its masks as files `masks/<id>_<class>.png` (an empty
    file where the class is absent) and train.csv listing the ids; the sample keeps a row per
    test image and class."""
    from test_segment import make_two_class_project

    make_two_class_project(root, long=True, n_train=n_train, n_test=n_test)
    data = root / "data"
    long = pd.read_csv(data / "train.csv", keep_default_na=False)
    (data / "masks").mkdir()
    ids = sorted(long["id"].unique())
    for i in ids:
        for c in ("red", "green"):
            text = long.loc[(long["id"] == i) & (long["class"] == c), "rle"]
            mask = decode_by_hand(text.iloc[0] if len(text) else "", 32, 40)
            Image.fromarray(mask * 255).save(data / "masks" / f"{i}_{c}.png")
    pd.DataFrame({"id": ids}).to_csv(data / "train.csv", index=False)
    cfg = root / "configs" / "baseline.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "  target_column: rle\n",
            '  target_column: rle\n  mask_dir: data/masks\n  mask_pattern: "{id}_{class}.png"\n',
        )
    )
    return cfg


def test_a_mask_file_per_image_and_class_is_read_and_submitted_per_class(
    tmp_path: Path,
) -> None:
    from medalist.config import load_config
    from medalist.data.tables import load_tables
    from medalist.tasks.segment import SegmentTask

    cfg_path = make_class_files_project(tmp_path / "proj", n_train=4, n_test=3)
    project = tmp_path / "proj"
    tables = load_tables(load_config(cfg_path), need_test=True)
    task = SegmentTask.from_config(load_config(cfg_path), tables.train)
    assert task.classes == ["green", "red"]  # from the file names
    full = load_config(cfg_path, ["data.image_size=[32,40]"])  # the images' own size
    masks = SegmentTask.from_state(full, task.state()).encode(tables.train)
    assert masks.shape == (4, 2, 32, 40)
    for k, i in enumerate(tables.train["id"]):
        for j, c in enumerate(task.classes):
            want = np.asarray(Image.open(project / "data" / "masks" / f"{i}_{c}.png")) > 0
            assert np.array_equal(masks[k, j], want), (i, c)
    # The submission: a row per image and class in the sample's order, each mask decoded at
    # its test image's own (taller than wide) size equal to the truth.
    cfg = load_config(cfg_path, ["data.image_size=[40,32]"])
    ids = tables.test["id"]
    truth = {
        (t, c): np.asarray(Image.open(project / "truth" / f"{t}_{c}.png")) > 0
        for t in ids
        for c in task.classes
    }
    probs = np.stack([np.stack([truth[(t, c)] for c in task.classes]) for t in ids])
    sub = SegmentTask.from_state(cfg, task.state()).format_submission(
        ids, probs.astype(np.float16), tables.sample
    )
    assert sub[["id", "class"]].equals(tables.sample[["id", "class"]])
    for i, c, text in zip(sub["id"], sub["class"], sub["rle"], strict=True):
        assert np.array_equal(decode_by_hand(text, 40, 32), truth[(i, c)]), (i, c)


def test_new_reads_mask_files_named_by_image_and_class(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_class_files_project(tmp_path / "comp", n_train=24, n_test=2)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    comp = load_config(report.config_path).competition
    assert (comp.task, comp.mask_dir, comp.mask_pattern) == (
        "segment",
        "data/masks",
        "{id}_{class}.png",
    )
    assert comp.classes == ["green", "red"] and comp.class_column == "class"
    assert comp.mask_mode == "sigmoid"
    r = medalist("folds", str(report.config_path), cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_class_mask_file_of_another_size_or_missing_exits_2(tmp_path: Path) -> None:
    cfg = make_class_files_project(tmp_path / "proj", n_train=6, n_test=1)
    project = tmp_path / "proj"
    bad = project / "data" / "masks" / "img_004_green.png"
    Image.fromarray(np.zeros((40, 32), np.uint8)).save(bad)
    err = _exits_2(project, "train", str(cfg))
    assert "img_004_green.png is 40x32 but its image" in err and "img_004.png is 32x40" in err
    bad.unlink()
    assert "img_004_green.png not found" in _exits_2(project, "train", str(cfg))
    assert not (project / "runs").exists()


def test_a_named_void_class_gets_no_channel_and_its_pixels_are_ignored(tmp_path: Path) -> None:
    from medalist.config import load_config
    from medalist.data.index_masks import IGNORE
    from medalist.data.tables import load_train
    from medalist.tasks.segment import SegmentTask

    cfg_path = make_index_project(tmp_path / "proj", n_train=4, n_test=1)
    masks_dir = tmp_path / "proj" / "data" / "masks"
    raw = {}
    for path in sorted(masks_dir.glob("*.png")):  # void as value 3, the class named "void"
        mask = np.asarray(Image.open(path)).copy()
        raw[path.stem] = mask.copy()
        mask[mask == VOID] = 3
        Image.fromarray(mask).save(path)
    overrides = ["competition.classes=[bg,red,green,void]", "competition.ignore_index=void"]
    overrides.append("data.image_size=[32,40]")  # the images' own size
    cfg = load_config(cfg_path, overrides[:2])
    train = load_train(cfg)
    task = SegmentTask.from_config(cfg, train)
    assert (task.classes, task.values, task.void) == (["bg", "red", "green"], [0, 1, 2], 3)
    assert task.num_outputs == 3
    got = SegmentTask.from_state(load_config(cfg_path, overrides), task.state()).encode(train)
    assert any((m == VOID).any() for m in raw.values())
    for k, i in enumerate(train["id"]):
        want = np.where(raw[i] == VOID, IGNORE, raw[i])
        assert np.array_equal(got[k], want), i


def test_augmentations_that_pad_fill_index_masks_with_void(tmp_path: Path) -> None:
    task = _index_task(make_index_project(tmp_path / "proj", n_train=2, n_test=1))
    steps = [{"name": "Affine", "translate_px": {"x": 8, "y": 0}, "p": 1.0}]
    image = np.zeros((16, 16, 3), np.uint8)
    mask = np.ones((16, 16), np.uint8)
    _, out = task.transform_sample(task.create_transform(steps, train=True), image, mask)
    assert (out[:, :8] == VOID).all() and (out[:, 8:] == 1).all()  # the shifted-in columns
    kept = [{**steps[0], "fill_mask": 0}]  # a step's own fill_mask stays
    _, out = task.transform_sample(task.create_transform(kept, train=True), image, mask)
    assert (out[:, :8] == 0).all()


@pytest.mark.slow
def test_class_files_and_joined_ids_train_as_the_long_format_does(tmp_path: Path) -> None:
    """The same masks in three layouts: the same folds, out-of-fold scores and submission."""
    from test_segment import make_two_class_project

    makers = {
        "long": lambda root: make_two_class_project(root, long=True, n_train=16, n_test=3),
        "files": lambda root: make_class_files_project(root, n_train=16, n_test=3),
        "joined": lambda root: make_joined_project(root, n_train=16, n_test=3),
    }
    oof, subs = {}, {}
    for name, make in makers.items():
        cfg = make(tmp_path / name)
        r = medalist("train", str(cfg), "train.epochs=1", "--name", "r", cwd=tmp_path / name)
        assert r.returncode == 0, (name, r.stderr[-2000:])
        r = medalist("predict", "runs/r", cwd=tmp_path / name)
        assert r.returncode == 0, (name, r.stderr[-2000:])
        run = tmp_path / name / "runs" / "r"
        table = pd.read_csv(run / "oof.csv")
        oof[name] = table.assign(id=table["id"].str.removesuffix(".png"))
        sub = pd.read_csv(run / "submission.csv", keep_default_na=False)
        if name == "joined":
            image, cls = sub[JOINED].str.rpartition("_")[0], sub[JOINED].str.rpartition("_")[2]
            sub = pd.DataFrame({"id": image.str.removesuffix(".png"), "class": cls})
            sub["rle"] = pd.read_csv(run / "submission.csv", keep_default_na=False)["EncodedPixels"]
        subs[name] = sub.sort_values(["id", "class"]).reset_index(drop=True)
    for name in ("files", "joined"):
        pd.testing.assert_frame_equal(oof[name], oof["long"], check_exact=True)
        pd.testing.assert_frame_equal(subs[name], subs["long"], check_exact=True)


def test_new_leaves_ids_with_an_underscore_whole_when_they_name_the_images(
    tmp_path: Path,
) -> None:
    from test_segment import make_seg_project

    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    make_seg_project(tmp_path / "comp", n_train=8, n_test=2)  # ids img_000 ... img_007
    data = tmp_path / "comp" / "data"
    train = pd.read_csv(data / "train.csv")
    # Ids of patients and slices (case1_1, case1_2, case2_1 ...): suffixes that repeat, but
    # each whole id is an image file.
    names = {i: f"case{k // 4}_{k % 4}" for k, i in enumerate(train["id"])}
    for old, new in names.items():
        (data / "train" / f"{old}.png").rename(data / "train" / f"{new}.png")
    train.assign(id=train["id"].map(names)).to_csv(data / "train.csv", index=False)
    report = create_project(tmp_path / "proj", data)
    comp = load_config(report.config_path).competition
    assert comp.id_class_separator is None and comp.class_column is None


def test_an_index_submission_fills_a_wide_sample_and_refuses_an_unknown_class(
    tmp_path: Path,
) -> None:
    from medalist.errors import UserError

    cfg = make_index_project(tmp_path / "proj", n_train=2, n_test=2)
    data = tmp_path / "proj" / "data"
    ids = pd.Series(["t_000", "t_001"])
    label = np.zeros((2, 40, 32), dtype=np.int64)
    label[0, 2:10, 3:7], label[1, 20:30, 10:30] = 2, 1
    probs = np.eye(3, dtype=np.float16)[label].transpose(0, 3, 1, 2)
    wide = _index_task(cfg, ["competition.class_column=null", "data.image_size=[40,32]"])
    sub = wide.format_submission(ids, probs, pd.DataFrame({"id": ids, "2": "", "1": ""}))
    assert list(sub.columns) == ["id", "2", "1"]  # background (0) not asked for, not written
    for k, i in enumerate(ids):
        for c in ("1", "2"):
            got = decode_by_hand(sub.loc[k, c], 40, 32)
            assert np.array_equal(got, (label[k] == int(c)).astype(np.uint8)), (i, c)
    long = _index_task(cfg, ["data.image_size=[40,32]"])
    sample = pd.read_csv(data / "sample_submission.csv", keep_default_na=False)
    sample.loc[1, "class"] = 5
    with pytest.raises(UserError, match="class '5' is none of them"):
        long.format_submission(ids, probs, sample)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            ["competition.mask_mode=sigmoid", "competition.ignore_index=null"]
            + ['competition.mask_pattern="{id}.png"'],
            'e.g. "{id}_{class}.png"',
        ),
        (["competition.mask_pattern={id}_{class}.png"], "index masks hold every class"),
        (
            ["competition.id_class_separator=_", "competition.class_column=null"],
            "set competition.class_column too",
        ),
        (["competition.mask_mode=sigmoid"], "is for competition.mask_mode: index"),
    ],
)
def test_layout_keys_that_cannot_work_together_are_config_errors(
    tmp_path: Path, overrides: list[str], says: str
) -> None:
    from medalist.config import load_config
    from medalist.errors import UserError

    cfg = make_index_project(tmp_path / "proj", n_train=2, n_test=1)
    with pytest.raises(UserError, match=re.escape(says)):
        load_config(cfg, overrides)


# ---- post-processing fitted on the OOF index masks -----------------------------------------
def _noisy_index_oof(n: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """32x32 index masks: an 8x8 square of class 1, a 6x6 one of class 2 and a void row; the
    prediction is the truth plus, on every image, a 2x2 blob of class 1 in the background (4
    pixels) and a 2x2 blob of class 2 on the void row (never scored)."""
    y = np.zeros((n, 32, 32), dtype=np.uint8)
    y[:, 4:12, 4:12] = 1
    y[:, 16:22, 16:22] = 2
    y[:, 30, :] = VOID
    label = np.where(y == VOID, 0, y)
    label[:, 24:26, 4:6] = 1  # a false class-1 blob of 4 pixels
    label[:, 30, 8:10] = 2  # class 2 on the void row
    label[:, 29, 8:10] = 2  # ... a component of 4 pixels, half of it scored
    probs = np.eye(3, dtype=np.float16)[label].transpose(0, 3, 1, 2)
    return y, probs, np.arange(n) % 4


def test_index_min_area_is_fitted_on_the_oof_masks_and_recovered_exactly(tmp_path: Path) -> None:
    task = _index_task(make_index_project(tmp_path / "proj", n_train=2, n_test=1))
    y, probs, folds = _noisy_index_oof()
    out = task.fit_postprocess(y, probs, folds)
    # 1024 pixels: the grid is 0, 1, 3, 5, 10, 20, 51, 102; 5 is the first that drops the
    # 4-pixel blobs (the 36- and 64-pixel squares stay up to 20).
    assert out["postprocess"]["1"]["min_area"] == 5
    assert out["postprocess"]["1"]["min_area_verdict"] == "better"
    assert out["postprocess"]["2"]["min_area"] == 5  # its blob's 2 scored pixels count
    assert (task.min_areas, task.min_total_areas) == ([0, 5, 5], [0, 0, 0])
    assert out["oof"] < 1.0 and out["oof_postprocessed"] == 1.0
    assert set(out["postprocess"]) == {"1", "2"}  # background is what they turn into
    # task.json keeps them, and the submission drops the blobs (the test image: 32x32 too).
    again = type(task).from_state(task.cfg, task.state())
    assert (again.min_areas, again.min_total_areas) == ([0, 5, 5], [0, 0, 0])
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(
        tmp_path / "proj" / "data" / "test" / "t_000.png"
    )
    sample = pd.DataFrame([{"id": "t_000", "class": c, "rle": ""} for c in (1, 2)])
    task.cfg.data.image_size = 32
    sub = again.format_submission(pd.Series(["t_000"]), probs[:1], sample)
    got = decode_by_hand(sub["rle"].iloc[0], 32, 32)
    assert np.array_equal(got, (y[0] == 1).astype(np.uint8))
    plain = _index_task(tmp_path / "proj" / "configs" / "baseline.yaml", ["data.image_size=32"])
    raw = plain.format_submission(pd.Series(["t_000"]), probs[:1], sample)
    assert decode_by_hand(raw["rle"].iloc[0], 32, 32).sum() == 64 + 4  # without: the blob


def test_index_postprocess_stays_off_when_nothing_is_to_gain_or_not_asked(tmp_path: Path) -> None:
    cfg = make_index_project(tmp_path / "proj", n_train=2, n_test=1)
    y, probs, folds = _noisy_index_oof()
    clean = np.eye(3, dtype=np.float16)[np.where(y == VOID, 0, y)].transpose(0, 3, 1, 2)
    out = _index_task(cfg).fit_postprocess(y, clean, folds)
    assert [out["postprocess"][c]["min_area"] for c in "12"] == [0, 0]
    off = _index_task(cfg, ["predict.postprocess=[]"])
    assert "postprocess" not in off.fit_postprocess(y, probs, folds)
    assert off.min_areas == [0, 0, 0]


# ---- a submission of PNG masks --------------------------------------------------------------
def png_sample(root: Path, kind: str) -> str:
    """Replace the project's sample by one that asks for PNG masks of the test images: a
    folder of blank masks, a zip of them, or a CSV naming a file per image; its config key."""
    import zipfile

    data = root / "data"
    ids = pd.read_csv(data / "test.csv")["id"].astype(str).tolist()[::-1]
    blank = np.zeros((40, 32), np.uint8)  # the test images are 40 high, 32 wide
    if kind == "folder":
        (data / "sample_submission").mkdir()
        for t in ids:
            Image.fromarray(blank).save(data / "sample_submission" / f"{t}.png")
        return "data/sample_submission"
    if kind == "zip":
        from medalist.data.mask_files import encode_png

        with zipfile.ZipFile(data / "sample_submission.zip", "w") as z:
            for t in ids:
                z.writestr(f"masks/{t}.png", encode_png(blank))
        return "data/sample_submission.zip"
    pd.DataFrame({"id": ids, "mask_file": [f"pred/{t}.png" for t in ids]}).to_csv(
        data / "sample_submission.csv", index=False
    )
    return "data/sample_submission.csv"


PNG_NAMES = {"folder": "{}.png", "zip": "masks/{}.png", "csv": "pred/{}.png"}


@pytest.mark.parametrize("kind", ["folder", "zip", "csv"])
def test_a_sample_of_png_masks_gets_a_zip_of_index_pngs_at_each_image_size(
    tmp_path: Path, kind: str
) -> None:
    from medalist.data.mask_files import read_mask_zip
    from medalist.data.tables import load_sample_submission
    from medalist.workflows.inference import write_submission

    cfg_path = make_index_project(tmp_path / "proj", n_train=2, n_test=3)
    key = png_sample(tmp_path / "proj", kind)
    over = [f"competition.sample_submission={key}", "competition.class_column=null"]
    task = _index_task(cfg_path, [*over, "data.image_size=[40,32]"])
    ids = pd.Series(["t_000", "t_001", "t_002"])
    truth = {t: np.asarray(Image.open(tmp_path / "proj" / "truth" / f"{t}.png")) for t in ids}
    label = {t: np.where(m == VOID, 0, m) for t, m in truth.items()}
    probs = np.stack([np.eye(3, dtype=np.float16)[label[t]].transpose(2, 0, 1) for t in ids])
    sample = load_sample_submission(task.cfg)
    sub = task.format_submission(ids, probs, sample)
    path = write_submission(tmp_path / "out" / "submission.csv", sub)
    assert path.name == "submission.zip" and not (tmp_path / "out" / "submission.csv").exists()
    table, masks = read_mask_zip(path)
    assert sorted(masks) == sorted(PNG_NAMES[kind].format(t) for t in ids)
    for t in ids:
        got = masks[PNG_NAMES[kind].format(t)]
        assert got.dtype == np.uint8 and np.array_equal(got, label[t].astype(np.uint8))
    if kind == "csv":  # the table that names the files comes with them, in the sample's order
        assert table is not None and table.equals(pd.read_csv(tmp_path / "proj" / key))
    else:
        assert table is None


def test_png_masks_hold_the_training_masks_values_and_can_be_asked_for_by_key(
    tmp_path: Path,
) -> None:
    from medalist.config import load_config
    from medalist.data.mask_files import read_mask_zip
    from medalist.tasks.segment import SegmentTask
    from medalist.workflows.inference import write_submission

    cfg_path = make_index_project(tmp_path / "proj", n_train=2, n_test=1)
    # masks of 0 (void), 10 and 20: channel j writes the value it was read from
    cfg = load_config(cfg_path, ["predict.mask_format=png", "data.image_size=[40,32]"])
    state = {"kind": "index", "classes": ["10", "20"], "values": [10, 20], "void": 0}
    task = SegmentTask.from_state(cfg, state)
    label = np.zeros((40, 32), np.int64)
    label[5:9, 3:20] = 1
    probs = np.eye(2, dtype=np.float16)[label].transpose(2, 0, 1)[None]
    sample = pd.DataFrame([{"id": "t_000", "class": c, "rle": ""} for c in (10, 20)])  # long
    sub = task.format_submission(pd.Series(["t_000"]), probs, sample)
    table, masks = read_mask_zip(write_submission(tmp_path / "submission.csv", sub))
    assert table is None and list(masks) == ["t_000.png"]  # one per image, not per row
    assert np.array_equal(masks["t_000.png"], np.where(label == 1, 20, 10))
    rle = SegmentTask.from_state(load_config(cfg_path, ["predict.mask_format=rle"]), state)
    assert list(rle.format_submission(pd.Series(["t_000"]), probs, sample).columns) == [
        "id", "class", "rle",
    ]  # fmt: skip


def test_a_sample_mask_of_another_size_than_its_test_image_is_refused(tmp_path: Path) -> None:
    from medalist.data.tables import load_sample_submission
    from medalist.errors import UserError

    cfg_path = make_index_project(tmp_path / "proj", n_train=2, n_test=2)
    key = png_sample(tmp_path / "proj", "folder")
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(tmp_path / "proj" / key / "t_001.png")
    task = _index_task(cfg_path, [f"competition.sample_submission={key}", "data.image_size=32"])
    probs = np.full((2, 3, 32, 32), 1 / 3, dtype=np.float16)
    with pytest.raises(UserError, match=r"t_001.png is 32x40 but test image .*t_001.png is 40x32"):
        task.format_submission(
            pd.Series(["t_000", "t_001"]), probs, load_sample_submission(task.cfg)
        )


SMALL = [
    "model.backbone=test_resnet", "data.image_size=32", "cv.n_splits=2", "train.epochs=1",
    "train.batch_size=8", "train.threads=1", "data.num_workers=0", "track.backends=[none]",
]  # fmt: skip


@pytest.mark.slow
def test_an_index_project_with_a_png_sample_trains_predicts_and_packages(tmp_path: Path) -> None:
    """A folder of PNG masks as the sample: predict writes submission.zip of index PNGs at each
    test image's size, and the offline notebook's zip equals it pixel for pixel."""
    from medalist.data.mask_files import read_mask_zip

    project = tmp_path / "proj"
    cfg = str(make_index_project(project, n_train=8, n_test=3))
    key = png_sample(project, "folder")
    over = [*SMALL, f"competition.sample_submission={key}", "competition.class_column=null"]
    r = medalist("train", cfg, *over, "--name", "png", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    run = project / "runs" / "png"
    scores = json.loads((run / "scores.json").read_text())
    assert set(scores["postprocess"]) == {"1", "2"}  # fitted on the OOF masks, per class
    r = medalist("predict", "runs/png", cwd=project)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "submission.zip (3 rows" in r.stdout.replace("\n", "")
    table, masks = read_mask_zip(run / "submission.zip")
    assert table is None and sorted(masks) == ["t_000.png", "t_001.png", "t_002.png"]
    assert all(m.shape == (40, 32) and set(np.unique(m)) <= {0, 1, 2} for m in masks.values())
    r = medalist(
        "package", "runs/png", "--check", "--competition", "png", "--user", "u", cwd=project
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "check passed" in r.stdout and "quick path: valid (3 masks)" in r.stdout
    manifest = json.loads(next(project.rglob("medalist-package.json")).read_text())
    assert manifest["submission_file"] == "submission.zip"

    # Wrong input: a sample mask of another size than its image; nothing is written.
    (run / "submission.zip").unlink()
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(project / key / "t_001.png")
    err = _exits_2(project, "predict", "runs/png")
    assert "t_001.png is 32x40 but test image" in err and "40x32 (height x width)" in err
    assert not (run / "submission.zip").exists()


@pytest.mark.parametrize(
    ("setup", "args", "says"),
    [
        ("sigmoid", ["predict.mask_format=png"], "they need competition.mask_mode: index"),
        ("sigmoid_png_sample", [], "sample_submission: PNG mask files"),
        ("wrong_size_mask", [], "mask t_000.png is 32x40 but test image"),
        ("bad_zip", [], "is not a readable zip"),
        ("empty_folder", [], "holds no .png masks"),
    ],
)
def test_a_png_submission_that_cannot_be_written_exits_2_before_training(
    tmp_path: Path, setup: str, args: list[str], says: str
) -> None:
    project = tmp_path / "proj"
    cfg = str(make_index_project(project, n_train=4, n_test=1))
    extra = ["competition.class_column=null"]
    sigmoid = ["competition.mask_mode=sigmoid", "competition.ignore_index=null"]
    if setup == "sigmoid":  # the long sample as it is
        extra = sigmoid
    elif setup == "sigmoid_png_sample":  # auto reads a folder of PNGs as a PNG submission
        extra = [*sigmoid, f"competition.sample_submission={png_sample(project, 'folder')}"]
    elif setup == "wrong_size_mask":
        extra.append(f"competition.sample_submission={png_sample(project, 'folder')}")
        mask = np.zeros((32, 40), np.uint8)  # the test image is 40 high, 32 wide
        Image.fromarray(mask).save(project / "data" / "sample_submission" / "t_000.png")
    elif setup == "bad_zip":
        (project / "data" / "sample_submission.zip").write_text("not a zip")
        extra.append("competition.sample_submission=data/sample_submission.zip")
    else:
        (project / "data" / "sample_submission").mkdir()
        extra.append("competition.sample_submission=data/sample_submission")
    err = _exits_2(project, "train", cfg, *SMALL, *extra, *args)
    assert says in err
    assert not (project / "runs").exists()


def test_package_check_compares_mask_zips_pixel_for_pixel(tmp_path: Path) -> None:
    from medalist.data.mask_files import mask_files
    from medalist.kaggle.check import CheckFailed, compare_mask_zips

    masks = {"a.png": np.zeros((4, 5), np.uint8), "b.png": np.full((4, 5), 2, np.uint8)}
    want = mask_files(pd.DataFrame({"id": ["a", "b"]}), masks, False).write(tmp_path / "w.csv")
    same = mask_files(pd.DataFrame({"id": ["a", "b"]}), dict(masks), False)
    assert compare_mask_zips(same.write(tmp_path / "s.csv"), want)["file"].tolist() == [
        "a.png", "b.png",
    ]  # fmt: skip
    one = {**masks, "b.png": masks["b.png"].copy()}
    one["b.png"][3, 4] = 1
    got = mask_files(pd.DataFrame({"id": ["a", "b"]}), one, False).write(tmp_path / "g.csv")
    with pytest.raises(CheckFailed, match="mask b.png: 1 of 20 pixels differ"):
        compare_mask_zips(got, want)
    fewer = mask_files(pd.DataFrame({"id": ["a"]}), {"a.png": masks["a.png"]}, False)
    with pytest.raises(CheckFailed, match="first not in both: b.png"):
        compare_mask_zips(fewer.write(tmp_path / "f.csv"), want)


# ---- medalist labels on index masks ---------------------------------------------------------
def test_labels_ranks_the_index_masks_the_softmax_contradicts_and_leaves_void_out(
    tmp_path: Path,
) -> None:
    """The model is sure of the true classes and says class 2 on every void pixel; two masks
    are made wrong: one's class-1 rectangle erased, one's relabelled class 2. Only those two
    images are suspects (void counted, the clean images with a void band would be too)."""
    project = tmp_path / "proj"
    cfg_path = make_index_project(project, n_train=12, n_test=1)
    task = _index_task(cfg_path)
    masks = {p.stem: np.asarray(Image.open(p)) for p in sorted((project / "data/masks").iterdir())}
    ids = sorted(masks)
    has_1 = [i for i in ids if (masks[i] == 1).any()]
    voids = [i for i in ids if (masks[i] == VOID).any()]
    assert len(has_1) >= 3 and voids  # the fixture's draw: cases of both kinds
    true = np.stack([masks[i] for i in ids])
    label = np.where(true == VOID, 2, true)
    probs = (np.eye(3)[label] * 0.94 + 0.02).transpose(0, 3, 1, 2).astype(np.float16)
    erased, relabelled = has_1[0], has_1[1]
    for i, new in ((erased, 0), (relabelled, 2)):
        m = masks[i].copy()
        m[m == 1] = new
        Image.fromarray(m).save(project / "data" / "masks" / f"{i}.png")
    run = project / "runs" / "idx"
    for k in range(2):
        rows = np.arange(len(ids))[np.arange(len(ids)) % 2 == k]
        (run / f"fold_{k}").mkdir(parents=True)
        pd.DataFrame({"id": [ids[r] for r in rows], "fold": k}).to_csv(
            run / f"fold_{k}" / "oof.csv", index=False
        )
        np.save(run / f"fold_{k}" / "oof_masks.npy", probs[rows])
    text = cfg_path.read_text().replace("image_size: 32", "image_size: [32, 40]")  # as is
    (run / "config.yaml").write_text(text)
    (run / "task.json").write_text(json.dumps(task.state()))
    r = medalist("labels", "runs/idx", cwd=project)
    assert r.returncode == 0, r.stderr[-2000:]
    found = pd.read_csv(run / "analysis" / "label_issues.csv")
    assert set(found["id"]) == {erased, relabelled}
    pairs = set(zip(found["id"], found["class"].astype(str), strict=True))
    assert {(erased, "1"), (relabelled, "1")} <= pairs
    worst = found.set_index(["id", found["class"].astype(str)])["disagreement"]
    assert worst[(erased, "1")] == 1.0 and worst[(relabelled, "1")] == 1.0
    page = (run / "analysis" / "label_issues.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(found)


@pytest.mark.parametrize("kind", ["folder", "zip", "csv"])
def test_new_takes_a_sample_folder_or_zip_of_png_masks(tmp_path: Path, kind: str) -> None:
    from medalist.config import load_config
    from medalist.data.tables import load_sample_submission
    from medalist.workflows.scaffold import create_project

    make_index_project(tmp_path / "comp", n_train=6, n_test=2)
    (tmp_path / "comp" / "data" / "sample_submission.csv").unlink()
    key = png_sample(tmp_path / "comp", kind)
    report = create_project(tmp_path / "proj", tmp_path / "comp" / "data")
    cfg = load_config(report.config_path)
    assert cfg.competition.sample_submission.endswith(key.removeprefix("data/"))
    assert cfg.competition.mask_mode == "index"
    sample = load_sample_submission(cfg)
    assert sorted(sample["id"]) == ["t_000", "t_001"]
    # a sample that names files lists no classes: 1 and 2 stay classes, 255 is void
    assert (cfg.competition.classes, cfg.competition.ignore_index) == ([0, 1, 2], 255)
