"""Groupings the user did not name, for `medalist new` (the config's group folds) and
`medalist leak` (its files, its lines and a section of its page): see medalist.data.groups.

`new` writes the strongest grouping as the config's group column, with the figures that make
it strong in a comment and the other groupings as commented alternatives, and every
grouping's column to ``configs/groups.csv``, which ``competition.groups_csv`` joins to train by
id. `leak` writes ``leak/groups.csv`` (the same columns), ``leak/group_candidates.csv`` (the
figures) and ``leak/neighbours.csv``: each training image's nearest neighbour in another fold,
the closest of which its page shows beside the near duplicates.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.config import Config
from medalist.data.groups import (
    GroupReport,
    find_groups,
    nearest_neighbours,
    read_metadata,
    scene_descriptors,
    suggest_groups,
)
from medalist.data.leak import Fingerprints, knn_pairs
from medalist.data.tables import IMAGE_EXTS
from medalist.errors import UserError
from medalist.io import write_csv

GROUPS_CSV = "configs/groups.csv"
LEAK_GROUPS_CSV = "leak/groups.csv"
NEIGHBOURS_SHOWN = 24
NEIGHBOURS_K = 16
CLASS_TYPES = ("auto", "multiclass", "binary")


def group_scheme(scheme: str) -> str:
    """The group scheme that replaces `scheme`: stratified ones keep their stratification."""
    return "stratified_group" if scheme.startswith("stratified") else "group"


# --------------------------------------------------------------------------------------------
# medalist new


@dataclass
class NewProjectGroups:
    """What `medalist new` found: the report, the grouping it writes and the groups table."""

    report: GroupReport
    table: pd.DataFrame | None
    scheme: str | None  # the cv.scheme to write; None: keep the one inferred without groups

    @property
    def column(self) -> str | None:
        best = self.report.best
        return best.column if best is not None and self.scheme else None

    def why(self) -> str:
        """One line for `medalist new`'s report."""
        best = self.report.best
        return f"{best.how}: {best.figures()}" if best else ""

    def yaml_lines(self) -> list[str]:
        """The config's group_column and groups_csv lines, with the figures as comments."""
        lines: list[str] = []
        best = self.report.best
        if best is not None:
            lines += _comment(
                f"Group folds by {best.column}, {best.how}. Found by medalist new in "
                f"{self.report.scored} training images: {best.figures()}."
            )
        others = [c for c in self.report.candidates if c is not best]
        if others and best is None:
            lines += _comment(
                "No grouping in the images is strong enough for group folds; found, and left "
                "out (medalist leak writes their columns to leak/groups.csv):"
            )
        elif others:
            lines += _comment("Other groupings found (set group_column to one of them):")
        for c in others:
            lines += _comment(f"{c.column}: {c.verdict()}; {c.figures()}", "    ")
        lines.append(f"  group_column: {self.column or 'null'}")
        if self.table is not None:
            lines.append(f"  groups_csv: {GROUPS_CSV}")
        return lines


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, 98, initial_indent="  # " + indent, subsequent_indent="  # " + indent + "  "
    )


def suggest_for_new(
    data_dir: Path,
    train: pd.DataFrame,
    test_ids: Sequence[object],
    comp: dict[str, Any],
    scheme: str,
    n_splits: int = 5,
) -> NewProjectGroups | None:
    """The groupings of a competition folder, from the values `medalist new` inferred.

    `comp` holds the competition keys (image_dir, image_column, image_ext, id_column,
    target_column, test_image_dir, target_type); None when the images can't be read.
    """
    image_dir = data_dir / str(comp["image_dir"])
    train = train.drop_duplicates(comp["id_column"])  # long formats: a row per image and class
    column = comp.get("image_column") or comp["id_column"]
    names = [_file_name(v, comp) for v in train[column].astype(str)]
    paths = [image_dir / n for n in names]
    test_dir = comp.get("test_image_dir")
    test_paths = [data_dir / str(test_dir) / _file_name(str(v), comp) for v in test_ids]
    target = comp.get("target_column")
    classify = comp.get("task", "classify") == "classify" and isinstance(target, str)
    classify = classify and comp.get("target_type") not in ("regression", "multilabel")
    try:
        report = suggest_groups(
            names,
            paths,
            target=train[target].tolist() if classify and target in train else None,
            n_splits=n_splits,
            test_paths=[p for p in test_paths if p.is_file()] if test_dir is not None else (),
        )
    except UserError:  # an unreadable image: `medalist leak` names it; the config stays usable
        return None
    if not report.candidates:
        return None
    best = report.best
    ids = train[comp["id_column"]].tolist()
    table = report.table(ids, comp["id_column"]) if best is not None else None
    return NewProjectGroups(report, table, group_scheme(scheme) if best is not None else None)


def _file_name(value: str, comp: dict[str, Any]) -> str:
    if comp.get("image_column") or value.lower().endswith(IMAGE_EXTS):
        return value
    return value + str(comp.get("image_ext") or "")


