"""`medalist package`: one or more runs as a Kaggle dataset folder, with its offline notebook.

Layout of `OUT/` (default `<project>/packages/<slug>/`):

    dataset/                      what `medalist kaggle dataset` uploads
      dataset-metadata.json       id "<user>/<slug>", title, licence
      medalist-package.json       the manifest the notebook reads (runs, folds, weights, rules)
      runs/<name>/                config.yaml, task.json, scores.json, fold_<k>.pt
      wheels/                     medalist's wheel and those of the packages listed as missing
    notebook/                     what `medalist kaggle push` pushes: .ipynb, kernel-metadata.json
    local.json                    where the runs and the data are here (not uploaded)

A fold file is the inference-only state dict of `fold_<k>/best.ckpt`: the model's weights (the
EMA or SWA weights when the run trained with `train.ema` or `train.swa`), optionally in half
precision.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medalist.console import console
from medalist.errors import UserError
from medalist.io import atomic_write, read_json, write_json, write_text
from medalist.kaggle.notebook import MANIFEST, ids_fingerprint, write_notebook_folder
from medalist.runs.rundir import RunDir, open_run_dir

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
TEST_KEYS = ("test_csv", "test_image_dir", "sample_submission")


@dataclass
class FoldFile:
    run: str
    fold: int
    checkpoint_bytes: int
    packaged_bytes: int


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


def finished_folds(run: RunDir, n_splits: int) -> list[int]:
    return [
        k
        for k in range(n_splits)
        if run.file(f"fold_{k}/result.json").is_file() and run.file(f"fold_{k}/best.ckpt").is_file()
    ]


def competition_data_root(cfg: Any, given: Path | None) -> tuple[Path, dict[str, str | None]]:
    """The local folder Kaggle mounts as the competition, and the test files relative to it."""
    comp = cfg.competition
    if comp.sample_submission is None or comp.test_image_dir is None:
        raise UserError(
            "competition.sample_submission and competition.test_image_dir must be set: the "
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
    if not paths["sample_submission"].is_file():
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


def medalist_source_root() -> Path | None:
    """The source tree of an editable (pip install -e) medalist, from its direct_url.json."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        text = metadata.distribution("medalist").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    info = json.loads(text) if text else {}
    url = urlparse(info.get("url", ""))
    if url.scheme != "file" or not info.get("dir_info", {}).get("editable"):
        return None
    root = Path(unquote(url.path))
    return root if (root / "pyproject.toml").is_file() else None


def build_medalist_wheel(dest: Path) -> Path:
    """A wheel of the medalist this process runs, built from a clean copy of its source."""
    import medalist

    package_dir = Path(medalist.__file__).resolve().parent
    root = medalist_source_root()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    with tempfile.TemporaryDirectory(prefix="medalist-wheel-") as tmp:
        src = Path(tmp)
        if root is not None and package_dir.is_relative_to(root):
            for name in ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in"):
                if (root / name).is_file():
                    shutil.copy2(root / name, src / name)
            for extra in [*root.glob("README*"), *root.glob("LICENSE*")]:
                if extra.is_file():
                    shutil.copy2(extra, src / extra.name)
            shutil.copytree(package_dir, src / package_dir.relative_to(root), ignore=ignore)
        else:  # an ordinary install: wrap the installed package in a minimal project
            write_text(
                src / "pyproject.toml",
                '[build-system]\nrequires = ["setuptools"]\n'
                'build-backend = "setuptools.build_meta"\n\n'
                f'[project]\nname = "medalist"\nversion = "{medalist.__version__}"\n\n'
                '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
            )
            shutil.copytree(package_dir, src / "src" / "medalist", ignore=ignore)
        before = set(dest.glob("*.whl"))
        out = _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dest), tmp)
    built = sorted(set(dest.glob("*.whl")) - before)
    if out.returncode != 0 or not built:
        raise RuntimeError(f"pip wheel could not build medalist's wheel:\n{out.stderr[-2000:]}")
    return built[0]


def _pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def add_extra_wheel(spec: str, dest: Path) -> list[Path]:
    """A dependency missing from the Kaggle image, as wheels in `dest` (a .whl path, or pip's)."""
    given = Path(spec).expanduser()
    if spec.endswith(".whl"):
        if not given.is_file():
            raise UserError(f"--extra-wheel {spec}: file not found")
        shutil.copy2(given, dest / given.name)
        return [dest / given.name]
    before = set(dest.glob("*.whl"))
    out = _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(dest), spec)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(f"--extra-wheel {spec}: pip could not download a wheel ({last})")
    return sorted(set(dest.glob("*.whl")) - before)


