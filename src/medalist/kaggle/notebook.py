"""The offline inference notebook and its kernel-metadata.json, as `medalist package` writes them.

The notebook holds no medalist code: it installs medalist from the package's wheels and calls
`describe_test_set` and `predict_offline` of `medalist.kaggle.runtime`, which run on Kaggle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medalist.io import write_json, write_text


def _runs_markdown(manifest: dict[str, Any]) -> str:
    lines = ["| run | folds | TTA | CV | weight |", "|---|---|---|---|---|"]
    for e in manifest["runs"]:
        cv = e.get("cv") or {}
        score = (
            f"{cv['metric']} {cv['mean']:.4f} ± {cv['std']:.4f}"
            if cv.get("mean") is not None
            else "-"
        )
        weight = manifest["weights"][e["name"]]
        tta = ", ".join(e.get("tta") or []) or "none"
        lines.append(f"| {e['name']} | {len(e['folds'])} | {tta} | {score} | {weight:.3g} |")
    return "\n".join(lines)


def _quick_markdown(rule: dict[str, Any]) -> str:
    if not rule.get("enabled"):
        return "The quick path is off in this package: the notebook always runs the full inference."
    if rule.get("max_rows") is not None:
        when = f"the test set has at most {rule['max_rows']} rows"
    else:
        when = f"the test ids are the public copy's ({rule.get('public_rows')} rows)"
    what = (
        "copies the sample submission (a valid file, no GPU time)"
        if rule.get("mode", "sample") == "sample"
        else "predicts with one fold only"
    )
    return (
        f"When {when}, the notebook {what} instead of the full inference: saving a version "
        "then costs almost no quota, and the full inference runs when Kaggle reruns the "
        "notebook on the hidden test set. `MEDALIST_QUICK=off` forces the full inference."
    )


def submission_file(manifest: dict[str, Any]) -> str:
    """The file the notebook writes: submission.csv, or submission.zip of mask files."""
    return str(manifest.get("submission_file") or "submission.csv")


def create_notebook(manifest: dict[str, Any], *, slug: str, competition: str) -> Any:
    """The inference notebook (nbformat v4) for a package: a markdown cell before each step."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    wheels = " ".join(["medalist", *manifest.get("extra_packages", [])])
    cells = [
        new_markdown_cell(
            f"# {competition}: inference with medalist\n\n"
            f"Written by `medalist package` (medalist {manifest['medalist_version']}). "
            "It runs offline: medalist and the fold weights come from the dataset "
            f"`{manifest['dataset_id']}`.\n\n" + _runs_markdown(manifest)
        ),
        new_markdown_cell(
            "## Paths\n\nKaggle mounts the competition and the package under `/kaggle/input`. "
            "`KAGGLE_ROOT` moves that root, so `medalist package --check` runs this same "
            "notebook in a copy of the layout."
        ),
        new_code_cell(
            "import os\nfrom pathlib import Path\n\n"
            'KAGGLE_ROOT = Path(os.environ.get("KAGGLE_ROOT", "/kaggle"))\n'
            f'PACKAGE = KAGGLE_ROOT / "input" / "{slug}"\n'
            f'COMPETITION = KAGGLE_ROOT / "input" / "{competition}"\n'
            'WHEELS = PACKAGE / "wheels"\n'
            f'SUBMISSION = KAGGLE_ROOT / "working" / "{submission_file(manifest)}"\n'
            "# auto: the package's quick-path rule; on / off: force it\n"
            'QUICK = os.environ.get("MEDALIST_QUICK", "auto")'
        ),
        new_markdown_cell(
            "## Install medalist from the attached wheels\n\n"
            "No internet here: pip installs only from the package's `wheels` folder."
        ),
        new_code_cell(
            "%pip install --quiet --no-index --no-deps --force-reinstall "
            f"--find-links {{WHEELS}} {wheels}"
        ),
        new_markdown_cell(
            "## The test set: the public copy or the hidden one?\n\n"
            + _quick_markdown(manifest["quick"])
        ),
        new_code_cell(
            "from medalist.kaggle.runtime import describe_test_set, predict_offline\n\n"
            "test_set = describe_test_set(PACKAGE, COMPETITION, quick=QUICK)\n"
            "print(test_set)"
        ),
        new_markdown_cell(
            f"## Predict and write {submission_file(manifest)}\n\n"
            "Each run's folds are averaged (with the run's TTA), runs are averaged with the "
            "weights above, and the file is checked against the sample submission: same ids in the "
            "same order, same columns, no missing values."
        ),
        new_code_cell(
            "submission = predict_offline(PACKAGE, COMPETITION, SUBMISSION, quick=QUICK)\n"
            "submission.head()"
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def write_notebook_folder(
    folder: Path,
    manifest: dict[str, Any],
    *,
    kernel_id: str,
    slug: str,
    competition: str,
    enable_gpu: bool,
) -> Path:
    """`folder` with the notebook and its kernel-metadata.json; returns the notebook's path."""
    import nbformat

    kernel_slug = kernel_id.split("/", 1)[1]
    path = folder / f"{kernel_slug}.ipynb"
    nb = create_notebook(manifest, slug=slug, competition=competition)
    write_text(path, nbformat.writes(nb))
    write_json(
        folder / "kernel-metadata.json",
        {
            "id": kernel_id,
            "title": kernel_slug.replace("-", " "),
            "code_file": path.name,
            "language": "python",
            "kernel_type": "notebook",
            "is_private": True,
            "enable_gpu": enable_gpu,
            "enable_tpu": False,
            "enable_internet": False,
            "dataset_sources": [manifest["dataset_id"]],
            "competition_sources": [competition],
            "kernel_sources": [],
            "model_sources": [],
        },
    )
    return path