# --------------------------------------------------------------------------------------------
# medalist leak


@dataclass
class LeakGroups:
    """Groupings and cross-fold neighbours found by `medalist leak`."""

    report: GroupReport
    neighbours: pd.DataFrame  # id_a, id_b, distance, fold_a, fold_b, group_a, group_b
    files: dict[str, Path] = field(default_factory=dict)
    html: str = ""
    counts: dict[str, float] = field(default_factory=dict)

    def lines(self, scheme: str) -> list[str]:
        """What the CLI prints: each grouping, then how to use the strongest."""
        out = []
        for c in self.report.candidates:
            out.append(f"grouping {c.column} ({c.verdict()}): {c.figures()}")
        best = self.report.best
        if best is not None:
            out.append(
                f"group folds by {best.column}: cv.scheme={group_scheme(scheme)} "
                f"competition.group_column={best.column} "
                f"competition.groups_csv={LEAK_GROUPS_CSV}"
            )
        if "nn_other_fold" in self.counts:
            out.append(
                f"{self.counts['nn_other_fold']:.0%} of training images have their nearest "
                f"neighbour ({self.counts['by']}) in another fold"
                + (
                    f", {self.counts['nn_other_fold_same_group']:.0%} in another fold and the "
                    f"same {best.column}"
                    if best is not None
                    else ""
                )
            )
        return out


def leak_groups(
    cfg: Config,
    train: pd.DataFrame,
    paths: Sequence[Path],
    fp: Fingerprints,
    folds: np.ndarray | None,
    *,
    embedding: np.ndarray | None = None,
    duplicates: set[tuple[int, int]] | None = None,
) -> LeakGroups:
    """Groupings of the training images (the first len(train) of `paths` and `fp`; the rest
    are test images) and their nearest neighbours across folds; writes the leak/ files."""
    comp = cfg.competition
    n_train, id_column, out = len(train), comp.id_column, cfg.root / "leak"
    image_dir = cfg.path(comp.image_dir)
    x = scene_descriptors(fp)
    report = find_groups(
        [_relative_name(p, image_dir) for p in paths[:n_train]],
        x[:n_train],
        np.arange(n_train),
        meta=read_metadata(list(paths[:n_train])),
        target=_class_target(cfg, train),
        n_splits=cfg.cv.n_splits,
        test_x=x[n_train:] if len(x) > n_train else None,
    )
    ids = train[id_column].to_numpy(dtype=object)
    result = LeakGroups(report, pd.DataFrame())
    result.files["group_candidates_csv"] = write_csv(out / "group_candidates.csv", report.summary())
    if any(c.labels is not None for c in report.candidates):
        table = report.table(ids.tolist(), id_column)
        result.files["inferred_groups_csv"] = write_csv(out / "groups.csv", table)
    if folds is not None and (folds >= 0).all() and n_train > 1:
        by = "scene descriptors" if embedding is None else "backbone embeddings"
        vec = x[:n_train] if embedding is None else np.ascontiguousarray(embedding[:n_train])
        _add_neighbours(result, vec, by, ids, folds, paths, duplicates or set(), out)
    return result


def _class_target(cfg: Config, train: pd.DataFrame) -> list[object] | None:
    """The classes, for ruling out groupings that repeat them; None for other targets."""
    comp = cfg.competition
    single = isinstance(comp.target_column, str) and comp.target_column in train.columns
    if comp.task != "classify" or not single or comp.target_type not in CLASS_TYPES:
        return None
    values = train[comp.target_column]
    if pd.api.types.is_float_dtype(values) and bool((values % 1 != 0).any()):
        return None  # a regression target that `auto` reads as numbers
    return values.tolist()


def _add_neighbours(
    result: LeakGroups,
    vec: np.ndarray,
    by: str,
    ids: np.ndarray,
    folds: np.ndarray,
    paths: Sequence[Path],
    duplicates: set[tuple[int, int]],
    out: Path,
) -> None:
    """Cross-fold neighbours: the csv, the counts the CLI prints, the page section."""
    best = result.report.best
    group = best.labels if best is not None and best.labels is not None else None
    near = cross_fold_neighbours(vec, folds)
    result.neighbours = _neighbour_frame(near, ids, folds, group)
    result.files["neighbours_csv"] = write_csv(out / "neighbours.csv", result.neighbours)
    nn = nearest_neighbours(vec)
    other = folds[nn] != folds
    result.counts = {"nn_other_fold": float(other.mean()), "by": by}
    if group is not None:
        same = np.asarray(group)[nn] == np.asarray(group)
        result.counts["nn_other_fold_same_group"] = float((other & same).mean())
    is_dup = [(int(a), int(b)) in duplicates for a, b in zip(near.a, near.b, strict=True)]
    shown = near[~np.array(is_dup, dtype=bool)].head(NEIGHBOURS_SHOWN)
    result.html = render_neighbours_html(shown, ids, folds, group, paths, result, by)


