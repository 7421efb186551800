"""`medalist report`: one self-contained HTML page for a run, or a comparison of several.

The page embeds every image as a base64 data URI and carries its own CSS: it opens from disk
with no server and no network. It is rendered from `templates/report.html.j2` by jinja2 with
autoescaping on, so nothing from a config or a file name can inject markup.

A comparison highlights the config keys that differ and flags it when more than one setting
that affects the model differs (change one thing at a time).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from medalist.analysis.run_analysis import analyse_run, read_histories
from medalist.config import flatten
from medalist.errors import UserError
from medalist.io import read_ids_csv, read_json, write_text
from medalist.runs import layout
from medalist.runs.rundir import RunDir, open_run_dir

# Keys that don't change what a model learns: a difference here doesn't count as a change.
BOOKKEEPING = ("track.", "predict.", "data.num_workers", "data.cache", "train.threads")
PLOT_TITLES = {
    "learning_curves.png": "learning curves",
    "confusion_matrix.png": "confusion matrix",
    "pr_curves.png": "precision-recall curves",
    "per_class.png": "per-class score against class frequency",
    "worst_predictions.png": "highest-loss out-of-fold predictions",
}
MAX_NAME = 100


def png_data_uri(data: bytes) -> str:
    """A PNG as a data: URI for an <img src>."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def fmt(value: Any, digits: int = 4) -> str:
    """A cell as text: floats to `digits` significant figures, None and NaN as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def frame_table(df: pd.DataFrame, limit: int | None = None) -> dict[str, Any]:
    """A DataFrame as {"columns", "rows"} of strings for the template (which escapes them)."""
    df = df if limit is None else df.head(limit)
    return {
        "columns": [str(c) for c in df.columns],
        "rows": [[fmt(v) for v in row] for row in df.itertuples(index=False)],
    }


def _read_csv(run: RunDir, rel: str) -> pd.DataFrame | None:
    f = run.file(rel)
    return read_ids_csv(f) if f.is_file() else None


def fold_scores(run: RunDir, n_splits: int) -> dict[int, float]:
    """fold -> score: scores.json's (averaged over seeds) once complete, else each finished
    fold's result.json."""
    scores = run.scores() or {}
    if len(scores.get("folds") or []) == n_splits:
        return {k: float(s) for k, s in enumerate(scores["folds"])}
    out = {}
    for k in range(n_splits):
        f = run.fold_dir(k) / layout.RESULT
        if f.is_file():
            out[k] = float(read_json(f)["score"])
    return out


def run_context(run: RunDir, diagnosis: dict[str, Any], label: str) -> dict[str, Any]:
    """Everything the template shows about one run."""
    config_text = run.file(layout.CONFIG).read_text()
    provenance = flatten(run.provenance())
    scores = run.scores() or {}
    per_fold = fold_scores(run, diagnosis["n_splits"])
    plots = [
        {
            "title": PLOT_TITLES.get(Path(p).name, Path(p).stem),
            "file": p,
            "src": png_data_uri(run.file(p).read_bytes()),
        }
        for p in diagnosis["plots"]
        if run.file(p).is_file()
    ]
    tables = []
    for rel, title, limit in (
        ("analysis/per_class.csv", "per-class scores", None),
        ("analysis/confused_pairs.csv", "most confused pairs", 15),
        ("analysis/worst_predictions.csv", "highest-loss predictions", 16),
    ):
        df = _read_csv(run, rel)
        if df is not None:
            tables.append({"title": title, "file": rel, **frame_table(df, limit)})
    return {
        "label": label,
        "name": run.name,
        "path": str(run.path),
        "diagnosis": diagnosis,
        "config_text": config_text,
        "provenance": [(k, fmt(v)) for k, v in provenance.items()],
        "scores": scores,
        "fold_scores": [(k, fmt(s)) for k, s in per_fold.items()],
        "cv": {
            "mean": fmt(scores.get("mean")),
            "std": fmt(scores.get("std")),
            "oof": fmt(scores.get("oof")),
        },
        "plots": plots,
        "tables": tables,
    }


