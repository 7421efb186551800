"""`medalist review`: a Markdown write-up of the competition from the run ledger.

The timeline of runs (oldest first), what each changed against the previous finished run,
its CV and LB, which changes helped beyond noise (`medalist compare`'s method), how well CV
tracked the leaderboard, and the final choice (`medalist select`'s rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medalist.analysis.compare import (
    METHOD,
    NEUTRAL_PREFIXES,
    Comparison,
    comparable_settings,
    compare_runs,
    config_changes,
)
from medalist.errors import UserError
from medalist.io import write_text
from medalist.runs.rundir import RunDir
from medalist.workflows.select import Selection, lb_summary, run_table, select_final

MAX_CHANGES_SHOWN = 4


@dataclass
class Review:
    path: Path
    text: str
    comparisons: list[Comparison]
    selection: Selection


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return f"{float(x):.{digits}f}"


def _value(v: Any) -> str:
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _changes_text(changes: list[tuple[str, Any, Any]]) -> str:
    training = [c for c in changes if not c[0].startswith(NEUTRAL_PREFIXES)]
    shown_changes = training or changes
    if not shown_changes:
        return "nothing (same config)"
    shown = ", ".join(
        f"`{k}` {_value(a)} -> {_value(b)}" for k, a, b in shown_changes[:MAX_CHANGES_SHOWN]
    )
    more = len(shown_changes) - MAX_CHANGES_SHOWN
    text = shown + (f" (+{more} more)" if more > 0 else "")
    return text + (" **(several changes at once)**" if len(training) > 1 else "")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return out


def write_review(project: Path) -> Review:
    """Write <project>/review.md and return it with the comparisons and the selection."""
    project = Path(project)
    selection = select_final(project)
    table = run_table(project)
    comparisons: dict[str, Comparison] = {}
    changes: dict[str, list[tuple[str, Any, Any]]] = {}
    for prev, cur in zip(table["run"][:-1], table["run"][1:], strict=True):
        a, b = project / "runs" / prev, project / "runs" / cur
        changes[cur] = config_changes(*comparable_settings(RunDir(a), RunDir(b)))
        try:
            comparisons[cur] = compare_runs(a, b)
        except UserError:  # an unfinished run has no folds to compare
            continue
    lb = lb_summary(project, plot=True)
    name = project.resolve().name
    lines = [f"# Competition review: {name}", ""]
    metric = str(table["metric"].iloc[0])
    direction = "lower" if (table["higher_is_better"] == False).any() else "higher"  # noqa: E712
    n_done = int(table["cv"].notna().sum())
    lines += [
        f"{len(table)} run(s), {n_done} finished; metric **{metric}** ({direction} is better). "
        "Written by `medalist review` from the run directories and leaderboard.csv.",
        "",
        "## Timeline",
        "",
    ]
    rows = []
    for i, r in table.iterrows():
        c = comparisons.get(r["run"])
        cv = f"{_fmt(r['cv'])} +- {_fmt(r['cv_std'])}"
        if pd.notna(r["seed_std"]):
            cv += f" (seeds {int(r['n_seeds'])}, std {_fmt(r['seed_std'])})"
        rows.append(
            [
                str(i + 1),
                str(r["started"])[:16].replace("T", " ") or "-",
                f"`{r['run']}`",
                "first run" if i == 0 else _changes_text(changes[r["run"]]),
                cv,
                _fmt(r["public"]),
                _fmt(r["private"]),
                c.verdict if c else "-",
            ]
        )
    lines += _md_table(
        ["#", "started", "run", "changed vs previous", "CV", "public LB", "private LB", "verdict"],
        rows,
    )
    lines += ["", "## What helped beyond noise", ""]
    helped = [c for c in comparisons.values() if c.verdict == "better"]
    hurt = [c for c in comparisons.values() if c.verdict == "worse"]
    for c in helped:
        lines.append(
            f"- `{c.name_b}` beat `{c.name_a}` by {c.mean_diff:+.4f} "
            f"({'; '.join(c.reasons)}): {_changes_text(c.changes)}"
        )
    for c in hurt:
        lines.append(
            f"- `{c.name_b}` was worse than `{c.name_a}` by {c.mean_diff:+.4f}: "
            f"{_changes_text(c.changes)}"
        )
    if not helped and not hurt:
        lines.append("- No change moved the CV beyond noise.")
    noise = [c.name_b for c in comparisons.values() if c.verdict == "within noise"]
    if noise:
        lines.append(f"- Within noise: {', '.join(f'`{n}`' for n in noise)}.")
    lines += ["", METHOD, "", "## CV against the leaderboard", ""]
    pub = lb.public
    if pub["n"]:
        lines.append(
            f"{pub['n']} run(s) with a public score: Pearson {_fmt(pub['pearson'], 2)}, "
            f"Spearman {_fmt(pub['spearman'], 2)}."
        )
        if lb.plot is not None:
            lines += ["", f"![CV against LB]({lb.plot.relative_to(project).as_posix()})"]
    else:
        lines.append("No leaderboard scores recorded (`medalist lb RUN SCORE`).")
    lines += ["", "## Final choice", "", selection.rule, ""]
    for k, p in enumerate(selection.picks, 1):
        mark = "" if p.reproducible else f" **not reproducible: {p.missing}**"
        lines.append(
            f"{k}. `{p.run}`: {p.reason}; CV {_fmt(p.cv)}, public LB {_fmt(p.public)}{mark}"
        )
    lines += [f"- {n}" for n in selection.notes]
    text = "\n".join(lines) + "\n"
    path = write_text(project / "review.md", text)
    return Review(path, text, list(comparisons.values()), selection)
