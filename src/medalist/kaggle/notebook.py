"""The offline inference notebook: how it is written, and the functions it calls on Kaggle.

The notebook holds no medalist code: it installs medalist from the package's wheels and calls
`describe_test_set` and `predict_offline` below. Those read the package (`medalist-package.json`,
each run's config, task and per-fold weights) and the competition folder, and give the same
submission as `medalist predict` on the same runs: folds averaged, the configured TTA, the
output shaped and checked against the sample submission. Runs are averaged with the package's
weights. The quick path (a time saver) writes a valid submission without the full
inference when the test set is the public copy seen when packaging.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import read_json, write_csv, write_json, write_text
from medalist.tasks.blend import blend

MANIFEST = "medalist-package.json"
QUICK_CHOICES = ("auto", "on", "off")


# ---- the runtime: what the notebook calls -------------------------------------------------------
@dataclass
class PredictionPlan:
    """What the notebook will do: the test set it sees, and whether it takes the quick path."""

    rows: int
    public_rows: int | None
    quick: bool
    reason: str

    def __str__(self) -> str:
        path = "quick path" if self.quick else "full inference"
        return f"test set: {self.rows} rows -> {path} ({self.reason})"


def ids_fingerprint(ids: Any) -> str:
    """A hash of the sorted ids as text: equal for the same set of ids in any order."""
    text = "\n".join(sorted(str(i) for i in ids))
    return hashlib.sha1(text.encode()).hexdigest()


def read_manifest(package: str | Path) -> dict[str, Any]:
    """The package's manifest; a UserError when `package` is not a medalist package."""
    path = Path(package) / MANIFEST
    if not path.is_file():
        raise UserError(f"{package} is not a medalist package (no {MANIFEST}): check the path")
    return read_json(path)


def run_config(package: Path, competition: Path, manifest: dict[str, Any], name: str) -> Any:
    """A packaged run's config with the test files pointed into `competition`."""
    from medalist.config import load_config

    package, competition = Path(package).absolute(), Path(competition).absolute()
    cfg = load_config(package / "runs" / name / "config.yaml", root=competition)
    data = manifest["data"]
    comp = cfg.competition
    for key in ("test_csv", "test_image_dir", "sample_submission"):
        rel = data.get(key)
        setattr(comp, key, None if rel is None else str(competition / rel))
    cfg.model.pretrained = False  # the fold weights replace every parameter
    cfg.data.cache = False
    return cfg


def _test_table(cfg: Any) -> tuple[pd.Series, pd.DataFrame, list[Path]]:
    from medalist.data.tables import (
        check_images_exist,
        image_paths,
        load_sample_submission,
        load_test,
    )

    sample = load_sample_submission(cfg)
    if sample is None:
        raise UserError("the package's runs have no sample_submission: repackage them")
    test = load_test(cfg, sample)
    paths = image_paths(cfg, test, Path(cfg.competition.test_image_dir))
    check_images_exist(paths, "test", "competition.test_image_dir")
    return test[cfg.competition.id_column], sample, paths


def _check_quick(quick: str) -> str:
    value = str(quick).strip().lower()
    if value not in QUICK_CHOICES:
        raise UserError(f"quick = {quick!r}: use auto, on or off (MEDALIST_QUICK)")
    return value


def describe_test_set(
    package: str | Path, competition: str | Path, quick: str = "auto"
) -> PredictionPlan:
    """How many test rows there are, and whether the quick path applies (`quick`: auto/on/off)."""
    quick = _check_quick(quick)
    package, competition = Path(package), Path(competition)
    manifest = read_manifest(package)
    cfg = run_config(package, competition, manifest, manifest["runs"][0]["name"])
    from medalist.data.tables import load_sample_submission, load_test

    sample = load_sample_submission(cfg)
    ids = load_test(cfg, sample)[cfg.competition.id_column]
    rule = manifest["quick"]
    public = rule.get("public_rows")
    if quick != "auto":
        return PredictionPlan(len(ids), public, quick == "on", f"MEDALIST_QUICK={quick}")
    if not rule.get("enabled"):
        return PredictionPlan(len(ids), public, False, "the quick path is off in this package")
    limit = rule.get("max_rows")
    if limit is not None and len(ids) <= limit:
        return PredictionPlan(len(ids), public, True, f"at most {limit} rows")
    if limit is None and ids_fingerprint(ids) == rule.get("public_ids_sha1"):
        return PredictionPlan(len(ids), public, True, "the public copy seen when packaging")
    return PredictionPlan(len(ids), public, False, "the hidden test set")


