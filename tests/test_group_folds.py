"""Group folds that hold: duplicate groups from `medalist leak` keep each group in one fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medalist.config import load_config
from medalist.data.folds import make_folds
from medalist.data.tables import load_train
from medalist.workflows.leak import find_leaks
from medalist.workflows.train import get_folds

GROUP_OVERRIDES = [
    "competition.group_column=dup_group",
    "competition.groups_csv=leak/dup_groups.csv",
]


def plant_duplicates(config: Path) -> list[list[str]]:
    """Copy images within train so that three duplicate groups exist; returns them."""
    train = config.parent.parent / "data/train"
    groups = [
        ["img_0000", "img_0003", "img_0006"],
        ["img_0001", "img_0004"],
        ["img_0002", "img_0011"],
    ]
    for g in groups:
        for other in g[1:]:
            Image.open(train / f"{g[0]}.png").save(train / f"{other}.png")
    return groups


@pytest.mark.parametrize("scheme", ["group", "stratified_group"])
def test_folds_from_dup_groups_never_split_a_duplicate_group(tiny_project: Path, scheme: str):
    groups = plant_duplicates(tiny_project)
    before = find_leaks(load_config(tiny_project))
    assert before.counts["cross_fold"] > 0  # stratified folds split the planted copies
    cfg = load_config(tiny_project, [f"cv.scheme={scheme}", *GROUP_OVERRIDES])
    train = load_train(cfg)
    folds = dict(zip(train["id"], get_folds(cfg, train), strict=True))
    for g in groups:
        assert len({folds[i] for i in g}) == 1, g
    after = find_leaks(cfg)
    assert after.counts["cross_fold"] == 0
    assert after.counts["train_train"] == before.counts["train_train"]


def test_merged_group_column_keeps_both_duplicates_and_the_original_groups_together(
    tiny_project: Path,
):
    groups = plant_duplicates(tiny_project)
    root = tiny_project.parent.parent
    train = pd.read_csv(root / "data/train.csv")
    train["site"] = [f"s{i // 4}" for i in range(len(train))]
    train.to_csv(root / "data/train.csv", index=False)
    find_leaks(load_config(tiny_project), merge_group="site")
    cfg = load_config(tiny_project, ["cv.scheme=group", *GROUP_OVERRIDES])
    table = load_train(cfg)
    folds = pd.Series(get_folds(cfg, table), index=table["id"])
    assert (folds.groupby(table["site"].to_numpy()).nunique() == 1).all()
    for g in groups:
        assert folds[g].nunique() == 1


@pytest.mark.parametrize("scheme", ["group", "stratified_group"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chained_duplicate_groups_stay_whole_for_every_group_scheme(scheme: str, seed: int):
    # Duplicate pairs form chains (a~b, b~c): their connected components are what must stay whole.
    from medalist.data.leak import connected_groups

    rng = np.random.default_rng(seed)
    n = 240
    pairs = rng.integers(0, n, (80, 2))
    df = pd.DataFrame({"label": rng.choice(["a", "b", "c"], n), "dup": connected_groups(n, pairs)})
    folds = make_folds(
        df, scheme=scheme, n_splits=5, seed=seed, target_columns=["label"], group_column="dup"
    )
    assert (folds[pairs[:, 0]] == folds[pairs[:, 1]]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_group_on_dup_groups_keeps_class_shares_within_ten_points(seed: int):
    # Tolerance as in medalist.data.folds: whole groups move, shares stay within 0.10 absolute.
    from medalist.data.leak import connected_groups

    rng = np.random.default_rng(seed)
    n = 300
    pairs = rng.integers(0, n, (60, 2))
    df = pd.DataFrame({"label": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    df["dup"] = connected_groups(n, pairs)
    folds = make_folds(
        df, scheme="stratified_group", n_splits=5, seed=seed, target_columns=["label"],
        group_column="dup",
    )  # fmt: skip
    overall = df["label"].value_counts(normalize=True)
    for k in range(5):
        share = df["label"][folds == k].value_counts(normalize=True)
        for cls, expected in overall.items():
            assert abs(share.get(cls, 0.0) - expected) <= 0.10
