"""Specification of the search for groupings the user did not name (medalist.data.groups),
and of its use by `medalist new` (group folds in the config) and `medalist leak` (its page)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_competition
from PIL import Image

from medalist.config import load_config
from medalist.data.group_scores import separation
from medalist.data.groups import suggest_groups
from medalist.workflows.leak import find_leaks
from medalist.workflows.scaffold import create_project
from medalist.workflows.train import run_folds

N_GROUPS, PER_GROUP = 10, 6


def scene(seed: int, size: int = 96) -> np.ndarray:
    """A colour picture of smooth random blobs: one scene, seen by every image of a group."""
    rng = np.random.default_rng(seed)
    side = int(rng.integers(3, 9))
    small = rng.integers(0, 256, (side, side, 3)).astype(np.uint8)
    blobs = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), np.float64)
    # and stripes of the scene's own width and direction, as a texture
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
    yy, xx = np.mgrid[:size, :size]
    stripes = 50 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    return np.clip(blobs * 0.7 + stripes[..., None] + 40, 0, 255).astype(np.uint8)


def view(base: np.ndarray, rng: np.random.Generator, out: int = 32) -> Image.Image:
    """A different random crop of the scene with pixel noise: alike, not a near copy."""
    s = int(rng.integers(48, 73))
    y, x = rng.integers(0, base.shape[0] - s + 1, 2)
    a = base[y : y + s, x : x + s].astype(np.int16) + rng.integers(-12, 13, (s, s, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).resize((out, out))


def write_scenes(
    folder: Path, kind: str, groups: range = range(N_GROUPS), seed: int = 0, per: int = PER_GROUP
):
    """Images of shared scenes, grouped in the way `kind` names; returns (names, paths, truth)."""
    rng = np.random.default_rng(seed)
    names, paths, truth = [], [], []
    for g in groups:
        base = scene(g)
        for k in range(per):
            img = view(base, rng)
            opaque = f"{(len(names) * 7919) % 100003:06d}"  # ids that say nothing
            name = {
                "prefix": f"drive{g}_{k:03d}.png",
                "folder": f"patient{g}/img{k}.png",
                "camera": f"{opaque}.jpg",
                "size": f"{opaque}.png",
            }[kind]
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "camera":
                exif = Image.Exif()
                exif[271], exif[272] = "Acme", f"Cam {g}"
                img.save(path, "JPEG", quality=95, exif=exif)
            elif kind == "size":
                img.resize((32 + 4 * g, 32 + 4 * g)).save(path)
            else:
                img.save(path)
            names.append(name)
            paths.append(path)
            truth.append(g)
    return names, paths, np.array(truth)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two labellings that group the items alike (names of the groups aside)."""
    fa, fb = pd.factorize(pd.Series(list(a)))[0], pd.factorize(pd.Series(list(b)))[0]
    return bool((fa == fb).all())


def test_separation_is_the_ratio_of_mean_pairwise_squared_distances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    codes = rng.integers(0, 4, 40)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(2)
    same = codes[:, None] == codes[None, :]
    off = ~np.eye(40, dtype=bool)
    brute = d2[~same].mean() / d2[same & off].mean()
    assert separation(x, codes) == pytest.approx(brute, rel=1e-9)


@pytest.mark.parametrize(
    "kind, column",
    [
        ("prefix", "group_name_prefix"),
        ("folder", "group_folder"),
        ("camera", "group_exif_camera"),
        ("size", "group_image_size"),
    ],
)
def test_each_kind_of_grouping_is_found_as_the_strongest(tmp_path: Path, kind: str, column: str):
    names, paths, truth = write_scenes(tmp_path, kind)
    report = suggest_groups(names, paths)
    best = report.best
    assert best is not None and best.column == column, report.summary().to_string()
    assert best.n_groups == N_GROUPS and best.strong and best.usable
    assert same_partition(best.labels, truth)
    assert best.separation > 1.3 and best.nn_same > best.chance + 0.3


def test_structureless_images_make_no_strong_grouping(tmp_path: Path):
    rng = np.random.default_rng(1)
    names, paths = [], []
    for i in range(60):  # noise, under names that do make groups
        name = f"site{i % 6}_{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / name)
        names.append(name)
        paths.append(tmp_path / name)
    report = suggest_groups(names, paths, test_paths=paths[:20])
    assert report.best is None, report.summary().to_string()
    named = [c for c in report.candidates if c.column == "group_name_prefix"]
    assert len(named) == 1 and not named[0].strong and abs(named[0].separation - 1) < 0.1


def test_new_on_data_without_structure_keeps_stratified_folds(tmp_path: Path):
    data = make_competition(tmp_path / "comp")  # noise with shapes, ids img_0000...
    report = create_project(tmp_path / "proj", data)
    cfg = yaml.safe_load(report.config_path.read_text())
    assert cfg["cv"]["scheme"] == "stratified"
    assert cfg["competition"]["group_column"] is None
    assert "groups_csv" not in cfg["competition"]


