"""Specification of the near-duplicate search: `medalist leak` and medalist.data.leak."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from PIL import Image, ImageEnhance

from medalist.config import load_config
from medalist.data.leak import (
    MIH_BAND,
    connected_groups,
    find_near_duplicates,
    fingerprint_images,
    hamming_pairs,
    knn_pairs,
    near_duplicates,
)
from medalist.data.leak_match import (
    AUTO_FACTOR,
    AUTO_MAX,
    AUTO_MIN,
    blurred_thumb,
    choose_threshold,
    compare,
)
from medalist.workflows.leak import PAIR_COLUMNS, find_leaks


def textured(seed: int, size: int = 64) -> np.ndarray:
    """A distinct grey picture: smooth random blobs, so copies are recognisable."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    img = Image.fromarray(small).resize((size, size), Image.BICUBIC)
    return np.asarray(img)


def copies_of(a: np.ndarray) -> dict[str, Image.Image]:
    img = Image.fromarray(a)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    shifted = np.zeros_like(a)
    shifted[2:, 3:] = a[:-2, :-3]
    return {
        "jpeg": Image.open(io.BytesIO(buf.getvalue())),
        "resize": img.resize((96, 96), Image.BILINEAR),
        "crop": img.crop((2, 1, 62, 63)),
        "shift": Image.fromarray(shifted),
        "brightness": ImageEnhance.Brightness(img).enhance(1.15),
    }


@pytest.fixture
def planted(tmp_path: Path) -> tuple[list[Path], set[frozenset[int]]]:
    """20 distinct images and one copy of each of 5 kinds of change: 25 files, 5 true pairs."""
    paths, truth = [], set()
    for i in range(20):
        p = tmp_path / f"o{i}.png"
        Image.fromarray(textured(i)).save(p)
        paths.append(p)
    for k, (kind, img) in enumerate(copies_of(textured(3)).items()):
        p = tmp_path / f"c_{kind}.png"
        img.convert("L").save(p)
        paths.append(p)
        truth.add(frozenset((3, 20 + k)))
    # copies of image 3 are duplicates of each other too
    for a in range(20, 25):
        for b in range(a + 1, 25):
            truth.add(frozenset((a, b)))
    return paths, truth


def test_every_planted_copy_is_found_and_no_distinct_image_is_paired(planted):
    paths, truth = planted
    near = near_duplicates(fingerprint_images(paths))
    found = near.pairs
    pairs = {frozenset((int(a), int(b))) for a, b in zip(found["a"], found["b"], strict=True)}
    assert {p for p in pairs if 3 in p} == {p for p in truth if 3 in p}
    assert pairs <= truth
    assert (found["distance"] <= near.threshold.value).all()
    assert "from the data" in near.threshold.note
    assert found["distance"].is_monotonic_increasing


def test_a_tighter_threshold_finds_a_subset(planted):
    paths, _ = planted
    fp = fingerprint_images(paths)
    loose = find_near_duplicates(fp, 0.02)
    tight = find_near_duplicates(fp, 0.001)
    as_set = lambda df: set(zip(df["a"], df["b"], strict=True))  # noqa: E731
    assert as_set(tight) <= as_set(loose)
    assert (tight["distance"] <= 0.001).all()


def photo_crops(n: int, size: int = 32) -> list[np.ndarray]:
    """`n` detailed colour crops of a real photo (scikit-learn's china.jpg), none overlapping."""
    from sklearn.datasets import load_sample_images

    photo = load_sample_images().images[0]
    crops = []
    for y in range(0, photo.shape[0] - size, 2 * size):
        for x in range(0, photo.shape[1] - size, 2 * size):
            c = photo[y : y + size, x : x + size]
            if c.mean(2).std() >= 20:
                crops.append(np.ascontiguousarray(c))
    assert len(crops) >= n
    return crops[:n]


