"""`medalist leak`: near-duplicate images within train (across folds) and between train and test.

Writes, under ``<project>/leak/``: ``pairs.csv`` (id_a, id_b, distance, split_a, split_b,
fold_a, fold_b, method), ``pairs.html`` (side-by-side thumbnails of the closest pairs, images
embedded) and ``dup_groups.csv`` (id, dup_group: connected components of the pairs, optionally
joined with an existing group column), which ``competition.groups_csv`` joins to train so that
``cv.scheme: group`` keeps duplicates in one fold.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.config import Config
from medalist.data.leak import (
    DEFAULT_THRESHOLD,
    check_threshold,
    connected_groups,
    fingerprint_images,
    knn_pairs,
    near_duplicates,
)
from medalist.data.tables import check_images_exist, load_tables
from medalist.errors import UserError
from medalist.io import write_csv, write_text

PAIR_COLUMNS = ["id_a", "id_b", "distance", "split_a", "split_b", "fold_a", "fold_b", "method"]
DEFAULT_EMBED_SIMILARITY = 0.97
EMBED_K = 16
GROUPS_FILE = "leak/dup_groups.csv"


@dataclass
class LeakReport:
    """What `find_leaks` found and wrote."""

    pairs: pd.DataFrame
    groups: pd.DataFrame
    counts: dict[str, int]
    files: dict[str, Path]
    threshold: float
    folds_note: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    grouping: Any = None  # medalist.workflows.group_search.LeakGroups
    threshold_note: str = ""

    def next_step(self) -> str:
        """The overrides that make group folds from the duplicate groups."""
        return (
            f"cv.scheme=group competition.group_column=dup_group "
            f"competition.groups_csv={GROUPS_FILE}"
        )


def _tables_without_missing_groups(cfg: Config) -> Any:
    """Load the tables; a `groups_csv` this command has not written yet is left out."""
    groups = cfg.competition.groups_csv
    if groups is not None and not cfg.path(groups).is_file():
        cfg = cfg.model_copy(deep=True)
        cfg.competition.groups_csv = None
        if cfg.competition.group_column == "dup_group":
            cfg.competition.group_column = None
    return cfg, load_tables(cfg)


def _train_folds(cfg: Config, train: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
    from medalist.workflows.folds import get_folds

    try:
        return get_folds(cfg, train), None
    except UserError as exc:
        return None, f"folds unavailable ({exc}); fold columns are left empty"


def embed_images(cfg: Config, paths: list[Path], batch_size: int = 64) -> np.ndarray:
    """Unit-length pooled features of the config's backbone (pretrained file if configured)."""
    import torch
    from torch.utils.data import DataLoader

    from medalist.data.dataset import ImageDataset, create_input_norm, create_transform
    from medalist.data.images import ImageSource
    from medalist.models.factory import create_model

    model = create_model(cfg, 0).eval()
    chans = cfg.image_channels
    source = ImageSource(paths, cfg.data.image_size, chans)
    tf = create_transform([], train=False)
    norm = create_input_norm(cfg.data, chans)
    data = ImageDataset(source, np.arange(len(paths)), None, tf)
    feats = []
    with torch.inference_mode():
        for x, _ in DataLoader(data, batch_size=batch_size, num_workers=cfg.data.workers):
            f = model(norm(x)).flatten(1).float()
            feats.append(torch.nn.functional.normalize(f, dim=1).numpy())
    return np.concatenate(feats)


def _pairs_frame(
    found: pd.DataFrame, ids: np.ndarray, splits: np.ndarray, folds: np.ndarray
) -> pd.DataFrame:
    a, b = found["a"].to_numpy(), found["b"].to_numpy()
    return pd.DataFrame(
        {
            "id_a": ids[a],
            "id_b": ids[b],
            "distance": found["distance"].round(6).to_numpy(),
            "split_a": splits[a],
            "split_b": splits[b],
            "fold_a": pd.array(folds[a], dtype="Int64"),
            "fold_b": pd.array(folds[b], dtype="Int64"),
            "method": found["method"].to_numpy(),
        },
        columns=PAIR_COLUMNS,
    )