def test_folders_that_are_the_classes_are_not_used_for_folds(tmp_path: Path):
    names, paths, truth = write_scenes(tmp_path, "folder", range(3))
    report = suggest_groups(names, paths, target=truth.tolist(), n_splits=3)
    folder = next(c for c in report.candidates if c.column == "group_folder")
    assert not folder.usable and "classes" in folder.note
    assert report.best is None or report.best.column != "group_folder"


def scene_competition(root: Path, test_groups: range) -> Path:
    """A competition of shared-scene images named <drive>_<frame>, test from other drives."""
    names, _, truth = write_scenes(root / "train", "prefix")
    ids = [n[:-4] for n in names]
    pd.DataFrame({"id": ids, "label": [f"c{g % 2}" for g in truth]}).to_csv(
        root / "train.csv", index=False
    )
    test_names, _, _ = write_scenes(root / "test", "prefix", test_groups, seed=1)
    test_ids = [n[:-4] for n in test_names]
    pd.DataFrame({"id": test_ids}).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"id": test_ids, "label": "c0"}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def test_new_writes_the_strongest_grouping_as_group_folds_that_never_split_a_group(
    tmp_path: Path,
):
    data = scene_competition(tmp_path / "comp", range(N_GROUPS, N_GROUPS + 3))
    report = create_project(tmp_path / "proj", data)
    text = report.config_path.read_text()
    cfg = yaml.safe_load(text)["competition"]
    assert yaml.safe_load(text)["cv"]["scheme"] == "stratified_group"
    assert cfg["group_column"] == "group_name_prefix"
    assert cfg["groups_csv"] == "configs/groups.csv"
    why = next(line for line in text.splitlines() if "# Group folds by group_name_prefix," in line)
    assert "10 groups" in text[text.index(why) :].split("group_column:")[0]
    assert "closer than images of different groups" in text
    assert "# Other groupings found" in text  # the weaker ones, as commented alternatives
    groups = pd.read_csv(tmp_path / "proj" / "configs" / "groups.csv")
    assert list(groups.columns[:2]) == ["id", "group_name_prefix"]
    path, _ = run_folds(load_config(report.config_path))
    folds = pd.read_csv(path).merge(groups, on="id")
    drive = folds["id"].str.split("_").str[0]
    assert (folds.groupby(drive)["fold"].nunique() == 1).all()
    assert folds["fold"].nunique() == 5


def test_clusters_count_as_groups_only_when_the_test_holds_unseen_scenes(tmp_path: Path):
    # Opaque names, one size: only the pictures say which images belong together.
    names, paths, _ = write_scenes(tmp_path / "train", "size")
    _, unseen, _ = write_scenes(tmp_path / "unseen", "size", range(20, 24), seed=2)
    _, seen, _ = write_scenes(tmp_path / "seen", "size", range(4), seed=3)
    for p in (*paths, *unseen, *seen):
        Image.open(p).resize((32, 32)).save(p)
    found = suggest_groups(names, paths, test_paths=unseen)
    cluster = next(c for c in found.candidates if c.column == "group_cluster")
    assert found.test_ratio > 1.25 and cluster.strong and found.best is cluster
    assert cluster.nn_same > cluster.null_nn_same + 0.2
    recurring = suggest_groups(names, paths, test_paths=seen)
    assert recurring.test_ratio < 1.25 and recurring.best is None


def test_leak_page_lists_nearest_neighbours_across_folds_that_share_a_group(tmp_path: Path):
    root = tmp_path / "proj"
    scene_competition(root / "data", range(N_GROUPS, N_GROUPS + 3))
    (root / "configs").mkdir()
    config = root / "configs" / "baseline.yaml"
    config.write_text(
        "competition: {train_csv: data/train.csv, test_csv: data/test.csv, image_dir: "
        "data/train, test_image_dir: data/test, sample_submission: data/sample_submission.csv, "
        "id_column: id, target_column: label}\ncv: {scheme: stratified, n_splits: 5}\n"
        "model: {backbone: test_resnet}\ntrack: {backends: [none]}\n"
    )
    report = find_leaks(load_config(config))
    near = pd.read_csv(report.files["neighbours_csv"])
    assert len(near) > 0 and (near["fold_a"] != near["fold_b"]).all()
    drive = lambda s: s.str.split("_").str[0]  # noqa: E731
    assert (drive(near["id_a"]) == drive(near["id_b"])).mean() > 0.8
    assert (near["group_a"] == near["group_b"]).mean() > 0.8
    assert report.grouping.counts["nn_other_fold_same_group"] > 0.5  # random folds split drives
    html = report.files["pairs_html"].read_text()
    section = html.split("<h2>Nearest neighbours across folds</h2>")[1]
    first = near.iloc[0]
    assert f"<br>{first['id_a']}</td>" in section and f"<br>{first['id_b']}</td>" in section
    assert section.count("data:image/png;base64,") == 2 * min(len(near), 24)
    lines = "\n".join(report.grouping.lines("stratified"))
    assert "cv.scheme=stratified_group competition.group_column=group_name_prefix" in lines
    assert "competition.groups_csv=leak/groups.csv" in lines
    written = pd.read_csv(report.files["inferred_groups_csv"])
    assert same_partition(written["group_name_prefix"], drive(written["id"]))