def jpeg_copy(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_jpeg_re_encoded_copies_of_small_colour_photos_are_found(tmp_path: Path):
    # 32x32 crops of a photo are full of fine detail that JPEG at quality 50-60 destroys:
    # the copies must still be found, and no two different crops paired.
    crops = photo_crops(24)
    paths = []
    for i, c in enumerate(crops):
        paths.append(tmp_path / f"o{i}.png")
        Image.fromarray(c).save(paths[-1])
    truth = set()
    for k, (i, quality) in enumerate([(0, 50), (1, 55), (2, 60), (3, 60)]):
        paths.append(tmp_path / f"c{k}.jpg")
        jpeg_copy(Image.fromarray(crops[i]), quality).save(paths[-1], quality=95)
        truth.add(frozenset((i, 24 + k)))
    paths.append(tmp_path / "r.jpg")  # resized to 48x48, then JPEG 60
    jpeg_copy(Image.fromarray(crops[4]).resize((48, 48), Image.BILINEAR), 60).save(paths[-1])
    truth.add(frozenset((4, 28)))
    found = find_near_duplicates(fingerprint_images(paths))
    pairs = {frozenset((int(a), int(b))) for a, b in zip(found["a"], found["b"], strict=True)}
    assert pairs == truth


def nearest_pairs(bulk: np.ndarray, copies: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Candidates of images in twos, each two `bulk[k]` apart, then `copies` pairs of copies."""
    m = len(bulk) + copies
    pairs = np.arange(2 * m).reshape(m, 2)
    return 2 * m, pairs, np.r_[bulk, np.full(copies, 1e-4)]


def test_the_default_threshold_follows_how_close_different_images_come():
    rng = np.random.default_rng(0)
    bulk = np.exp(rng.normal(np.log(0.1), 0.5, 2000))  # nearest-neighbour distances, median 0.1
    n, pairs, dist = nearest_pairs(bulk, copies=0)
    base = choose_threshold(n, pairs, dist)
    assert base.value == pytest.approx(AUTO_FACTOR * 0.1, rel=0.1)
    assert "from the data" in base.note and "median" in base.note
    # Pictures twice as far apart: a threshold twice as large.
    n, pairs, dist = nearest_pairs(bulk / 2, copies=0)
    assert choose_threshold(n, pairs, dist).value == pytest.approx(base.value / 2, rel=0.05)
    # A data set that is mostly copies: the copies do not drag the threshold down.
    n, pairs, dist = nearest_pairs(bulk, copies=3000)
    assert choose_threshold(n, pairs, dist).value == pytest.approx(base.value, rel=0.05)


def test_the_default_threshold_stays_within_its_bounds():
    n, pairs, dist = nearest_pairs(np.full(500, 1.5), copies=10)
    assert choose_threshold(n, pairs, dist).value == AUTO_MAX
    n, pairs, dist = nearest_pairs(np.full(500, 0.001), copies=10)
    assert choose_threshold(n, pairs, dist).value == AUTO_MIN


def test_a_difference_in_one_place_counts_more_than_noise_spread_evenly():
    # Same squared difference in total: spread as re-encoding noise is, or in one spot, as
    # where two different pictures differ (a sleeve, a petal).
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.normal(0, 1, (64, 64)).astype(np.float32), (0, 0), 3)
    base = 128 + 40 * base / base.std()
    noise = rng.normal(0, 1, (64, 64)).astype(np.float32)
    spot = np.zeros((64, 64), np.float32)
    spot[24:40, 24:40] = rng.normal(0, 1, (16, 16))
    spot *= np.linalg.norm(noise) / np.linalg.norm(spot)
    as_u8 = lambda a: np.clip(a, 0, 255).astype(np.uint8)  # noqa: E731
    spread = compare(as_u8(base), as_u8(base + 3 * noise))
    local = compare(as_u8(base), as_u8(base + 3 * spot))
    assert local > 2 * spread > 0


def test_a_shared_black_background_does_not_make_two_pictures_alike():
    # Two different textures cut to one square on black, as Fashion-MNIST's items sit: the
    # black pixels alone correlate them (distance about 0.09 when counted); their pictures
    # differ (0.22 over the pixels that are not black).
    def item(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        tex = cv2.GaussianBlur(rng.normal(0, 1, (64, 64)).astype(np.float32), (0, 0), 2)
        img = np.zeros((64, 64), np.float32)
        img[16:48, 16:48] = (150 + 40 * tex / tex.std())[16:48, 16:48]
        return blurred_thumb(np.clip(img, 0, 255).astype(np.uint8))

    assert compare(item(1), item(2)) > 0.15
    assert compare(item(1), item(1)) == pytest.approx(0.0, abs=1e-6)


def test_knn_pairs_keep_an_images_nearest_even_beyond_the_tight_radius():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    x[50] = x[10] + rng.normal(scale=0.5, size=64).astype(np.float32)  # a copy, much changed
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert 1 - float(x[10] @ x[50]) > 0.05
    assert (10, 50) not in {tuple(p) for p in knn_pairs(x, k=3, radius=0.01)}
    near = {tuple(p) for p in knn_pairs(x, k=3, radius=0.01, near_k=1, near_radius=0.3)}
    assert near == {(10, 50)}


def test_hamming_search_returns_exactly_the_pairs_within_the_radius():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    codes[100] = codes[7]
    codes[101] = codes[7]
    codes[101, :2] ^= 0b1011  # 6 bits flipped
    pairs = {tuple(p) for p in hamming_pairs(codes, radius=6)}
    assert {(7, 100), (7, 101), (100, 101)} <= pairs
    bits = np.unpackbits(codes, axis=1).astype(int)
    for a, b in pairs:
        assert (bits[a] != bits[b]).sum() <= 6
    assert all(a < b for a, b in pairs)


def test_hamming_search_finds_every_pair_a_brute_force_finds_below_the_chunk_count():
    # 3,000 codes, so 3-byte chunks: 10 chunks of 32 bytes; fewer than 10 differing bits
    # always leave one chunk equal (pigeonhole), so the search must miss nothing.
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    bits = np.unpackbits(codes, axis=1)
    for i in range(0, 600, 2):  # near copies with 1..9 bits flipped anywhere
        flip = rng.choice(256, int(rng.integers(1, 10)), replace=False)
        bits[i + 1] = bits[i]
        bits[i + 1, flip] ^= 1
    codes = np.packbits(bits, axis=1)
    dist = (bits[:, None, :] != bits[None, :, :]).sum(2)
    brute = {(a, b) for a, b in zip(*np.nonzero(dist <= 9), strict=True) if a < b}
    assert len(brute) >= 300
    assert {tuple(p) for p in hamming_pairs(codes, radius=9)} == brute


def test_hamming_search_keeps_a_bucket_of_identical_images_connected_at_bounded_cost():
    codes = np.zeros((2000, 32), np.uint8)  # 2,000 blank images: one hash
    pairs = hamming_pairs(codes, radius=0)
    assert len(pairs) <= 2000 * MIH_BAND  # not the 2 million pairs of all against all
    assert len(set(connected_groups(2000, pairs))) == 1


def test_approximate_neighbour_search_above_the_exact_limit_finds_close_pairs(monkeypatch):
    import medalist.data.leak as leak

    monkeypatch.setattr(leak, "EXACT_KNN_MAX", 500)  # HNSW after PCA, as for 10,000+ images
    rng = np.random.default_rng(3)
    # Like spectra, the vectors vary along few directions (here 40 of 325).
    x = (rng.normal(size=(3000, 40)) @ rng.normal(size=(40, 325))).astype(np.float32)
    x[1:200:2] = x[0:200:2] + rng.normal(scale=0.3, size=(100, 325)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = {tuple(p) for p in knn_pairs(x, k=4, radius=0.01)}
    assert pairs == {(i, i + 1) for i in range(0, 200, 2)}


def test_knn_pairs_keep_only_neighbours_within_the_radius():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    x[50] = x[10] + 0.01
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = {tuple(p) for p in knn_pairs(x, k=3, radius=0.01)}
    assert pairs == {(10, 50)}


def test_connected_groups_join_chains_and_merge_an_existing_group_column():
    labels = connected_groups(6, np.array([[0, 1], [1, 2]]))
    assert labels[0] == labels[1] == labels[2]
    assert len(set(labels[3:])) == 3 and labels[3] not in labels[:3]
    assert list(labels) == sorted(labels)  # numbered in order of first appearance
    merged = connected_groups(6, np.array([[0, 1]]), ["p", "q", "x", "q", "y", None])
    assert merged[0] == merged[1] == merged[3]  # 1 and 3 share patient q
    assert len(set(merged)) == 4


def test_leak_writes_pairs_groups_and_page_with_folds_and_splits(tiny_project: Path):
    data = tiny_project.parent.parent / "data"
    Image.open(data / "train/img_0005.png").save(data / "train/img_0001.png")
    a = np.asarray(Image.open(data / "train/img_0000.png"))
    Image.fromarray(np.roll(a, 1, axis=1)).save(data / "test/t_000.png")
    report = find_leaks(load_config(tiny_project))
    assert "distance threshold" in report.threshold_note
    assert (report.pairs["distance"] <= report.threshold).all()
    pairs = pd.read_csv(report.files["pairs_csv"])
    assert list(pairs.columns) == PAIR_COLUMNS
    keyed = {frozenset((r.id_a, r.id_b)): r for r in pairs.itertuples()}
    assert frozenset(("img_0001", "img_0005")) in keyed
    assert frozenset(("img_0000", "t_000")) in keyed
    tt = keyed[frozenset(("img_0000", "t_000"))]
    assert (tt.split_a, tt.split_b) == ("train", "test") and pd.isna(tt.fold_b)
    folds = pd.read_csv(next((tiny_project.parent.parent / "folds").glob("*.csv")))
    fold_of = dict(zip(folds["id"], folds["fold"], strict=True))
    same = keyed[frozenset(("img_0001", "img_0005"))]
    assert (same.fold_a, same.fold_b) == (fold_of[same.id_a], fold_of[same.id_b])
    groups = pd.read_csv(report.files["groups_csv"])
    assert list(groups.columns) == ["id", "dup_group"] and len(groups) == 36
    g = dict(zip(groups["id"], groups["dup_group"], strict=True))
    assert g["img_0001"] == g["img_0005"] and g["img_0000"] != g["img_0001"]
    html = report.files["pairs_html"].read_text()
    duplicates_part = html.split("<h2>Nearest neighbours across folds</h2>")[0]
    assert duplicates_part.count("data:image/png;base64,") == 2 * len(pairs)
    assert 'src="http' not in html and "img_0005" in html
    assert report.counts["train_test"] >= 1
    assert report.counts["cross_fold"] + report.counts["same_fold"] == report.counts["train_train"]


def test_leak_cli_prints_counts_and_the_group_folds_override(tiny_project: Path):
    data = tiny_project.parent.parent / "data"
    Image.open(data / "train/img_0005.png").save(data / "train/img_0001.png")
    r = medalist("leak", str(tiny_project), cwd=tiny_project.parent.parent)
    assert r.returncode == 0, r.stderr
    assert "within train" in r.stdout and "train-test" in r.stdout
    assert "distance threshold" in r.stdout
    assert "competition.groups_csv=leak/dup_groups.csv" in r.stdout


def test_leak_with_an_unknown_merge_group_column_exits_2_naming_it(tiny_project: Path):
    r = medalist("leak", str(tiny_project), "--merge-group", "patient")
    assert r.returncode == 2
    assert "--merge-group 'patient'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_given_threshold_is_used_and_said_to_be_given(tiny_project: Path):
    report = find_leaks(load_config(tiny_project), threshold=0.0123)
    assert report.threshold == 0.0123 and "given" in report.threshold_note


def test_leak_with_a_negative_threshold_exits_2(tiny_project: Path):
    r = medalist("leak", str(tiny_project), "--threshold", "-1")
    assert r.returncode == 2 and "--threshold" in r.stderr and "Traceback" not in r.stderr


def test_leak_on_an_unreadable_image_names_the_file(tiny_project: Path):
    bad = tiny_project.parent.parent / "data/train/img_0003.png"
    bad.write_bytes(b"not a png")
    r = medalist("leak", str(tiny_project))
    assert r.returncode == 2 and "img_0003.png" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_leak_embeddings_pass_adds_pairs_from_backbone_features(tiny_project: Path):
    data = tiny_project.parent.parent / "data"
    # A copy at twice the size: another file to the hash pass, which threshold 0 limits to
    # identical files, and the same 16 px input to the backbone.
    Image.open(data / "train/img_0004.png").resize((48, 48), Image.NEAREST).save(
        data / "test/t_000.png"
    )
    cfg = load_config(tiny_project)
    report = find_leaks(cfg, threshold=0.0, embeddings=True, embed_similarity=0.5)
    assert set(report.pairs["method"]) == {"embedding"}
    nearest = report.pairs.iloc[0]
    assert {nearest.id_a, nearest.id_b} == {"img_0004", "t_000"}
    assert nearest.distance < 1e-5 < report.pairs["distance"].iloc[1]
    assert (report.pairs["distance"] <= 0.5 + 1e-6).all()
    assert set(report.seconds) == {"fingerprint", "search", "embeddings"}
    assert report.seconds["embeddings"] > 0
