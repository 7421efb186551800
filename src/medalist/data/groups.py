"""Groupings the user did not name: frames of one drive, images of one patient, one camera.

Such images are not near copies, but they are far more alike than images from different
sources, so random folds put close relatives of every validation image into training and the
CV is optimistic. Candidates come from:

- the file names: a folder (``<patient>/<image>``), the first parts of the name split at
  ``_ - .`` or space (``<drive>_<frame>``), the name without its trailing number;
- EXIF (Pillow's ``getexif``): the camera (make and model) and the day a photo was taken;
- the image size (``640x480``), when sources differ in resolution;
- clusters (scikit-learn ``KMeans``) of a scene descriptor taken from the near-duplicate
  fingerprints of `medalist.data.leak`: the shift-invariant spectrum and a grey histogram.

Each candidate is scored (medalist.data.group_scores) on the descriptors of at most
``MAX_SCORED`` training images: how much closer images of one group are than images of
different groups, and how often an image's nearest neighbour is in its own group, against
chance. Candidates that make the same partition are listed once; those with one group, or with
nearly every image alone, are not candidates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medalist.data.group_scores import (
    GroupCandidate,
    cluster_candidate,
    nearest_neighbours,
    novelty_ratio,
    score,
)
from medalist.data.leak import Fingerprints, fingerprint_images

MAX_SCORED = 4000  # training images scored (a random sample above that)
MAX_TEST = 2000
_SEP = re.compile(r"[_\-. ]+")
_TRAILING_NUMBER = re.compile(r"[_\-. ]*\d+$")


@dataclass
class GroupReport:
    """The candidates, strongest first, and how far test images sit from training images."""

    candidates: list[GroupCandidate]
    scored: int
    test_ratio: float | None = None  # median test->train over train->train nearest distance

    @property
    def best(self) -> GroupCandidate | None:
        """The strongest usable candidate, or None."""
        return next((c for c in self.candidates if c.strong and c.usable), None)

    def table(self, ids: Sequence[object], id_column: str) -> pd.DataFrame:
        """id and one column per candidate labelled on every row."""
        out = {id_column: list(ids)}
        out.update({c.column: c.labels for c in self.candidates if c.labels is not None})
        return pd.DataFrame(out)

    def summary(self) -> pd.DataFrame:
        """One row per candidate with its figures."""
        rows = [
            {
                "column": c.column,
                "source": c.source,
                "how": c.how,
                "groups": c.n_groups,
                "separation": round(c.separation, 3),
                "nn_same": round(c.nn_same, 3),
                "chance": round(c.chance, 4),
                "z": round(c.z, 1),
                "verdict": c.verdict(),
            }
            for c in self.candidates
        ]
        return pd.DataFrame(rows, columns=["column", "source", "how", "groups", "separation",
                                           "nn_same", "chance", "z", "verdict"])  # fmt: skip


# --------------------------------------------------------------------------------------------
# where candidates come from


def name_groupings(names: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
    """(column, how, labels) for the folder and the name patterns of `names`."""
    paths = [Path(str(n)) for n in names]
    stems = [p.stem for p in paths]
    out: list[tuple[str, str, np.ndarray]] = []
    folders = np.array([p.parent.as_posix() for p in paths], dtype=object)
    if (folders != ".").mean() >= 0.9:
        how = f"the folder in the file name, e.g. {folders[0]} from {paths[0].as_posix()}"
        out.append(("group_folder", how, folders))
    parts = [_SEP.split(s) for s in stems]
    for depth in (1, 2, 3):
        if np.mean([len(p) > depth for p in parts]) < 0.9:
            break
        labels = np.array(["_".join(p[:depth]) for p in parts], dtype=object)
        column = "group_name_prefix" + ("" if depth == 1 else str(depth))
        which = "first part" if depth == 1 else f"first {depth} parts"
        how = f"the {which} of the file name split at _ - . or space"
        out.append((column, f"{how}, e.g. {labels[0]} from {paths[0].name}", labels))
    bare = np.array([_TRAILING_NUMBER.sub("", s) for s in stems], dtype=object)
    if np.mean([b != s and b != "" for b, s in zip(bare, stems, strict=True)]) >= 0.9:
        how = f"the file name without its trailing number, e.g. {bare[0]} from {paths[0].name}"
        out.append(("group_name_stem", how, bare))
    return out


def read_metadata(paths: Sequence[Path], workers: int = 8) -> pd.DataFrame:
    """Camera (EXIF make and model), day taken (EXIF) and size of each image; None if absent."""

    def one(path: Path) -> tuple[str | None, str | None, str | None]:
        from PIL import Image

        try:
            with Image.open(path) as img:
                exif = img.getexif()
                size = f"{img.size[0]}x{img.size[1]}"
        except Exception:  # unreadable, or a format Pillow lacks (DICOM): no metadata
            return None, None, None
        camera = " ".join(str(exif.get(t, "")).strip() for t in (271, 272)).strip() or None
        taken = exif.get_ifd(0x8769).get(36867) or exif.get(306)
        day = str(taken)[:10].replace(":", "-") if taken else None
        return camera, day, size

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, paths))
    return pd.DataFrame(rows, columns=["camera", "day", "size"])


META_GROUPINGS = {
    "camera": ("group_exif_camera", "exif", "the camera, EXIF make and model"),
    "day": ("group_exif_date", "exif", "the day the photo was taken, from EXIF"),
    "size": ("group_image_size", "size", "the image size in pixels"),
}


def metadata_groupings(meta: pd.DataFrame) -> list[tuple[str, str, str, np.ndarray]]:
    """(column, source, how, labels) for each metadata field most images have."""
    out = []
    for field, (column, source, how) in META_GROUPINGS.items():
        values = meta[field]
        if values.notna().mean() < 0.5 or values.nunique() < 2:
            continue
        # An image without the field is a group of its own: it has no known relatives.
        alone = pd.Series([f"none-{i}" for i in range(len(values))], index=values.index)
        out.append((column, source, how, values.fillna(alone).to_numpy(dtype=object)))
    return out


def scene_descriptors(fp: Fingerprints) -> np.ndarray:
    """Unit vectors per image: the leak search's spectrum beside a grey-level histogram."""
    n = len(fp)
    bins = (fp.thumbs.reshape(n, -1) // 16).astype(np.int64)
    hist = np.zeros((n, 16), np.float32)
    np.add.at(hist, (np.repeat(np.arange(n), bins.shape[1]), bins.ravel()), 1.0)
    hist = np.sqrt(hist)
    hist /= np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-9)
    x = np.hstack([fp.spectra, hist]) / math.sqrt(2.0)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9))