def predict_run(
    package: Path,
    competition: Path,
    manifest: dict[str, Any],
    entry: dict[str, Any],
    folds: list[int] | None = None,
) -> tuple[np.ndarray, pd.Series, pd.DataFrame, Any]:
    """Fold-averaged test predictions of one packaged run: (preds, ids, sample, task)."""
    import torch

    from medalist.data.images import ImageSource
    from medalist.workflows.predict import average_folds
    from medalist.workflows.train import task_class

    cfg = run_config(package, competition, manifest, entry["name"])
    run_dir = package / "runs" / entry["name"]
    task = task_class(cfg).from_state(cfg, read_json(run_dir / "task.json"))
    ids, sample, paths = _test_table(cfg)
    images = ImageSource(paths, cfg.data.image_size, cfg.model.in_chans, ids=ids.tolist())
    chosen = entry["folds"] if folds is None else folds
    weights = (
        torch.load(run_dir / f"fold_{k}.pt", map_location="cpu", weights_only=True) for k in chosen
    )
    return average_folds(cfg, task, images, weights), ids, sample, task


def predict_offline(
    package: str | Path,
    competition: str | Path,
    out: str | Path,
    *,
    quick: str = "auto",
) -> pd.DataFrame:
    """Write the package's submission for the test set in `competition` to `out`; return it."""
    package, competition, out = Path(package), Path(competition), Path(out)
    manifest = read_manifest(package)
    test_set = describe_test_set(package, competition, quick)
    entries = manifest["runs"]
    if test_set.quick and manifest["quick"].get("mode", "sample") == "sample":
        cfg = run_config(package, competition, manifest, entries[0]["name"])
        _, sample, _ = _test_table(cfg)
        write_csv(out, sample)
        return sample
    if test_set.quick:  # one-fold: the first fold of the first run, a cheap real prediction
        entries = [dict(entries[0], folds=entries[0]["folds"][:1])]
    results = [predict_run(package, competition, manifest, e) for e in entries]
    _, ids, sample, task = results[0]
    for (_, other, _, _), e in zip(results[1:], entries[1:], strict=True):
        if list(map(str, other)) != list(map(str, ids)):
            raise UserError(f"run {e['name']} reads other test ids than {entries[0]['name']}")
    weights = [manifest["weights"][e["name"]] for e in entries]
    preds = blend([r[0] for r in results], weights)
    cfg = run_config(package, competition, manifest, entries[0]["name"])
    if manifest.get("task"):  # an ensemble's own task state (its multilabel thresholds)
        task = type(task).from_state(cfg, manifest["task"])
    window = int(manifest.get("smooth_window") or 1)
    if window > 1:  # video frames: the moving average `medalist smooth` chose
        from medalist.data.tables import load_test
        from medalist.workflows.smooth import smooth_test_predictions

        preds = smooth_test_predictions(cfg, ids, load_test(cfg, sample), preds, window)
    submission = task.format_submission(ids, preds, sample)
    write_csv(out, submission)
    return submission


# ---- the writer: the .ipynb and kernel-metadata.json --------------------------------------------
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
            'SUBMISSION = KAGGLE_ROOT / "working" / "submission.csv"\n'
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
            "from medalist.kaggle.notebook import describe_test_set, predict_offline\n\n"
            "test_set = describe_test_set(PACKAGE, COMPETITION, quick=QUICK)\n"
            "print(test_set)"
        ),
        new_markdown_cell(
            "## Predict and write submission.csv\n\n"
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