def config_differences(configs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flattened keys whose values differ between configs, each marked whether it counts."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat))
    out = []
    for key in keys:
        values = [f.get(key, "(absent)") for f in flat]
        if any(v != values[0] for v in values[1:]):
            out.append(
                {
                    "key": key,
                    "values": [fmt(v) for v in values],
                    "counts": not key.startswith(BOOKKEEPING),
                }
            )
    return out


def comparison_context(runs: list[RunDir], labels: list[str], metric: str) -> dict[str, Any]:
    """Config differences, the one-change flag, per-fold scores side by side, overlaid curves."""
    from medalist.plots import compare_curves_png

    configs = [yaml.safe_load(r.file(layout.CONFIG).read_text()) or {} for r in runs]
    diffs = config_differences(configs)
    changed = [d["key"] for d in diffs if d["counts"]]
    n_splits = max(int(c.get("cv", {}).get("n_splits", 0)) for c in configs)
    scores = [fold_scores(r, n_splits) for r in runs]
    rows = [[f"fold {k}", *[fmt(s.get(k)) for s in scores]] for k in range(n_splits)]
    for stat in ("mean", "std"):
        rows.append([stat, *[fmt((r.scores() or {}).get(stat)) for r in runs]])
    metrics = {(r.scores() or {}).get("metric", metric) for r in runs}
    histories = {label: read_histories(r, n_splits) for label, r in zip(labels, runs, strict=True)}
    return {
        "diffs": diffs,
        "changed": changed,
        "one_change": len(changed) <= 1,
        "fold_table": {"columns": ["fold", *labels], "rows": rows},
        "same_metric": len(metrics) == 1,
        "curves": png_data_uri(compare_curves_png(histories, metric)),
    }


def report_path(runs: list[RunDir], labels: list[str]) -> Path:
    """RUN/report.html for one run; `<project>/reports/<a>-vs-<b>.html` for a comparison."""
    if len(runs) == 1:
        return runs[0].file("report.html")
    name = "-vs-".join(label.replace("/", "_") for label in labels)
    if len(name) > MAX_NAME:
        name = f"{'-vs-'.join(labels[:2])}-and-{len(labels) - 2}-more".replace("/", "_")
    return runs[0].project / "reports" / f"{name}.html"


def render_html(context: dict[str, Any]) -> str:
    """The report page from the packaged jinja2 template (autoescaped)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("medalist.analysis", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**context)


def write_report(run_dirs: Sequence[Path], out: Path | None = None) -> Path:
    """Analyse each run (fresh verdicts and plots), then write one self-contained HTML page."""
    if not run_dirs:
        raise UserError("give one or more run directories, e.g. medalist report runs/base")
    if out is not None and (out.is_dir() or out.suffix.lower() not in (".html", ".htm")):
        what = "is a folder" if out.is_dir() else "is not an .html file"
        raise UserError(f"--out {out} {what}: give the page's file name, e.g. report.html")
    runs = [open_run_dir(p) for p in run_dirs]
    seen: set[Path] = set()
    for r in runs:
        if r.path in seen:
            raise UserError(f"run {r.path} is given twice: compare different runs")
        seen.add(r.path)
    names = [r.name for r in runs]
    labels = [r.name if names.count(r.name) == 1 else f"{r.project.name}/{r.name}" for r in runs]
    diagnoses = [analyse_run(r.path) for r in runs]
    contexts = [
        run_context(r, d, label) for r, d, label in zip(runs, diagnoses, labels, strict=True)
    ]
    metric = diagnoses[0]["metric"]
    comparison = comparison_context(runs, labels, metric) if len(runs) > 1 else None
    title = labels[0] if len(runs) == 1 else " vs ".join(labels)
    from datetime import datetime

    html = render_html(
        {
            "title": title,
            "runs": contexts,
            "comparison": comparison,
            "metric": metric,
            "generated": datetime.now().strftime("%Y-%m-%d %H:%M"),
        }
    )
    path = out or report_path(runs, labels)
    write_text(path, html)
    return path