def _count(pairs: pd.DataFrame, n_train: int, groups: pd.Series) -> dict[str, int]:
    tt = (pairs["split_a"] == "train") & (pairs["split_b"] == "train")
    known = tt & pairs["fold_a"].notna() & pairs["fold_b"].notna()
    sizes = groups.value_counts()
    return {
        "pairs": len(pairs),
        "train_train": int(tt.sum()),
        "cross_fold": int((known & (pairs["fold_a"] != pairs["fold_b"])).sum()),
        "same_fold": int((known & (pairs["fold_a"] == pairs["fold_b"])).sum()),
        "train_test": int((pairs["split_a"] != pairs["split_b"]).sum()),
        "test_test": int(((pairs["split_a"] == "test") & (pairs["split_b"] == "test")).sum()),
        "dup_groups": int((sizes > 1).sum()),
        "rows_in_dup_groups": int(sizes[sizes > 1].sum()),
        "train_images": n_train,
    }


def find_leaks(
    cfg: Config,
    *,
    threshold: float | None = DEFAULT_THRESHOLD,
    embeddings: bool = False,
    embed_similarity: float = DEFAULT_EMBED_SIMILARITY,
    merge_group: str | None = None,
    html_pairs: int = 60,
    progress: Callable[[int], None] | None = None,
) -> LeakReport:
    """Search near duplicates in train and test, write leak/ files, return what was found."""
    check_threshold(threshold)
    if not 0.0 < embed_similarity <= 1.0:
        raise UserError(f"--embed-similarity {embed_similarity}: give a cosine from 0 to 1")
    cfg, tables = _tables_without_missing_groups(cfg)
    train, id_col = tables.train, cfg.competition.id_column
    if merge_group is not None and merge_group not in train.columns:
        have = ", ".join(map(str, train.columns[:10]))
        raise UserError(f"--merge-group {merge_group!r}: no such column in train; it has: {have}")
    paths = list(tables.train_paths)
    test_ids: list[Any] = []
    if tables.test is not None and tables.test_paths is not None:
        check_images_exist(tables.test_paths, "test", "competition.test_image_dir")
        paths += list(tables.test_paths)
        test_ids = tables.test[id_col].tolist()
    n_train = len(train)
    ids = np.array(train[id_col].tolist() + test_ids, dtype=object)
    splits = np.array(["train"] * n_train + ["test"] * len(test_ids), dtype=object)
    train_folds, note = _train_folds(cfg, train)
    folds = np.full(len(ids), -1, np.int64)
    if train_folds is not None:
        folds[:n_train] = train_folds
    fold_values = np.where(folds >= 0, folds, None).astype(object)

    t0 = time.perf_counter()
    fp = fingerprint_images(paths, progress=progress)
    t1 = time.perf_counter()
    near = near_duplicates(fp, threshold)
    found, threshold = near.pairs, near.threshold.value
    found["method"] = "hash"
    t2 = time.perf_counter()
    seconds = {"fingerprint": t1 - t0, "search": t2 - t1}
    vec = None
    if embeddings:
        vec = embed_images(cfg, paths)
        # Each image's EMBED_K nearest embeddings (faiss: exact, or PCA + HNSW at scale), not
        # all pairs: duplicate groups still join through chains of neighbours.
        emb = knn_pairs(vec, EMBED_K, 1.0 - embed_similarity)
        cosine = np.einsum("ij,ij->i", vec[emb[:, 0]], vec[emb[:, 1]])
        extra = pd.DataFrame(
            {"a": emb[:, 0], "b": emb[:, 1], "distance": 1.0 - cosine, "method": "embedding"}
        )
        found = pd.concat([found, extra]).drop_duplicates(["a", "b"], keep="first")
        found = found.sort_values(["distance", "a", "b"], kind="stable").reset_index(drop=True)
        seconds["embeddings"] = time.perf_counter() - t2

    pairs = _pairs_frame(found, ids, splits, fold_values)
    extra_groups = None
    if merge_group is not None:
        extra_groups = train[merge_group].tolist() + [None] * len(test_ids)
    labels = connected_groups(len(ids), found[["a", "b"]].to_numpy(), extra_groups)
    groups = pd.DataFrame({id_col: ids[:n_train], "dup_group": labels[:n_train]})
    from medalist.workflows.group_search import leak_groups

    dups = set(zip(found["a"].tolist(), found["b"].tolist(), strict=True))
    grouping = leak_groups(cfg, train, paths, fp, train_folds, embedding=vec, duplicates=dups)
    out = cfg.root / "leak"
    page = render_pairs_html(pairs, found, paths, threshold, html_pairs, grouping.html)
    files = {
        "pairs_csv": write_csv(out / "pairs.csv", pairs),
        "groups_csv": write_csv(out / "dup_groups.csv", groups),
        "pairs_html": write_text(out / "pairs.html", page),
        **grouping.files,
    }
    counts = _count(pairs, n_train, groups["dup_group"])
    return LeakReport(
        pairs, groups, counts, files, threshold, note, seconds, grouping, near.threshold.note
    )


