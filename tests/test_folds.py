"""Specification of medalist.data.folds: fold assignment, its checks, summary and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from rich.table import Table

from medalist.data.folds import (
    fold_summary,
    folds_file_name,
    make_folds,
    read_folds,
    render_fold_table,
    write_folds,
)
from medalist.errors import UserError

SEEDS = [0, 1, 7, 42, 2024]


def grouped_table(seed: int = 0, n_rows: int = 300, n_groups: int = 60) -> pd.DataFrame:
    """~300 rows in ~60 groups of uneven size, a 3-class label drawn per row, 3 0/1 labels."""
    rng = np.random.default_rng(seed)
    groups = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, n_rows - n_groups)])
    rng.shuffle(groups)
    return pd.DataFrame(
        {
            "id": [f"img_{i:04d}" for i in range(n_rows)],
            "patient": [f"p{g}" for g in groups],
            "label": rng.choice(["cat", "dog", "bird"], size=n_rows, p=[0.5, 0.3, 0.2]),
            "a": rng.binomial(1, 0.4, n_rows),
            "b": rng.binomial(1, 0.2, n_rows),
            "c": rng.binomial(1, 0.1, n_rows),
            "y": rng.normal(size=n_rows),
        }
    )


def folds_for(df: pd.DataFrame, scheme: str, **kw) -> np.ndarray:
    args = dict(
        scheme=scheme,
        n_splits=5,
        seed=42,
        target_columns=["label"],
        group_column="patient",
    )
    args.update(kw)
    return make_folds(df, **args)


# ----------------------------------------------------------------------------- every scheme


@pytest.mark.parametrize(
    ("scheme", "targets"),
    [
        ("kfold", ["label"]),
        ("stratified", ["label"]),
        ("group", ["label"]),
        ("stratified_group", ["label"]),
        ("multilabel", ["a", "b", "c"]),
    ],
)
def test_every_scheme_gives_each_row_one_fold_from_zero_to_k_minus_one(scheme, targets):
    df = grouped_table()
    folds = folds_for(df, scheme, target_columns=targets)
    assert folds.shape == (len(df),)
    assert np.issubdtype(folds.dtype, np.integer)
    assert set(np.unique(folds)) == set(range(5))


@pytest.mark.parametrize(
    ("scheme", "targets"),
    [
        ("kfold", ["label"]),
        ("stratified", ["label"]),
        ("group", ["label"]),
        ("stratified_group", ["label"]),
        ("multilabel", ["a", "b", "c"]),
    ],
)
def test_same_seed_gives_identical_folds_and_another_seed_different_ones(scheme, targets):
    df = grouped_table()
    first = folds_for(df, scheme, target_columns=targets, seed=3)
    again = folds_for(df, scheme, target_columns=targets, seed=3)
    other = folds_for(df, scheme, target_columns=targets, seed=4)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


# ----------------------------------------------------------------------------- balance


def test_kfold_sizes_differ_by_at_most_one_row():
    for n_rows in (300, 301, 303):
        df = pd.DataFrame({"id": range(n_rows)})
        folds = make_folds(
            df, scheme="kfold", n_splits=5, seed=0, target_columns=[], group_column=None
        )
        sizes = np.bincount(folds)
        assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("scheme", ["group", "stratified_group"])
@pytest.mark.parametrize("seed", SEEDS)
def test_group_folds_never_split_a_group(scheme, seed):
    df = grouped_table(seed)
    folds = folds_for(df, scheme, seed=seed)
    folds_per_group = pd.Series(folds).groupby(df["patient"].to_numpy()).nunique()
    assert (folds_per_group == 1).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_stratified_group_folds_keep_each_class_share_within_ten_points(seed):
    # Tolerance: whole groups move together, so a fold's class share can only be as close as
    # the groups allow; on ~300 rows in ~60 groups it stays within 0.10 absolute of the overall
    # share (the tolerance stated in medalist.data.folds' docstring).
    df = grouped_table(seed)
    folds = folds_for(df, "stratified_group", seed=seed)
    overall = df["label"].value_counts(normalize=True)
    for fold in range(5):
        share = df["label"][folds == fold].value_counts(normalize=True)
        for cls, expected in overall.items():
            assert abs(share.get(cls, 0.0) - expected) <= 0.10, (fold, cls)


@pytest.mark.parametrize("seed", SEEDS)
def test_stratified_folds_keep_class_balance_within_five_points(seed):
    df = grouped_table(seed)
    folds = folds_for(df, "stratified", seed=seed)
    overall = df["label"].value_counts(normalize=True)
    for fold in range(5):
        share = df["label"][folds == fold].value_counts(normalize=True)
        for cls, expected in overall.items():
            assert abs(share.get(cls, 0.0) - expected) <= 0.05, (fold, cls)


def test_stratified_folds_on_a_float_target_balance_its_quantiles():
    df = grouped_table()
    folds = folds_for(df, "stratified", target_columns=["y"])
    overall_median = df["y"].median()
    for fold in range(5):
        above = (df["y"][folds == fold] > overall_median).mean()
        assert abs(above - 0.5) <= 0.05
    assert np.bincount(folds).min() >= 55


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_folds_keep_each_label_positive_rate(seed):
    df = grouped_table(seed)
    folds = folds_for(df, "multilabel", target_columns=["a", "b", "c"], seed=seed)
    for label in ("a", "b", "c"):
        overall = df[label].mean()
        for fold in range(5):
            assert abs(df[label][folds == fold].mean() - overall) <= 0.03, (label, fold)


# ----------------------------------------------------------------------------- user errors


def test_group_scheme_without_a_group_column_asks_for_competition_group_column():
    with pytest.raises(UserError, match="competition.group_column"):
        folds_for(grouped_table(), "group", group_column=None)


def test_stratified_group_scheme_without_a_group_column_asks_for_it():
    with pytest.raises(UserError, match="competition.group_column"):
        folds_for(grouped_table(), "stratified_group", group_column=None)


def test_missing_group_column_is_named_with_available_columns():
    with pytest.raises(UserError, match="'subject'.*available columns: id, patient, label"):
        folds_for(grouped_table(), "group", group_column="subject")


def test_nan_in_group_column_names_the_column():
    df = grouped_table()
    df.loc[5, "patient"] = None
    with pytest.raises(UserError, match="'patient'.*1 empty value"):
        folds_for(df, "group")


def test_more_splits_than_rows_is_refused():
    df = grouped_table().head(4)
    with pytest.raises(UserError, match="cv.n_splits=5 is larger than the 4 row"):
        folds_for(df, "kfold")


@pytest.mark.parametrize("scheme", ["group", "stratified_group"])
def test_more_splits_than_groups_names_the_group_column(scheme):
    df = grouped_table()
    df["site"] = np.arange(len(df)) % 3
    with pytest.raises(UserError, match="'site'.*3 distinct group"):
        folds_for(df, scheme, group_column="site")


@pytest.mark.parametrize("scheme", ["stratified", "stratified_group"])
def test_more_splits_than_the_smallest_class_names_the_class_and_its_count(scheme):
    df = grouped_table()
    df.loc[:2, "label"] = "axolotl"
    with pytest.raises(UserError, match="class 'axolotl'.*only 3 row.*lower cv.n_splits"):
        folds_for(df, scheme)


def test_a_class_seen_once_is_not_answered_with_fewer_splits_that_cannot_help():
    df = grouped_table()
    df.loc[0, "label"] = "axolotl"
    df.loc[1, "label"] = "okapi"
    with pytest.raises(UserError) as err:
        folds_for(df, "stratified")
    message = str(err.value)
    assert "only 1 row(s)" in message and "(2 classes have fewer)" in message
    assert "lower cv.n_splits" not in message
    assert "drop or merge the rows of classes seen once, or use cv.scheme: kfold" in message


def test_multilabel_with_non_binary_targets_names_the_column():
    df = grouped_table()
    df.loc[0, "b"] = 2
    with pytest.raises(UserError, match="'b' holds '2' .*0/1"):
        folds_for(df, "multilabel", target_columns=["a", "b", "c"])


def test_multilabel_with_one_target_column_is_refused():
    with pytest.raises(UserError, match="two or more 0/1 target columns"):
        folds_for(grouped_table(), "multilabel", target_columns=["a"])


@pytest.mark.parametrize(
    ("scheme", "targets"),
    [("stratified", ["label"]), ("stratified_group", ["label"]), ("multilabel", ["a", "b"])],
)
def test_nan_in_a_stratification_target_names_the_column(scheme, targets):
    df = grouped_table()
    df[targets[0]] = df[targets[0]].astype(object)
    df.loc[7, targets[0]] = None
    with pytest.raises(UserError, match=f"'{targets[0]}'.*empty value"):
        folds_for(df, scheme, target_columns=targets)


def test_stratified_on_several_targets_points_to_multilabel():
    with pytest.raises(UserError, match="multilabel"):
        folds_for(grouped_table(), "stratified", target_columns=["a", "b"])


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(UserError, match="stratified_group"):
        folds_for(grouped_table(), "random")


def test_user_error_messages_are_one_line():
    df = grouped_table()
    with pytest.raises(UserError) as info:
        folds_for(df, "group", group_column="nope")
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- summary


def test_fold_summary_has_one_row_per_fold_and_valid_counts_add_up():
    df = grouped_table()
    folds = folds_for(df, "stratified_group")
    summary = fold_summary(df, folds, ["label"], "patient")
    assert list(summary["fold"]) == [0, 1, 2, 3, 4]
    assert summary["n_valid"].sum() == len(df)
    assert (summary["n_train"] + summary["n_valid"] == len(df)).all()
    shares = summary[[c for c in summary.columns if c.startswith("share:")]]
    assert set(shares.columns) == {"share:cat", "share:dog", "share:bird"}
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert summary["groups"].sum() == df["patient"].nunique()


def test_fold_summary_shows_ten_classes_and_sums_the_rest_into_other():
    df = pd.DataFrame({"label": np.arange(300) % 14})
    folds = make_folds(
        df, scheme="stratified", n_splits=5, seed=0, target_columns=["label"], group_column=None
    )
    summary = fold_summary(df, folds, ["label"], None)
    shares = [c for c in summary.columns if c.startswith("share:")]
    assert len(shares) == 11 and shares[-1] == "share:other"
    np.testing.assert_allclose(summary[shares].sum(axis=1), 1.0)
    assert "groups" not in summary.columns


def test_fold_summary_gives_the_positive_rate_per_label_for_multilabel():
    df = grouped_table()
    folds = folds_for(df, "multilabel", target_columns=["a", "b", "c"])
    summary = fold_summary(df, folds, ["a", "b", "c"], None)
    assert {"pos:a", "pos:b", "pos:c"} <= set(summary.columns)
    expected = df["b"][folds == 2].mean()
    assert summary.loc[summary["fold"] == 2, "pos:b"].item() == pytest.approx(expected)


def test_fold_table_shows_shares_as_percentages():
    df = grouped_table()
    folds = folds_for(df, "stratified")
    table = render_fold_table(fold_summary(df, folds, ["label"], None))
    assert isinstance(table, Table)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "share:cat" in text and "%" in text


# ----------------------------------------------------------------------------- files


def test_folds_file_name_names_scheme_splits_seed_and_group_column():
    assert folds_file_name("stratified", 5, 42, None) == "stratified-k5-s42.csv"
    assert folds_file_name("stratified", 5, 42, "patient") == "stratified-k5-s42.csv"
    assert folds_file_name("group", 5, 42, "patient") == "group-patient-k5-s42.csv"
    assert folds_file_name("stratified_group", 10, 0, "site id") == (
        "stratified_group-site_id-k10-s0.csv"
    )


def test_written_folds_read_back_aligned_to_the_ids(tmp_path: Path):
    df = grouped_table()
    folds = folds_for(df, "group")
    path = tmp_path / "folds" / folds_file_name("group", 5, 42, "patient")
    write_folds(path, df["id"], folds)
    assert path.read_text().splitlines()[0] == "id,fold"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    shuffled = df.sample(frac=1.0, random_state=0)
    back = read_folds(path, shuffled["id"], "id")
    np.testing.assert_array_equal(back, folds[shuffled.index.to_numpy()])


def test_integer_ids_round_trip(tmp_path: Path):
    ids = pd.Series([10, 11, 12, 13], name="image_id")
    folds = np.array([0, 1, 0, 1])
    write_folds(tmp_path / "f.csv", ids, folds)
    np.testing.assert_array_equal(read_folds(tmp_path / "f.csv", ids, "image_id"), folds)


def test_write_folds_replaces_an_existing_file(tmp_path: Path):
    path = tmp_path / "f.csv"
    write_folds(path, pd.Series(["a", "b"]), np.array([0, 1]))
    write_folds(path, pd.Series(["a", "b"]), np.array([1, 0]))
    np.testing.assert_array_equal(read_folds(path, pd.Series(["a", "b"]), "id"), [1, 0])


def test_read_folds_with_missing_and_extra_ids_says_how_many_and_to_rerun(tmp_path: Path):
    path = tmp_path / "f.csv"
    write_folds(path, pd.Series(["a", "b", "c"]), np.array([0, 1, 0]))
    with pytest.raises(UserError, match=r"2 id\(s\) missing.*1 extra.*medalist folds CONFIG"):
        read_folds(path, pd.Series(["a", "b", "x", "y"]), "image_id")


def test_read_folds_of_a_missing_file_says_to_rerun(tmp_path: Path):
    with pytest.raises(UserError, match="medalist folds CONFIG"):
        read_folds(tmp_path / "none.csv", pd.Series(["a"]), "id")
