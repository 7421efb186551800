"""What `medalist new` tells the user: the `ProjectReport` of what it made and read from the
data, and `render_report`, the plain lines the CLI prints (inferred keys, what to check, next)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

LAYOUT_NOTES = {
    "script": "src/train.py, src/predict.py, scripts/sweep.sh",
    "notebook": "notebook/train.ipynb, notebook/test.ipynb",
    "hybrid": "notebook/eda.ipynb, src/train.py, scripts/sweep.sh, notebook/test.ipynb",
}


@dataclass
class ProjectReport:
    """What `create_project` made and what it read from the data."""

    root: Path
    config_path: Path
    inferred: dict[str, str] = field(default_factory=dict)  # config key -> value as written
    unresolved: list[str] = field(default_factory=list)  # one sentence per key to check
    reasons: dict[str, str] = field(default_factory=dict)  # config key -> where it came from
    data_dir: Path | None = None
    data_linked: bool = True  # False: no symlink possible, the config holds absolute paths
    layout: str = "script"
    git: bool = False  # True: `git init` made the project a repository


def render_report(report: ProjectReport) -> str:
    """The lines the CLI prints after `medalist new` (plain text, no markup)."""
    lines = [f"Created {report.root}"]
    config = _relative(report.config_path, report.root)
    lines.append(f"  config  {config}")
    if report.data_linked:
        lines.append(f"  data    data -> {report.data_dir}")
    else:
        lines.append(
            f"  data    no link possible here; the config points at {report.data_dir} directly"
        )
    lines.append(f"  layout  {report.layout}: {LAYOUT_NOTES[report.layout]}")
    if report.git:
        lines.append("  git     a new repository, nothing committed: commit before each run")
    if report.inferred:
        lines.append("Inferred from the data:")
        width = max(len(k) for k in report.inferred)
        for key, value in report.inferred.items():
            why = report.reasons.get(key)
            lines.append(f"  {key:<{width}}  {value}" + (f"  ({why})" if why else ""))
    if report.unresolved:
        lines.append(f"Check these (marked TODO in {config}):")
        lines.extend(f"  - {sentence}" for sentence in report.unresolved)
    else:
        lines.append("Nothing left to check: every key was inferred.")
    lines.append("Next:")
    lines.append(f"  cd {shlex.quote(str(report.root))}")
    lines.append(f"  medalist folds {config}")
    if report.layout == "notebook":
        lines.append("  jupyter lab notebook/train.ipynb")
    else:
        lines.append(f"  python src/train.py {config}     (or: medalist train {config})")
    return "\n".join(lines)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