def cross_fold_neighbours(x: np.ndarray, folds: np.ndarray) -> pd.DataFrame:
    """Each image's nearest neighbour in another fold (a, b, cosine distance), closest first.

    From each image's NEIGHBOURS_K nearest (faiss, through the leak search's kNN); an image
    whose neighbours are all in its own fold has no row.
    """
    pairs = knn_pairs(np.ascontiguousarray(x, np.float32), NEIGHBOURS_K, 2.0)
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])
    b = np.concatenate([pairs[:, 1], pairs[:, 0]])
    keep = folds[a] != folds[b]
    a, b = a[keep], b[keep]
    d = 1.0 - np.einsum("ij,ij->i", x[a], x[b])
    order = np.lexsort((d, a))
    a, b, d = a[order], b[order], d[order]
    first = np.r_[True, a[1:] != a[:-1]] if len(a) else np.zeros(0, bool)
    near = pd.DataFrame({"a": a[first], "b": b[first], "distance": d[first]})
    lo, hi = near[["a", "b"]].min(axis=1), near[["a", "b"]].max(axis=1)
    near = near.assign(a=lo, b=hi).drop_duplicates(["a", "b"])
    return near.sort_values(["distance", "a", "b"], kind="stable").reset_index(drop=True)


def _neighbour_frame(
    near: pd.DataFrame, ids: np.ndarray, folds: np.ndarray, group: np.ndarray | None
) -> pd.DataFrame:
    a, b = near["a"].to_numpy(), near["b"].to_numpy()
    frame = pd.DataFrame(
        {
            "id_a": ids[a],
            "id_b": ids[b],
            "distance": near["distance"].round(6).to_numpy(),
            "fold_a": folds[a],
            "fold_b": folds[b],
        }
    )
    if group is not None:
        frame["group_a"], frame["group_b"] = np.asarray(group)[a], np.asarray(group)[b]
    return frame


NEIGHBOURS_PAGE = """
<h2>Nearest neighbours across folds</h2>
<p>{{ summary }}</p>
{% for c in candidates %}<p class="{{ 'cross' if c.strong and c.usable else '' }}">
grouping <b>{{ c.column }}</b> ({{ c.verdict() }}): {{ c.figures() }}. From {{ c.how }}.</p>
{% endfor %}
<table><tr><th>#</th><th>A</th><th>B</th><th>distance</th><th>folds</th><th>group</th></tr>
{% for r in rows %}<tr><td>{{ loop.index }}</td>
<td><img src="{{ r.img_a }}" alt="{{ r.id_a }}"><br>{{ r.id_a }}</td>
<td><img src="{{ r.img_b }}" alt="{{ r.id_b }}"><br>{{ r.id_b }}</td>
<td>{{ "%.4f"|format(r.distance) }}</td><td>{{ r.fold_a }} / {{ r.fold_b }}</td>
<td class="{{ 'cross' if r.same_group else '' }}">{{ r.group }}</td></tr>
{% endfor %}</table>
"""


def render_neighbours_html(
    near: pd.DataFrame,
    ids: np.ndarray,
    folds: np.ndarray,
    group: np.ndarray | None,
    paths: Sequence[Path],
    found: LeakGroups,
    by: str,
) -> str:
    """The page section: the groupings, then the closest pairs of images in different folds."""
    import jinja2

    from medalist.workflows.leak import _thumb_uri

    rows = []
    for a, b, d in zip(near["a"], near["b"], near["distance"], strict=True):
        ga, gb = (None, None) if group is None else (group[a], group[b])
        rows.append(
            {
                "id_a": ids[a],
                "id_b": ids[b],
                "img_a": _thumb_uri(paths[a]),
                "img_b": _thumb_uri(paths[b]),
                "distance": float(d),
                "fold_a": int(folds[a]),
                "fold_b": int(folds[b]),
                "same_group": ga is not None and ga == gb,
                "group": "-" if ga is None else (f"both {ga}" if ga == gb else f"{ga} / {gb}"),
            }
        )
    counts = found.counts
    summary = (
        f"Each training image's nearest neighbour by {by} in another fold; the "
        f"{len(rows)} closest pairs that are not near duplicates are shown. Images this close "
        "in different folds share a scene, a patient or a source: the folds share them. "
        f"{counts['nn_other_fold']:.0%} of the training images have their nearest neighbour "
        "in another fold"
        + (
            f", {counts['nn_other_fold_same_group']:.0%} in another fold and the same group."
            if "nn_other_fold_same_group" in counts
            else "."
        )
    )
    env = jinja2.Environment(autoescape=True)
    return env.from_string(NEIGHBOURS_PAGE).render(
        rows=rows, summary=summary, candidates=found.report.candidates
    )


def _relative_name(path: Path, image_dir: Path) -> str:
    try:
        return path.relative_to(image_dir).as_posix()
    except ValueError:
        return path.name