def _thumb_uri(path: Path, size: int = 128) -> str:

    from medalist.data.images import eight_bit, open_image

    with open_image(path) as img:
        img = eight_bit(img).convert("RGB")
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>medalist leak: closest pairs</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:.35em .7em;border-bottom:1px solid #ddd;
vertical-align:middle;text-align:left}img{width:128px;image-rendering:pixelated;
border:1px solid #ccc}.cross{color:#b00;font-weight:600}
</style></head><body>
<h1>Near-duplicate pairs</h1>
<p>{{ total }} pair(s) at distance &le; {{ threshold }} (0 is the same picture: blurred
thumbnails compared after the best small shift). The {{ rows|length }} closest are shown.</p>
<table><tr><th>#</th><th>A</th><th>B</th><th>distance</th><th>where</th></tr>
{% for r in rows %}<tr><td>{{ loop.index }}</td>
<td><img src="{{ r.img_a }}" alt="{{ r.id_a }}"><br>{{ r.id_a }}</td>
<td><img src="{{ r.img_b }}" alt="{{ r.id_b }}"><br>{{ r.id_b }}</td>
<td>{{ "%.4f"|format(r.distance) }} ({{ r.method }})</td>
<td class="{{ 'cross' if r.cross else '' }}">{{ r.where }}</td></tr>
{% endfor %}</table>{{ extra }}</body></html>
"""


def render_pairs_html(
    pairs: pd.DataFrame,
    found: pd.DataFrame,
    paths: list[Path],
    threshold: float,
    limit: int,
    extra: str = "",
) -> str:
    """A self-contained page of side-by-side thumbnails of the closest pairs (and `extra`,
    already rendered HTML: the cross-fold neighbours)."""
    import jinja2
    import markupsafe

    rows = []
    for k in range(min(limit, len(pairs))):
        p = pairs.iloc[k]
        a, b = int(found["a"].iloc[k]), int(found["b"].iloc[k])
        fa, fb = p["fold_a"], p["fold_b"]
        cross = p["split_a"] != p["split_b"] or (pd.notna(fa) and pd.notna(fb) and fa != fb)
        where_a = f"{p['split_a']}" + (f" fold {fa}" if pd.notna(fa) else "")
        where_b = f"{p['split_b']}" + (f" fold {fb}" if pd.notna(fb) else "")
        rows.append(
            {
                "id_a": p["id_a"],
                "id_b": p["id_b"],
                "img_a": _thumb_uri(paths[a]),
                "img_b": _thumb_uri(paths[b]),
                "distance": float(p["distance"]),
                "method": p["method"],
                "cross": bool(cross),
                "where": f"{where_a} / {where_b}",
            }
        )
    env = jinja2.Environment(autoescape=True)
    return env.from_string(PAGE).render(
        rows=rows, total=len(pairs), threshold=threshold, extra=markupsafe.Markup(extra)
    )
