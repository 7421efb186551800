"""The three project layouts of `medalist new --layout` (scripts, notebooks, or both).

- script: src/train.py and src/predict.py (files to edit, calling medalist), configs/,
  models/, data/, scripts/sweep.sh (several configs, one after the other);
- notebook: notebook/train.ipynb and notebook/test.ipynb, calling medalist's Python API;
- hybrid: training from src/ and scripts/, EDA in notebook/eda.ipynb, evaluation in
  notebook/test.ipynb.

The .py files beside this one are the templates for src/; they are modules of this package,
so they ship with it and ruff checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from medalist.errors import UserError

LAYOUTS = ("script", "notebook", "hybrid")
LAYOUT_DIRS = {
    "script": ("src", "scripts"),
    "notebook": ("notebook",),
    "hybrid": ("src", "scripts", "notebook"),
}

SWEEP = """\
#!/usr/bin/env bash
# Train several configs one after the other; each run gets its own folder under runs/.
#   scripts/sweep.sh                          every configs/*.yaml
#   scripts/sweep.sh configs/a.yaml configs/b.yaml
#   PYTHON=.venv/bin/python scripts/sweep.sh  another interpreter
# Compare the runs afterwards with `medalist runs` (or `medalist compare A B`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python_bin="${PYTHON:-python}"
if [[ $# -gt 0 ]]; then
  configs=("$@")
else
  configs=(configs/*.yaml)
fi

for config in "${configs[@]}"; do
  echo "== ${config}"
  "${python_bin}" src/train.py "${config}"
done

# One key instead of whole files, e.g. the learning rate:
#   for lr in 3e-4 1e-3 3e-3; do
#     "${python_bin}" src/train.py configs/baseline.yaml "train.lr=${lr}"
#   done
"""


def check_layout(layout: str) -> str:
    """`layout` if it is one of LAYOUTS, else a UserError naming them."""
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r}: use {', '.join(LAYOUTS)}")
    return layout


def layout_dirs(layout: str) -> tuple[str, ...]:
    """The folders a layout adds to the project."""
    return LAYOUT_DIRS[check_layout(layout)]


def write_layout(dest: Path, layout: str, write: Callable[[Path, str], None]) -> list[Path]:
    """Write the layout's files into `dest` (its folders exist) through `write`; returns them."""
    import nbformat

    from medalist.workflows.layout_templates import notebooks

    check_layout(layout)
    files: dict[str, str] = {}
    if layout in ("script", "hybrid"):
        for name in ("train.py", "predict.py"):
            files[f"src/{name}"] = resources.files(__name__).joinpath(name).read_text()
        files["scripts/sweep.sh"] = SWEEP
    books = {
        "notebook": {"train": notebooks.train_notebook, "test": notebooks.eval_notebook},
        "hybrid": {"eda": notebooks.eda_notebook, "test": notebooks.eval_notebook},
    }.get(layout, {})
    for stem, make in books.items():
        nb = make()
        nbformat.validate(nb)
        files[f"notebook/{stem}.ipynb"] = nbformat.writes(nb)
    written = []
    for rel, text in files.items():
        path = dest / rel
        write(path, text)
        if path.suffix == ".sh":
            path.chmod(0o755)
        written.append(path)
    return written


def readme_section(layout: str) -> str:
    """How to run a project of this layout, for its readme."""
    script = """\
```
python src/train.py configs/baseline.yaml                # every fold, CV, runs/<name>/
python src/train.py configs/baseline.yaml train.lr=3e-4  # any key overridden
scripts/sweep.sh configs/a.yaml configs/b.yaml           # several configs in a row
python src/predict.py runs/<name>                        # submission.csv, checked
```
`src/train.py` and `src/predict.py` are yours to edit; they call medalist's Python API."""
    notebook = """\
```
pip install jupyterlab      # once, if Jupyter is not installed
jupyter lab notebook/
```
Run `notebook/train.ipynb` (it trains every fold of `configs/baseline.yaml`), then
`notebook/test.ipynb` (the run's CV, its errors, its checked submission)."""
    hybrid = """\
Explore in `notebook/eda.ipynb`, train from the command line, evaluate in
`notebook/test.ipynb`:

""" + script.split("`src/train.py` and")[0]
    body = {"script": script, "notebook": notebook, "hybrid": hybrid}[check_layout(layout)]
    return f"## How to run ({layout} layout)\n\n{body.rstrip()}\n"
