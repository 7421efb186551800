"""What the offline notebook calls on Kaggle: `describe_test_set` and `predict_offline`.

They read the package (`medalist-package.json`, each run's config, task and per-fold weights)
and the competition folder, and give the same submission as `medalist predict` on the same
runs, through the same inference path (`medalist.workflows.inference`): folds combined, the
configured TTA, runs blended with the package's weights, the output shaped and checked against
the sample submission. The quick path (a time saver while iterating) writes a valid submission
without the full inference when the test set is the public copy seen when packaging.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medalist.data.tables import load_test
from medalist.errors import UserError
from medalist.io import read_json, write_csv
from medalist.runs import layout
from medalist.workflows.inference import (
    TestPredictions,
    blend_members,
    make_submission,
    write_submission,
)
from medalist.workflows.smooth import use_filter

MANIFEST = "medalist-package.json"
QUICK_CHOICES = ("auto", "on", "off")


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
    cfg = load_config(package / "runs" / name / layout.CONFIG, root=competition)
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
    folder = cfg.competition.test_image_dir  # None: the images are the test table's pixels
    paths = image_paths(cfg, test, Path(folder) if folder is not None else None)
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
) -> tuple[TestPredictions, pd.DataFrame]:
    """Fold-combined test predictions of one packaged run, and the sample submission."""
    import torch

    from medalist.data.frames import stack_frames
    from medalist.data.images import config_source
    from medalist.tasks import load_task
    from medalist.workflows.inference import fold_predictions

    cfg = run_config(package, competition, manifest, entry["name"])
    run_dir = package / "runs" / entry["name"]
    task = load_task(cfg, read_json(run_dir / layout.TASK))
    ids, sample, paths = _test_table(cfg)
    test = load_test(cfg, sample) if cfg.data.frame_offsets is not None else None
    images = stack_frames(cfg, config_source(cfg, paths, ids.tolist()), test, "test")
    chosen = entry["folds"] if folds is None else folds
    weights = (
        torch.load(layout.packaged_fold(run_dir, k), map_location="cpu", weights_only=True)
        for k in chosen
    )
    preds = fold_predictions(cfg, task, images, weights)
    return TestPredictions(entry["name"], cfg, task, ids, preds), sample


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
        ids, sample, paths = _test_table(cfg)
        if Path(out).suffix == ".zip":  # mask files: every pixel the first class's value
            from medalist.data.mask_files import blank_submission

            state = read_json(package / "runs" / entries[0]["name"] / layout.TASK)
            lookup = dict(zip(ids.astype(str), paths, strict=True))
            blank = blank_submission(cfg, sample, lookup, int(state.get("values", [0])[0]))
            write_submission(out, blank)
            return blank
        write_csv(out, sample)
        return sample
    if test_set.quick:  # one-fold: the first fold of the first run, a cheap real prediction
        entries = [dict(entries[0], folds=entries[0]["folds"][:1])]
    runs = [predict_run(package, competition, manifest, e) for e in entries]
    results, sample = [r for r, _ in runs], runs[0][1]
    preds = blend_members(results, manifest["weights"], "the package")
    first = results[0]
    cfg, task, ids = first.cfg, package_task(first, manifest), first.ids
    window = int(manifest.get("smooth_window") or 1)
    use_filter(cfg, manifest.get("smooth_filter"))
    # video frames (`medalist smooth`'s) and groups of images (submission_by) read the table
    needs_table = window > 1 or cfg.competition.submission_by is not None
    test = load_test(cfg, sample) if needs_table else None
    _, submission = make_submission(cfg, task, ids, test, preds, sample, window)
    write_submission(out, submission)
    return submission


def package_task(first: TestPredictions, manifest: dict[str, Any]) -> Any:
    """The task that formats a package's submission: an ensemble's own (its multilabel
    thresholds, fitted on the blend) when the manifest has one, else the first run's."""
    if not manifest.get("task"):
        return first.task
    from medalist.tasks import load_task

    return load_task(first.cfg, manifest["task"])
