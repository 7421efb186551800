"""Images kept in one HDF5 file (ISIC 2024's `train-image.hdf5` and `test-image.hdf5`, a
dataset per `isic_id` holding the JPEG's bytes): `competition.image_dir` names the file, the
images are written out once and read as files; `medalist new` finds such files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import (
    QUICK_RUN,
    assert_one_line_error,
    assert_package_check_passes,
    draw,
    medalist,
    train_then_predict,
)
from PIL import Image

from medalist.config import load_config
from medalist.data.tables import load_tables
from medalist.workflows.scaffold import create_project


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def isic_like(root: Path, n_train: int = 36, n_test: int = 6) -> Path:
    """ISIC 2024's layout: metadata tables, a sample, and the images in two HDF5 files of
    JPEG bytes; a dot on the skin is the positive class (about one in three)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    rows = []
    with h5py.File(root / "train-image.hdf5", "w") as f:
        for i in range(n_train):
            target = int(i % 3 == 2)
            isic_id = f"ISIC_{1000000 + i}"
            f[isic_id] = np.void(_jpeg(draw("dot" if target else "bar_h", rng, 28)))
            rows.append({"isic_id": isic_id, "patient_id": f"IP_{i // 4}", "target": target})
    pd.DataFrame(rows).to_csv(root / "train-metadata.csv", index=False)
    test_ids = [f"ISIC_{2000000 + j}" for j in range(n_test)]
    with h5py.File(root / "test-image.hdf5", "w") as f:
        for j, isic_id in enumerate(test_ids):
            f[isic_id] = np.void(_jpeg(draw("dot" if j % 2 else "bar_v", rng, 28)))
    pd.DataFrame({"isic_id": test_ids, "patient_id": "IP_9"}).to_csv(
        root / "test-metadata.csv", index=False
    )
    pd.DataFrame({"isic_id": test_ids, "target": 0.3}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def _isic_project(tmp_path: Path) -> Path:
    data = isic_like(tmp_path / "comp")
    report = create_project(tmp_path / "proj", data)
    return report.config_path


def test_new_finds_the_hdf5_files_of_train_and_test_images_and_their_size(tmp_path: Path):
    cfg = load_config(_isic_project(tmp_path))
    comp = cfg.competition
    assert (comp.train_csv, comp.test_csv) == ("data/train-metadata.csv", "data/test-metadata.csv")
    assert (comp.image_dir, comp.test_image_dir) == (
        "data/train-image.hdf5",
        "data/test-image.hdf5",
    )
    assert (comp.id_column, comp.target_column, comp.group_column) == (
        "isic_id",
        "target",
        "patient_id",
    )
    assert cfg.data.image_size == 28


def test_the_images_are_the_files_bytes_written_once(tmp_path: Path) -> None:
    cfg = load_config(_isic_project(tmp_path))
    tables = load_tables(cfg, need_test=True)
    with h5py.File(tmp_path / "comp" / "train-image.hdf5", "r") as f:
        for isic_id, path in zip(tables.train["isic_id"], tables.train_paths, strict=True):
            assert path.suffix == ".jpg" and path.read_bytes() == f[isic_id][()].tobytes()
    assert [p.stem for p in tables.test_paths] == tables.test["isic_id"].tolist()
    stamps = [p.stat().st_mtime_ns for p in tables.train_paths]
    again = load_tables(cfg, need_test=True)  # reads the files written the first time
    assert again.train_paths == tables.train_paths
    assert [p.stat().st_mtime_ns for p in again.train_paths] == stamps


def test_pixel_arrays_in_an_hdf5_file_are_written_as_png_of_the_same_pixels(tmp_path: Path):
    cfg_path = _isic_project(tmp_path)
    grey = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    colour = np.random.default_rng(1).integers(0, 255, (16, 12, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "comp" / "train-image.hdf5", "a") as f:
        del f["ISIC_1000000"], f["ISIC_1000001"]
        f["ISIC_1000000"] = grey
        f["ISIC_1000001"] = colour
    tables = load_tables(load_config(cfg_path))
    first, second = tables.train_paths[:2]
    assert (first.suffix, second.suffix) == (".png", ".png")
    assert np.array_equal(np.asarray(Image.open(first)), grey)
    assert np.array_equal(np.asarray(Image.open(second)), colour)


@pytest.mark.slow
def test_a_project_on_hdf5_images_trains_predicts_and_ships_offline(tmp_path: Path) -> None:
    _isic_project(tmp_path)
    sub = train_then_predict(tmp_path / "proj", "h", "competition.metric=roc_auc")
    sample = pd.read_csv(tmp_path / "comp" / "sample_submission.csv")
    assert sub["isic_id"].tolist() == sample["isic_id"].tolist()
    assert sub["target"].between(0, 1).all() and sub["target"].nunique() > 1
    assert_package_check_passes(tmp_path / "proj", "h", 6)


def _break(tmp_path: Path, how: str) -> tuple[Path, tuple[str, ...]]:
    cfg = _isic_project(tmp_path)
    h5 = tmp_path / "comp" / "train-image.hdf5"
    if how == "missing id":
        with h5py.File(h5, "a") as f:
            del f["ISIC_1000007"]
        return cfg, ("train-image.hdf5 has no image 'ISIC_1000007'", "1 of the table's ids")
    if how == "not an image":
        with h5py.File(h5, "a") as f:
            del f["ISIC_1000003"]
            f["ISIC_1000003"] = np.void(b"not a picture at all")
        return cfg, ("'ISIC_1000003' holds 20 bytes", "no image format")
    if how == "not hdf5":
        h5.write_bytes(b"plain text")
        return cfg, ("is not a readable HDF5 file",)
    h5.unlink()
    return cfg, ("train-image.hdf5 is missing", "competition.image_dir")


@pytest.mark.parametrize("how", ["missing id", "not an image", "not hdf5", "no file"])
def test_an_hdf5_file_that_lacks_an_image_is_a_one_line_error(tmp_path: Path, how: str) -> None:
    cfg, words = _break(tmp_path, how)
    done = medalist("train", str(cfg), *QUICK_RUN, "--name", "x")
    assert_one_line_error(done, *words)
    assert not (tmp_path / "proj" / "runs" / "x" / "oof.csv").exists()


def test_without_h5py_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    import sys

    from medalist.data.hdf5_images import open_hdf5
    from medalist.errors import UserError

    monkeypatch.setitem(sys.modules, "h5py", None)  # as if it were not installed
    with pytest.raises(UserError, match=r"needs h5py: pip install h5py"):
        open_hdf5(tmp_path / "train-image.hdf5")


def test_new_takes_a_folder_of_training_images_and_the_hdf5_file_of_the_test_images(
    tmp_path: Path,
) -> None:
    # ISIC 2024 also ships the training images as files (train-image/image/ISIC_*.jpg); the
    # test images exist only in test-image.hdf5.
    data = isic_like(tmp_path / "comp")
    folder = data / "train-image" / "image"
    folder.mkdir(parents=True)
    with h5py.File(data / "train-image.hdf5", "r") as f:
        for name in f:
            (folder / f"{name}.jpg").write_bytes(f[name][()].tobytes())
    (data / "train-image.hdf5").unlink()
    report = create_project(tmp_path / "proj", data)
    comp = load_config(report.config_path).competition
    assert (comp.image_dir, comp.image_ext, comp.test_image_dir) == (
        "data/train-image/image",
        ".jpg",
        "data/test-image.hdf5",
    )
    assert not any("image_dir" in s for s in report.unresolved)


def test_partial_auc_above_a_tpr_is_the_roc_area_above_that_rate() -> None:
    from sklearn.metrics import roc_curve

    from medalist.tasks.metrics import get_metric

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.35 * y + rng.normal(0.4, 0.2, 400), 0, 1)
    pauc = get_metric("pauc@0.8")
    assert pauc.higher_is_better
    # the area between the ROC curve and the line TPR = 0.8, integrated on a fine grid
    fpr, tpr, _ = roc_curve(y, p)
    grid = np.linspace(0, 1, 200_001)
    want = np.trapezoid(np.clip(np.interp(grid, fpr, tpr) - 0.8, 0, None), grid)
    assert pauc(y, np.stack([1 - p, p], axis=1)) == pytest.approx(want, abs=1e-4)
    assert pauc(y, y.astype(float)) == pytest.approx(0.2)  # perfect: the whole band
    assert pauc(y, 1.0 - y) == pytest.approx(0.0)


def test_a_partial_auc_project_submits_probabilities_and_refuses_several_classes(
    tmp_path: Path,
) -> None:
    _isic_project(tmp_path)
    sub = train_then_predict(tmp_path / "proj", "p", "competition.metric=pauc@0.8")
    assert sub["target"].between(0, 1).all() and (sub["target"] % 1 != 0).all()  # not labels
    cfg = tmp_path / "proj" / "configs" / "baseline.yaml"
    scores = json.loads((tmp_path / "proj" / "runs" / "p" / "scores.json").read_text())
    assert scores["metric"] == "pauc@0.8" and 0 <= scores["mean"] <= 0.2
    done = medalist("train", str(cfg), *QUICK_RUN, "competition.metric=pauc@1.5")
    assert_one_line_error(done, "pauc@1.5", "between 0 and 1")
    train_csv = tmp_path / "comp" / "train-metadata.csv"
    table = pd.read_csv(train_csv)
    table.assign(target=np.arange(len(table)) % 3).to_csv(train_csv, index=False)
    done = medalist("train", str(cfg), *QUICK_RUN, "competition.metric=pauc@0.8")
    assert_one_line_error(done, "pauc@0.8", "binary target", "3 classes")
