"""`medalist new` on video frames: the sequence and frame columns, and folds by video."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from medalist.config import load_config
from medalist.workflows.scaffold import create_project


def _video_competition(tmp_path: Path, frame_values: list) -> Path:
    data = tmp_path / "comp"
    (data / "train").mkdir(parents=True)
    (data / "test").mkdir(parents=True)
    ids = [f"f{i}" for i in range(6)]
    pd.DataFrame(
        {"id": ids, "video_id": ["a", "a", "a", "b", "b", "b"], "frame": frame_values,
         "label": ["cat", "dog"] * 3}
    ).to_csv(data / "train.csv", index=False)  # fmt: skip
    pd.DataFrame({"id": ["t0"], "label": ["cat"]}).to_csv(
        data / "sample_submission.csv", index=False
    )
    for name in [*ids, "t0"]:
        folder = data / ("test" if name == "t0" else "train")
        Image.new("RGB", (8, 8), (len(name) * 30, 0, 0)).save(folder / f"{name}.png")
    return data


def test_new_keeps_each_video_in_one_fold_and_names_the_frame_columns(tmp_path: Path) -> None:
    data = _video_competition(tmp_path, [0, 1, 2, 0, 1, 2])
    report = create_project(tmp_path / "proj", data)
    cfg = load_config(report.config_path)
    assert cfg.competition.sequence_column == "video_id"
    assert cfg.competition.frame_column == "frame"
    assert cfg.competition.group_column == "video_id"
    assert cfg.cv.scheme in ("group", "stratified_group")
    text = report.config_path.read_text()
    scheme = next(line for line in text.splitlines() if line.strip().startswith("scheme:"))
    assert "frames are near copies" in scheme, scheme


def test_new_leaves_a_frame_column_that_is_not_numbers_alone(tmp_path: Path) -> None:
    data = _video_competition(tmp_path, ["x", "y", "z", "x", "y", "z"])
    cfg = load_config(create_project(tmp_path / "proj", data).config_path)
    assert cfg.competition.sequence_column is None and cfg.competition.frame_column is None
