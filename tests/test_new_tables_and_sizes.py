"""`medalist new` on competitions laid out otherwise than train.csv + square images: training
tables under other names (train_labels.csv, trainLabels.csv, labels.csv, or any name given
with --train-csv), sampleSubmission.csv, and rectangular images whose aspect the input keeps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import medalist, train_then_predict
from PIL import Image

from medalist.config import load_config
from medalist.errors import UserError
from medalist.workflows.scaffold import create_project
from medalist.workflows.scaffold.images import baseline_size


def _competition(
    root: Path,
    *,
    train_name: str = "train.csv",
    sub_name: str = "sample_submission.csv",
    size: tuple[int, int] = (8, 8),
    sizes: list[tuple[int, int]] | None = None,
) -> Path:
    """Six training images (three classes) and two test images, each of `size` (w, h) or of
    `sizes` in turn."""
    root.mkdir(parents=True)
    (root / "train").mkdir()
    (root / "test").mkdir()
    ids = [f"a{i}" for i in range(6)]
    for i, name in enumerate(ids):
        w, h = sizes[i % len(sizes)] if sizes else size
        Image.new("RGB", (w, h), (i * 30, 10, 0)).save(root / "train" / f"{name}.png")
    for name in ("t0", "t1"):
        Image.new("RGB", size, (5, 5, 5)).save(root / "test" / f"{name}.png")
    pd.DataFrame({"id": ids, "label": ["cat", "dog", "bird"] * 2}).to_csv(
        root / train_name, index=False
    )
    pd.DataFrame({"id": ["t0", "t1"], "label": ["cat", "cat"]}).to_csv(root / sub_name, index=False)
    return root


@pytest.mark.parametrize("name", ["train_labels.csv", "trainLabels.csv", "labels.csv"])
def test_a_training_table_under_another_usual_name_is_found_and_written_into_the_config(
    tmp_path: Path, name: str
) -> None:
    data = _competition(tmp_path / "comp", train_name=name)
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.train_csv"] == f"data/{name}"
    assert report.reasons["competition.train_csv"] == "taken as the training table"
    cfg = load_config(report.config_path)
    assert cfg.path(cfg.competition.train_csv).resolve() == (data / name).resolve()
    assert (cfg.competition.id_column, cfg.competition.target_column) == ("id", "label")
    assert report.unresolved == []


def test_train_csv_wins_over_other_tables_named_like_a_training_table(tmp_path: Path) -> None:
    data = _competition(tmp_path / "comp")
    pd.DataFrame({"attribute_id": [0, 1], "name": ["x", "y"]}).to_csv(
        data / "labels.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.train_csv"] == "data/train.csv"
    assert report.reasons["competition.train_csv"] == "found"


def test_sample_submission_in_camel_case_is_the_sample_and_gives_the_id_column(
    tmp_path: Path,
) -> None:
    data = _competition(tmp_path / "comp", sub_name="sampleSubmission.csv")
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.sample_submission"] == "data/sampleSubmission.csv"
    assert report.reasons["competition.id_column"] == "first column of sampleSubmission.csv"
    assert report.inferred["competition.test_image_dir"] == "data/test"


def test_train_csv_option_names_a_table_of_any_name_and_the_project_trains_on_it(
    tmp_path: Path,
) -> None:
    data = _competition(tmp_path / "comp", train_name="gt_2024.csv")
    proc = medalist(
        "new", str(tmp_path / "proj"), "--data", str(data), "--train-csv", "gt_2024.csv"
    )
    assert proc.returncode == 0, proc.stderr
    cfg = load_config(tmp_path / "proj" / "configs" / "baseline.yaml")
    assert cfg.path(cfg.competition.train_csv).resolve() == (data / "gt_2024.csv").resolve()
    folds = medalist("folds", str(tmp_path / "proj" / "configs" / "baseline.yaml"), "cv.n_splits=2")
    assert folds.returncode == 0, folds.stderr


def test_a_folder_whose_only_table_has_another_name_says_to_name_it_with_train_csv(
    tmp_path: Path,
) -> None:
    data = _competition(tmp_path / "comp", train_name="gt_2024.csv")
    proc = medalist("new", str(tmp_path / "proj"), "--data", str(data))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "no train.csv" in message and "gt_2024.csv" in message and "--train-csv" in message
    assert not (tmp_path / "proj").exists()


def test_a_train_csv_option_naming_no_file_is_exit_2_in_one_line_and_writes_nothing(
    tmp_path: Path,
) -> None:
    data = _competition(tmp_path / "comp")
    before = sorted(p.name for p in data.iterdir())
    proc = medalist("new", str(tmp_path / "proj"), "--data", str(data), "--train-csv", "nope.csv")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "--train-csv nope.csv" in message and "no such file" in message
    assert not (tmp_path / "proj").exists()
    assert sorted(p.name for p in data.iterdir()) == before


def test_several_tables_named_like_a_training_table_ask_which_one(tmp_path: Path) -> None:
    data = _competition(tmp_path / "comp", train_name="train_stage1.csv")
    pd.DataFrame({"id": ["a0"], "label": ["cat"]}).to_csv(data / "train_stage2.csv", index=False)
    with pytest.raises(UserError, match="--train-csv") as err:
        create_project(tmp_path / "proj", data)
    assert "train_stage1.csv, train_stage2.csv" in str(err.value)
    assert not (tmp_path / "proj").exists()
    report = create_project(tmp_path / "proj", data, train_csv="train_stage2.csv")
    assert report.inferred["competition.train_csv"] == "data/train_stage2.csv"


def test_one_table_starting_with_train_is_the_training_table(tmp_path: Path) -> None:
    data = _competition(tmp_path / "comp", train_name="train_v2.csv")
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.train_csv"] == "data/train_v2.csv"


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([(160, 90)], [64, 128]),  # 16:9, landscape
        ([(640, 480)], [224, 288]),  # 4:3: the shorter side capped at 224
        ([(1920, 1080), (1280, 720)], [224, 384]),  # 16:9 at two resolutions
        ([(480, 640)], [288, 224]),  # portrait: the height is the longer side
        ([(3000, 1000)], [224, 448]),  # 3:1: the longer side capped at twice 224
        ([(100, 100)], 96),  # square
        ([(110, 100)], 96),  # within 1.2 of square
        ([(160, 90), (90, 160)], 64),  # landscape and portrait mixed: a square
        ([(160, 90), (120, 90)], 64),  # aspects 1.78 and 1.33: no one aspect
        ([(40, 20)], 20),  # too small for multiples of 32: a square at the shorter side
        ([(64, 48)], 32),  # 4:3 at 32 px high: 32x32 or 32x64 are no 4:3, so a square
    ],
)
def test_the_baseline_size_keeps_an_aspect_the_images_share(sizes, expected) -> None:
    size, why = baseline_size(sizes)
    assert size == expected
    assert why.startswith(f"images are {sizes[0][0]}x{sizes[0][1]}")
    assert ("aspect" in why) == isinstance(expected, list)


def test_new_writes_height_by_width_for_wide_images_and_the_config_loads_it(
    tmp_path: Path,
) -> None:
    data = _competition(tmp_path / "comp", size=(160, 90))
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    assert cfg.data.image_size == [64, 128]
    assert cfg.data.height_width == (64, 128)
    assert "aspect 1.78:1 kept" in report.reasons["data.image_size"]


def test_a_segmentation_competition_of_wide_images_keeps_multiples_of_32(tmp_path: Path) -> None:
    data = tmp_path / "comp"
    (data / "train").mkdir(parents=True)
    ids = [f"m{i}" for i in range(4)]
    for name in ids:
        Image.new("RGB", (192, 108), (40, 40, 40)).save(data / "train" / f"{name}.png")
    pd.DataFrame({"id": ids, "encoded_pixels": ["1 3", "", "5 2", "9 9"]}).to_csv(
        data / "train.csv", index=False
    )
    report = create_project(tmp_path / "proj", data)
    assert report.inferred["competition.task"] == "segment"
    cfg = load_config(report.config_path)
    assert cfg.data.image_size == [96, 160]
    assert all(side % 32 == 0 for side in cfg.data.image_size)


def _class_folders(root: Path, *, sample: bool = True) -> Path:
    """Plant Seedlings' layout: train/<class>/*.png, test/*.png and a sample file,species."""
    for k, cls in enumerate(["Black-grass", "Charlock", "Cleavers"]):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(4):
            colour = [0, 0, 0]
            colour[k] = 200 + i
            Image.new("RGB", (8, 8), tuple(colour)).save(root / "train" / cls / f"{k}{i}.png")
    (root / "test").mkdir()
    for name in ("t0.png", "t1.png"):
        Image.new("RGB", (8, 8), (9, 9, 9)).save(root / "test" / name)
    if sample:
        pd.DataFrame({"file": ["t0.png", "t1.png"], "species": "Charlock"}).to_csv(
            root / "sample_submission.csv", index=False
        )
    return root