def wheel_name(path: Path) -> str:
    """The distribution name in a wheel's file name (what `pip install NAME` takes)."""
    return path.name.split("-", 1)[0]


def _write_fold(run: RunDir, k: int, dest: Path, averaged: str | None, half: bool) -> FoldFile:
    import torch

    ckpt = run.file(f"fold_{k}/best.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    from medalist.workflows.predict import inference_weights

    weights = inference_weights(state["state_dict"], averaged)
    if half:
        weights = {n: v.half() if v.is_floating_point() else v for n, v in weights.items()}
    path = dest / f"fold_{k}.pt"
    atomic_write(path, lambda f: torch.save(weights, f), mode="wb")
    return FoldFile(run.name, k, ckpt.stat().st_size, path.stat().st_size)


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
        if not run.file("task.json").is_file():
            raise UserError(f"run {run.path} has no task.json: it was not trained by medalist")
        out.append((run, cfg, folds))
    first = read_json(out[0][0].file("task.json"))
    for run, _, _ in out[1:]:
        other = read_json(run.file("task.json"))
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
    slug = check_slug(opts.slug or f"{competition[:40].strip('-')}-medalist", "dataset", "--slug")
    title = opts.title or f"{competition} medalist models"[:50]
    if not 6 <= len(title) <= 50:
        raise UserError(f"--title {title!r}: Kaggle takes 6 to 50 characters")
    return competition, user, slug, title


def expand_ensemble(
    runs: Sequence[Path], weights_file: Path | None
) -> tuple[list[Path], dict[str, float] | None, dict[str, Any] | None]:
    """An ensemble run given alone becomes its members with its weights and task (thresholds).

    Members with weight 0 are left out. Returns (runs, weights or None, task state or None).
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
    return paths, weights, read_json(run.file("task.json"))


def create_package(runs: Sequence[Path], opts: PackageOptions | None = None) -> PackageResult:
    """Build the dataset folder and notebook for `runs` (written whole, then moved into place).

    An ensemble run (`medalist ensemble`) given alone packages its members with its weights.
    """
    opts = opts or PackageOptions()
    if opts.smooth is not None:
        from medalist.workflows.predict import check_window

        check_window(opts.smooth)
    runs, blend_weights, blend_task = expand_ensemble(runs, opts.weights)
    opened = _open_runs(runs)
    first_run, cfg, _ = opened[0]
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
    _check_destination(final, opts.overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    dataset_id, kernel_id = f"{user}/{slug}", f"{user}/{slug[:40]}-inference"
    try:
        folds, entries = _write_runs(staging / "dataset" / "runs", opened, opts.half)
        wheels, extra_names = _write_wheels(staging / "dataset" / "wheels", opts.extra_wheels)
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
            "smooth_window": opts.smooth if opts.smooth is not None else cfg.predict.smooth_window,
            "extra_packages": extra_names,
            "data": data_rel,
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
        _move_into_place(staging, final)
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


def _write_runs(
    dest: Path, opened: list[tuple[RunDir, Any, list[int]]], half: bool
) -> tuple[list[FoldFile], list[dict[str, Any]]]:
    """Each run's config, task, scores and fold weights under `dest/<run>/`; the manifest's runs."""
    folds: list[FoldFile] = []
    entries = []
    for run, cfg, done in opened:
        (dest / run.name).mkdir(parents=True)
        for name in ("config.yaml", "task.json", "scores.json"):
            if run.file(name).is_file():
                shutil.copy2(run.file(name), dest / run.name / name)
        averaged = cfg.train.averaged_weights
        folds += [_write_fold(run, k, dest / run.name, averaged, half) for k in done]
        scores = run.scores() or {}
        cv = {k: scores.get(k) for k in ("metric", "mean", "std")} if scores else None
        entries.append({"name": run.name, "folds": done, "cv": cv, "tta": list(cfg.predict.tta)})
    return folds, entries


def _write_wheels(dest: Path, extra: Sequence[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """medalist's wheel and the extra ones in `dest`: (file, bytes) each, the extras' names."""
    dest.mkdir(parents=True)
    built = [build_medalist_wheel(dest)]
    names = []
    for spec in extra:
        added = add_extra_wheel(spec, dest)
        built += added
        names += [wheel_name(p) for p in added]
    return [(p.name, p.stat().st_size) for p in built], names


def _check_destination(final: Path, overwrite: bool) -> None:
    if not final.exists() or (final.is_dir() and not any(final.iterdir())):
        return
    if not (final / "dataset" / MANIFEST).is_file():
        raise UserError(f"--out {final} exists and is not a medalist package: choose another --out")
    if not overwrite:
        raise UserError(
            f"package {final} exists: pass --overwrite to replace it, or choose another --out"
        )


def _move_into_place(staging: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)
