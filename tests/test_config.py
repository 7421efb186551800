"""The config contract: typed keys, nearest-key suggestions, extends, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalist.config import dump_config, load_config
from medalist.errors import UserError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_match_the_documented_contract(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "configs" / "c.yaml", "{}\n"))
    assert cfg.competition.task == "classify"
    assert cfg.cv.scheme == "stratified" and cfg.cv.n_splits == 5
    assert cfg.model.backbone == "resnet18" and cfg.model.pretrained is False
    assert cfg.track.backends == ["mlflow"]
    assert cfg.root == tmp_path.resolve()


def test_misspelt_key_names_the_nearest_valid_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "train:\n  lrr: 0.1\n")
    with pytest.raises(UserError) as err:
        load_config(path)
    assert "train.lrr" in str(err.value) and "did you mean train.lr?" in str(err.value)
    assert str(path) in str(err.value)


def test_misspelt_section_names_the_nearest_section(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="did you mean model"):
        load_config(write(tmp_path / "c.yaml", "modle:\n  backbone: x\n"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  lr: -0.1\n", "train.lr"),
        ("train:\n  epochs: many\n", "train.epochs"),
        ("cv:\n  n_splits: 1\n", "cv.n_splits"),
        ("cv:\n  scheme: random\n", "cv.scheme"),
        ("data:\n  augment:\n    - {p: 0.5}\n", "data.augment"),
        ("train:\n  ema: true\n  swa: true\n", "train.swa"),
        ("train:\n  swa_start: 1.0\n", "train.swa_start"),
    ],
)
def test_wrong_type_or_range_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(UserError) as err:
        load_config(write(tmp_path / "c.yaml", text))
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "train:\n  lr: 0.1\n")
    cfg = load_config(path, ["train.lr=3e-4", "model.backbone=resnet34", "data.cache=false"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.model.backbone == "resnet34"
    assert cfg.data.cache is False
    with pytest.raises(UserError, match="did you mean train.epochs"):
        load_config(path, ["train.epoch=3"])
    with pytest.raises(UserError, match="section.key=value"):
        load_config(path, ["lr"])


def test_extends_inherits_and_overrides_section_by_section(tmp_path: Path) -> None:
    write(tmp_path / "configs" / "base.yaml", "train:\n  lr: 0.1\n  epochs: 3\n")
    child = write(tmp_path / "configs" / "child.yaml", "extends: base.yaml\ntrain:\n  epochs: 7\n")
    cfg = load_config(child)
    assert (cfg.train.lr, cfg.train.epochs) == (0.1, 7)


def test_extends_loop_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(UserError, match="loop"):
        load_config(tmp_path / "a.yaml")


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.yaml", "train:\n  lr: 0.02\n"), ["cv.n_splits=3"])
    again = write(tmp_path / "again.yaml", dump_config(cfg))
    assert load_config(again).model_dump() == cfg.model_dump()


def test_missing_config_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")