def test_class_folders_without_a_table_become_a_table_named_like_the_sample(
    tmp_path: Path,
) -> None:
    data = _class_folders(tmp_path / "comp")
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    report = create_project(tmp_path / "proj", data)
    table = pd.read_csv(tmp_path / "proj" / "configs" / "train_folders.csv")
    assert list(table.columns) == ["file", "species"]
    assert len(table) == 12
    assert table["file"].iloc[0] == "Black-grass/00.png"
    assert sorted(table["species"].unique()) == ["Black-grass", "Charlock", "Cleavers"]
    assert all(row.file.split("/")[0] == row.species for row in table.itertuples())
    assert report.inferred["competition.train_csv"] == "configs/train_folders.csv"
    assert report.unresolved == []
    cfg = load_config(report.config_path)
    assert (cfg.competition.id_column, cfg.competition.target_column) == ("file", "species")
    assert cfg.competition.image_column == "file"
    assert cfg.path(cfg.competition.image_dir).resolve() == (data / "train").resolve()
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before  # data untouched


def test_class_folders_train_and_predict_a_submission_of_class_names(tmp_path: Path) -> None:
    data = _class_folders(tmp_path / "comp")
    assert create_project(tmp_path / "proj", data).unresolved == []
    sub = train_then_predict(tmp_path / "proj", "folders", "data.image_size=16")
    assert sub["file"].tolist() == ["t0.png", "t1.png"]
    assert set(sub["species"]) <= {"Black-grass", "Charlock", "Cleavers"}


