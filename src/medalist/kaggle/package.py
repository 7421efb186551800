"""`medalist package`: one or more runs as a Kaggle dataset folder, with its offline notebook.

Layout of `OUT/` (default `<project>/packages/<slug>/`):

    dataset/                      what `medalist kaggle dataset` uploads
      dataset-metadata.json       id "<user>/<slug>", title, licence
      medalist-package.json       the manifest the notebook reads (runs, folds, weights, rules)
      runs/<name>/                config.yaml, task.json, scores.json, fold_<k>.pt
      wheels/                     medalist's wheel and those of the packages listed as missing
    notebook/                     what `medalist kaggle push` pushes: .ipynb, kernel-metadata.json
    local.json                    where the runs and the data are here (not uploaded)

A fold file is the inference-only state dict of `fold_<k>/best.ckpt` (`kaggle.export`); the
wheels come from `kaggle.wheels`, and the folder is staged whole, then moved into place
(`kaggle.staging`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape

from medalist.console import console
from medalist.errors import UserError
from medalist.io import read_json, write_json
from medalist.kaggle.export import FoldFile, finished_folds, write_runs
from medalist.kaggle.notebook import write_notebook_folder
from medalist.kaggle.runtime import MANIFEST, ids_fingerprint
from medalist.kaggle.staging import check_destination, move_into_place
from medalist.kaggle.wheels import write_wheels
from medalist.runs.rundir import RunDir, open_run_dir

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
TEST_KEYS = ("test_csv", "test_image_dir", "sample_submission")


@dataclass
class PackageResult:
    root: Path
    dataset_dir: Path
    notebook: Path
    dataset_id: str
    kernel_id: str
    folds: list[FoldFile]
    wheels: list[tuple[str, int]]
    quick: dict[str, Any]
    manifest: dict[str, Any] = field(repr=False)


def check_slug(value: str, what: str, option: str) -> str:
    if not (SLUG_RE.match(value) and 6 <= len(value) <= 50):
        raise UserError(
            f"{option} {value!r}: a Kaggle {what} slug takes 6 to 50 lowercase letters, digits "
            "and '-'"
        )
    return value


def competition_data_root(cfg: Any, given: Path | None) -> tuple[Path, dict[str, str | None]]:
    """The local folder Kaggle mounts as the competition, and the test files relative to it."""
    comp = cfg.competition
    in_table = comp.pixel_columns is not None  # the test images are test_csv's rows
    test_images = comp.test_csv if in_table else comp.test_image_dir
    if comp.sample_submission is None or test_images is None:
        images = "competition.test_csv" if in_table else "competition.test_image_dir"
        raise UserError(
            f"competition.sample_submission and {images} must be set: the "
            "notebook predicts the test images in the sample submission's shape"
        )
    paths = {k: cfg.path(getattr(comp, k)) for k in TEST_KEYS}
    present = [p.resolve() for p in paths.values() if p is not None]
    root = given.resolve() if given else Path(os.path.commonpath(present))
    if root.is_file():
        root = root.parent
    rel: dict[str, str | None] = {}
    for key, p in paths.items():
        if p is None:
            rel[key] = None
            continue
        try:
            rel[key] = p.resolve().relative_to(root).as_posix()
        except ValueError:
            raise UserError(
                f"competition.{key} {p} is outside the competition folder {root}: pass "
                "--data-dir with the folder that holds the competition's files"
            ) from None
    if not paths["sample_submission"].exists():  # a table, or a folder or zip of masks
        raise UserError(f"sample submission {paths['sample_submission']} not found: fix the config")
    return root, rel


def read_weights_file(path: Path, names: list[str]) -> dict[str, float]:
    """Run weights from a JSON file ({"run": w, ...} or {"weights": {...}}), normalised to 1."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"--weights {path}: not readable JSON ({exc.__class__.__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("weights"), dict):
        data = data["weights"]
    if not isinstance(data, dict):
        raise UserError(f"--weights {path}: give a mapping of run name to weight")
    out = {}
    for name in names:
        value = data.get(name)
        if not isinstance(value, (int, float)) or value < 0:
            raise UserError(
                f"--weights {path}: run {name!r} needs a weight >= 0 (found {value!r}); the "
                f"file names {', '.join(map(str, data))[:80]}"
            )
        out[name] = float(value)
    extra = sorted(set(data) - set(names))
    if extra:
        raise UserError(f"--weights {path}: run {extra[0]!r} is not among the packaged runs")
    total = sum(out.values())
    if total <= 0:
        raise UserError(f"--weights {path}: the weights sum to 0")
    return {k: v / total for k, v in out.items()}


def enable_gpu_for(run: RunDir, cfg: Any) -> bool:
    """GPU for the notebook when the run's config asks for one, or trained on one ("auto")."""
    acc = cfg.train.accelerator
    if acc != "auto":
        return acc in ("gpu", "cuda")
    return bool(run.provenance().get("device", {}).get("gpus"))


@dataclass
class PackageOptions:
    """What `medalist package` takes besides the runs."""

    out: Path | None = None
    user: str | None = None
    slug: str | None = None
    title: str | None = None
    license_name: str = "CC0-1.0"
    competition: str | None = None
    data_dir: Path | None = None
    half: bool = False
    extra_wheels: Sequence[str] = ()
    weights: Path | None = None
    smooth: int | None = None
    smooth_filter: str | None = None
    gpu: bool | None = None
    quick: bool = True
    quick_rows: int | None = None
    quick_mode: str = "sample"
    overwrite: bool = False


def _open_runs(paths: Sequence[Path]) -> list[tuple[RunDir, Any, list[int]]]:
    if not paths:
        raise UserError("give at least one RUN directory (runs/<name>)")
    out, seen = [], set()
    for p in paths:
        run = open_run_dir(p)
        if run.name in seen:
            raise UserError(f"run name {run.name!r} is given twice: package each run once")
        seen.add(run.name)
        cfg = run.config()
        folds = finished_folds(run, cfg.cv.n_splits)
        if not folds:
            raise UserError(f"run {run.path} has no finished fold: train it first")
        if not run.has_task():
            raise UserError(f"run {run.path} has no task.json: it was not trained by medalist")
        out.append((run, cfg, folds))
    first = out[0][0].task_state()
    for run, _, _ in out[1:]:
        other = run.task_state()
        if (other["kind"], other["classes"]) != (first["kind"], first["classes"]):
            raise UserError(
                f"run {run.name} predicts other classes than {out[0][0].name}: an ensemble "
                "needs runs of the same task"
            )
    return out


def _names(opts: PackageOptions, cfg: Any) -> tuple[str, str, str, str]:
    from medalist.kaggle.credentials import find_username

    competition = opts.competition or cfg.competition.name
    if not competition:
        raise UserError(
            "no competition name: set competition.name in the config or pass --competition SLUG "
            "(the name in the competition's URL)"
        )
    user = opts.user or find_username()
    if not user:
        raise UserError(
            "no Kaggle user name: pass --user NAME, or set KAGGLE_USERNAME (or kaggle.json)"
        )
    # A name with capitals or "_" (a project folder's) is made a slug; --slug is checked as given.
    stem = re.sub(r"[^a-z0-9]+", "-", competition.lower())[:40].strip("-")
    slug = check_slug(opts.slug or f"{stem}-medalist", "dataset", "--slug")
    title = opts.title or f"{competition} medalist models"[:50]
    if not 6 <= len(title) <= 50:
        raise UserError(f"--title {title!r}: Kaggle takes 6 to 50 characters")
    return competition, user, slug, title


def expand_ensemble(
    runs: Sequence[Path], weights_file: Path | None
) -> tuple[list[Path], dict[str, float] | None, RunDir | None]:
    """An ensemble run given alone becomes its members with its weights (its task, with the
    thresholds fitted on the blend, is the package's).

    Members with weight 0 are left out. Returns (runs, weights or None, the ensemble or None).
    """
    blends = [p for p in runs if RunDir(Path(p)).ensemble() is not None]
    if not blends:
        return list(runs), None, None
    if len(runs) > 1:
        raise UserError(
            f"{blends[0]} is an ensemble: package it alone (it brings its member runs), or give "
            "the runs themselves with --weights"
        )
    if weights_file is not None:
        raise UserError(f"ensemble {blends[0]} carries its own weights: drop --weights")
    run = RunDir(Path(blends[0]))
    spec = run.ensemble() or {}
    weights = {n: float(w) for n, w in spec["weights"].items() if float(w) > 1e-9}
    dropped = [n for n in spec["members"] if n not in weights]
    if dropped:
        console.print(f"ensemble {run.name}: {', '.join(dropped)} weigh 0 and are left out")
    paths = [member.path for member in run.members() if member.name in weights]
    return paths, weights, run


def smoothed_task(
    run: RunDir, n_runs: int, opts: PackageOptions, window: int
) -> dict[str, Any] | None:
    """The task state the notebook uses with predictions smoothed over `window` frames: the
    post-processing of `run` (an ensemble's, or the one run's) refitted on its out-of-fold
    predictions smoothed the same way, as `medalist predict --smooth` does. None (each run's
    own state) for several runs blended by --weights, which have no pooled out-of-fold rows."""
    from medalist.tasks import load_run_task
    from medalist.workflows.smooth import refit_after_smoothing, use_filter

    if run.ensemble() is None and n_runs > 1:
        console.print(
            "the post-processing stays as fitted without smoothing: runs blended by --weights "
            "have no pooled out-of-fold predictions (make them an ensemble: medalist ensemble)"
        )
        return None
    cfg = run.config()
    use_filter(cfg, opts.smooth_filter)
    task = load_run_task(run, cfg)
    note = refit_after_smoothing(run, cfg, task, window)
    if note:
        console.print(escape(note))
    return task.state()


def create_package(runs: Sequence[Path], opts: PackageOptions | None = None) -> PackageResult:
    """Build the dataset folder and notebook for `runs` (written whole, then moved into place).

    An ensemble run (`medalist ensemble`) given alone packages its members with its weights.
    """
    opts = opts or PackageOptions()
    if opts.smooth is not None:
        from medalist.workflows.predict import check_window

        check_window(opts.smooth)
    if opts.smooth_filter is not None:
        from medalist.workflows.smooth import check_filter

        check_filter(opts.smooth_filter)
    runs, blend_weights, blend_run = expand_ensemble(runs, opts.weights)
    blend_task = blend_run.task_state() if blend_run is not None else None
    opened = _open_runs(runs)
    first_run, cfg, _ = opened[0]
    if opts.smooth_filter is not None:
        from medalist.tasks import load_run_task
        from medalist.workflows.smooth import check_filter

        check_filter(opts.smooth_filter, load_run_task(first_run, cfg))
    window = opts.smooth if opts.smooth is not None else cfg.predict.smooth_window
    if window > 1:
        blend_task = smoothed_task(blend_run or first_run, len(opened), opts, window)
    competition, user, slug, title = _names(opts, cfg)
    data_root, data_rel = competition_data_root(cfg, opts.data_dir)
    names = [r.name for r, _, _ in opened]
    if blend_weights is not None:
        weights = blend_weights
    elif opts.weights:
        weights = read_weights_file(opts.weights, names)
    else:
        weights = dict.fromkeys(names, 1.0)
    if opts.quick_mode not in ("sample", "one-fold"):
        raise UserError(f"--quick-mode {opts.quick_mode!r}: use sample or one-fold")
    for spec in opts.extra_wheels:
        if spec.endswith(".whl") and not Path(spec).expanduser().is_file():
            raise UserError(f"--extra-wheel {spec}: file not found")
    final = (opts.out or first_run.project / "packages" / slug).resolve()
    check_destination(final, opts.overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    dataset_id, kernel_id = f"{user}/{slug}", f"{user}/{slug[:40]}-inference"
    try:
        folds, entries = write_runs(staging / "dataset" / "runs", opened, opts.half)
        wheels, extra_names = write_wheels(staging / "dataset" / "wheels", opts.extra_wheels)
        write_json(
            staging / "dataset" / "dataset-metadata.json",
            {"title": title, "id": dataset_id, "licenses": [{"name": opts.license_name}]},
        )
        manifest = {
            "format": 1,
            "medalist_version": _medalist_version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "competition": competition,
            "dataset_id": dataset_id,
            "kernel_id": kernel_id,
            "half": opts.half,
            "runs": entries,
            "weights": {n: w / sum(weights.values()) for n, w in weights.items()},
            "task": blend_task,
            "smooth_window": window,
            "smooth_filter": opts.smooth_filter or cfg.predict.smooth_filter,
            "extra_packages": extra_names,
            "data": data_rel,
            "submission_file": _submission_name(cfg),
            "quick": {
                "enabled": opts.quick,
                "mode": opts.quick_mode,
                "max_rows": opts.quick_rows,
                **_public_copy(cfg),
            },
        }
        write_json(staging / "dataset" / MANIFEST, manifest)
        gpu = opts.gpu if opts.gpu is not None else enable_gpu_for(first_run, cfg)
        notebook = write_notebook_folder(
            staging / "notebook", manifest, kernel_id=kernel_id, slug=slug,
            competition=competition, enable_gpu=gpu,
        )  # fmt: skip
        local = {"runs": [str(r.path) for r, _, _ in opened], "data_root": str(data_root)}
        write_json(staging / "local.json", local)
        move_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PackageResult(
        final, final / "dataset", final / "notebook" / notebook.name, dataset_id, kernel_id,
        folds, wheels, manifest["quick"], manifest,
    )  # fmt: skip


def _medalist_version() -> str:
    import medalist

    return medalist.__version__


def _public_copy(cfg: Any) -> dict[str, Any]:
    """The quick-path fingerprint: the ids of the test set as it is here (the public copy)."""
    from medalist.data.tables import load_sample_submission, load_test

    ids = load_test(cfg, load_sample_submission(cfg))[cfg.competition.id_column]
    return {"public_rows": len(ids), "public_ids_sha1": ids_fingerprint(ids)}


def _submission_name(cfg: Any) -> str:
    """What the notebook writes: submission.csv, or submission.zip of mask files."""
    from medalist.data.mask_files import submission_name
    from medalist.data.tables import load_sample_submission

    return submission_name(cfg, load_sample_submission(cfg))