def find_groups(
    names: Sequence[str],
    x: np.ndarray,
    rows: np.ndarray,
    *,
    meta: pd.DataFrame | None = None,
    target: Sequence[object] | None = None,
    n_splits: int = 5,
    test_x: np.ndarray | None = None,
    seed: int = 0,
) -> GroupReport:
    """Every grouping of the `names` (training rows) found, scored on descriptors `x` of `rows`.

    `meta` (from `read_metadata`, one row per name) adds EXIF and size groupings; `target`
    (classification) rules out groupings that only repeat the classes; `test_x` (descriptors
    of test images) lets clusters count as sources when the test set looks unseen.
    """
    n = len(names)
    rows = np.asarray(rows, np.int64)
    y = None if target is None else np.asarray(list(target), dtype=object)
    rng = np.random.default_rng(seed)
    sample = np.arange(len(rows))
    if len(rows) > MAX_SCORED:
        sample = np.sort(rng.choice(len(rows), MAX_SCORED, replace=False))
    xs, idx = x[sample], rows[sample]
    nn = nearest_neighbours(xs)
    if test_x is not None and len(test_x) > MAX_TEST:
        test_x = test_x[np.sort(rng.choice(len(test_x), MAX_TEST, replace=False))]
    ratio = novelty_ratio(xs, test_x) if test_x is not None else None
    raw = [(c, "name", h, lab) for c, h, lab in name_groupings(names)]
    if meta is not None:
        raw += metadata_groupings(meta)
    found: list[GroupCandidate] = []
    seen: set[bytes] = set()
    for column, source, how, labels in raw:
        codes = pd.factorize(pd.Series(labels))[0]
        key = codes.tobytes()
        if codes.max() < 1 or codes.max() + 1 > n / 1.5 or key in seen:
            continue  # one group, nearly every image alone, or a partition already listed
        seen.add(key)
        found.append(score(column, source, how, labels, xs, nn, idx, n_splits, y))
    cluster = cluster_candidate(
        x, len(rows) == n, sample, n_splits, None if y is None else y[rows], ratio, seed
    )
    if cluster is not None:
        found.append(cluster)
    found.sort(key=lambda c: (not (c.strong and c.usable), c.source == "cluster", -c.separation))
    return GroupReport(found, len(sample), ratio)


def suggest_groups(
    names: Sequence[str],
    paths: Sequence[Path],
    *,
    target: Sequence[object] | None = None,
    n_splits: int = 5,
    test_paths: Sequence[Path] = (),
    seed: int = 0,
) -> GroupReport:
    """`find_groups` from image files: fingerprints of a sample, metadata of every image."""
    n = len(paths)
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    if n > MAX_SCORED:
        rows = np.sort(rng.choice(n, MAX_SCORED, replace=False))
    test = list(test_paths)
    if len(test) > MAX_TEST:
        test = [test[i] for i in np.sort(rng.choice(len(test), MAX_TEST, replace=False))]
    fp = fingerprint_images([paths[i] for i in rows] + test)
    x = scene_descriptors(fp)
    meta = read_metadata([paths[i] for i in rows])
    if not metadata_groupings(meta):
        meta = None
    elif len(rows) < n:
        meta = read_metadata(paths)
    return find_groups(
        names, x[: len(rows)], rows, meta=meta, target=target, n_splits=n_splits,
        test_x=x[len(rows):] if test else None, seed=seed,
    )  # fmt: skip