def test_class_folders_without_a_sample_get_image_and_label_columns(tmp_path: Path) -> None:
    data = _class_folders(tmp_path / "comp", sample=False)
    create_project(tmp_path / "proj", data)
    table = pd.read_csv(tmp_path / "proj" / "configs" / "train_folders.csv")
    assert list(table.columns) == ["image", "label"]


def test_one_class_folder_is_no_class_layout_and_the_error_stays(tmp_path: Path) -> None:
    data = tmp_path / "comp"
    (data / "train" / "only").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data / "train" / "only" / "a.png")
    with pytest.raises(UserError, match="no train.csv"):
        create_project(tmp_path / "proj", data)
    assert not (tmp_path / "proj").exists()


def test_no_sample_submission_is_left_to_check_rather_than_reported_as_inferred(
    tmp_path: Path,
) -> None:
    data = _class_folders(tmp_path / "comp", sample=False)
    report = create_project(tmp_path / "proj", data)
    assert report.reasons["competition.test_csv"] == "no test.csv"
    (line,) = [u for u in report.unresolved if u.startswith("competition.sample_submission")]
    assert "no sample_submission.csv" in line and "medalist predict" in line
    text = (tmp_path / "proj" / "configs" / "baseline.yaml").read_text()
    assert any(
        row.strip().startswith("sample_submission:") and "TODO" in row for row in text.splitlines()
    )
