"""Shared fixtures: a tiny Kaggle-layout competition and a project with a trained run.

Training in tests uses timm's `test_resnet` at 16x16 on a few dozen images, so a 3-fold run
takes seconds on a CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from warm_cli import WarmCli

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# Pretrained weights come from a hub cache a test fills itself, never from a download.
os.environ["HF_HUB_OFFLINE"] = "1"

# The system's temp folder, before _contained_temp_files points libraries into pytest's own.
SYSTEM_TEMP = tempfile.gettempdir()

TINY_CONFIG = """\
competition:
  train_csv: data/train.csv
  test_csv: data/test.csv
  image_dir: data/train
  test_image_dir: data/test
  sample_submission: data/sample_submission.csv
  id_column: id
  target_column: label
  metric: accuracy
cv:
  scheme: stratified
  n_splits: 3
  seed: 42
model:
  backbone: test_resnet
data:
  image_size: 16
  augment:
    - {name: HorizontalFlip, p: 0.5}
train:
  epochs: 2
  batch_size: 8
  lr: 3.0e-3
  warmup_epochs: 0
  threads: 1
track:
  backends: [none]
"""

CLASSES = ["bar_h", "bar_v", "dot"]


def draw(label: str, rng: np.random.Generator, size: int = 24) -> np.ndarray:
    """A noisy picture of one of three shapes: learnable in a couple of epochs."""
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    c = int(rng.integers(6, size - 6))
    if label == "bar_h":
        img[c - 2 : c + 2, 3:-3] = 230
    elif label == "bar_v":
        img[3:-3, c - 2 : c + 2] = 230
    else:
        img[c - 3 : c + 3, c - 3 : c + 3] = 230
    return img


def make_competition(
    root: Path, n_per_class: int = 12, n_test: int = 9, seed: int = 0, labels: list[str] = CLASSES
) -> Path:
    """train/, test/, train.csv, test.csv, sample_submission.csv under `root`; returns root."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    rows = []
    for _ in range(n_per_class):
        for label in labels:
            i = len(rows)
            Image.fromarray(draw(label, rng)).save(root / "train" / f"img_{i:04d}.png")
            rows.append({"id": f"img_{i:04d}", "label": label})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    test_ids = []
    for j in range(n_test):
        Image.fromarray(draw(labels[j % len(labels)], rng)).save(root / "test" / f"t_{j:03d}.png")
        test_ids.append(f"t_{j:03d}")
    pd.DataFrame({"id": test_ids}).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"id": test_ids, "label": labels[0]}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def make_project(root: Path, config_text: str = TINY_CONFIG, **kw: object) -> Path:
    """A project folder with data/ and configs/baseline.yaml; returns the config path."""
    make_competition(root / "data", **kw)
    (root / "configs").mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "baseline.yaml"
    cfg.write_text(config_text)
    return cfg


# A project `medalist new` wrote, trained in seconds: the tiny backbone, one epoch, two folds.
QUICK_RUN = (
    "model.backbone=test_resnet",
    "model.pretrained=false",
    "train.epochs=1",
    "train.batch_size=4",
    "cv.n_splits=2",
    "track.backends=[none]",
)


def train_then_predict(project: Path, name: str, *overrides: str) -> pd.DataFrame:
    """`medalist train` (QUICK_RUN) then `predict` on a project's baseline; its submission."""
    cfg = str(project / "configs" / "baseline.yaml")
    done = medalist("train", cfg, *QUICK_RUN, *overrides, "--name", name)
    assert done.returncode == 0, done.stderr
    pred = medalist("predict", str(project / "runs" / name))
    assert pred.returncode == 0, pred.stderr
    return pd.read_csv(project / "runs" / name / "submission.csv")


def assert_package_check_passes(project: Path, run: str, rows: int) -> None:
    """`medalist package runs/<run> --check` in `project`: the offline notebook ran and wrote
    the same `rows` rows as `medalist predict`."""
    done = medalist(
        "package", f"runs/{run}", "--check", "--competition", "comp", "--user", "someone",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"check passed: {rows} rows" in done.stdout


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    """A command that met bad input: exit code 2, one line on stderr (no traceback) that holds
    every one of `words`."""
    message = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, message)
    assert message.count("\n") == 0 and "Traceback" not in message, message
    for word in words:
        assert word in message, message


def in_ci() -> bool:
    """Whether the suite runs in CI: CI set to anything non-empty, as CI services do."""
    return bool(os.environ.get("CI", "").strip())


def unavailable(why: str) -> NoReturn:
    """Skip a test that needs what this machine lacks; in CI, where .ci/run installs every
    system tool the suite drives, fail it instead: CI skips nothing."""
    if in_ci():
        pytest.fail(f"{why}: CI must run this test (.ci/run installs what it needs)")
    pytest.skip(why)


def require_tool(names: str | Sequence[str], install: str) -> str:
    """The path of the first of `names` on PATH; a reported skip (a failure in CI) when none is
    there, `install` saying how to get it."""
    for name in [names] if isinstance(names, str) else names:
        if found := shutil.which(name):
            return found
    unavailable(f"{names if isinstance(names, str) else names[0]} is not installed ({install})")


def assert_drawn_png(path: Path, min_width: int = 300, min_height: int = 200) -> None:
    """`path` is a PNG of at least that size with something drawn on it: not a blank canvas."""
    with Image.open(path) as img:
        assert img.format == "PNG", (path, img.format)
        assert img.width >= min_width and img.height >= min_height, (path, img.size)
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    # A blank canvas is one colour; a drawing has many (lines, text, their anti-aliasing) and
    # covers a good part of the picture.
    assert len(colours) >= 16, (path, f"{len(colours)} colours")
    assert 1 - counts.max() / len(pixels) >= 0.02, (path, "almost all one colour")


_WARM: WarmCli | None = None


def medalist(
    *args: str, cwd: Path | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run the real CLI in its own process (exit code, stdout and stderr as a user sees them):
    forked from a pre-imported interpreter when the environment allows (warm_cli.py), else a
    fresh `python -c`."""
    if _WARM is None:
        return subprocess.run(
            [sys.executable, "-c", "from medalist.cli import main; main()", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return _WARM.run(list(args), cwd, timeout)


@pytest.fixture(scope="session", autouse=True)
def _warm_cli(_contained_temp_files: None):
    """The server `medalist()` forks from, with the session's environment; closed at the end."""
    global _WARM
    _WARM = WarmCli()
    yield
    _WARM.close()
    _WARM = None


@pytest.fixture(scope="session", autouse=True)
def _contained_temp_files(tmp_path_factory: pytest.TempPathFactory):
    """Libraries' own temporary files (W&B's media and artifact folders, matplotlib, Optuna)
    go under pytest's rotated base folder, and the subprocesses' too, instead of piling up in
    the system's temp folder run after run."""
    folder = tmp_path_factory.mktemp("libtmp")
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    yield
    tempfile.tempdir = saved_dir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """The config path of a fresh tiny project (3 classes, 36 train and 9 test images)."""
    return make_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def trained_run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with one finished 3-fold run and its submission (built once per session)."""
    from medalist.workflows.predict import predict
    from medalist.workflows.train import train

    root = tmp_path_factory.mktemp("trained") / "proj"
    cfg = make_project(root)
    summary = train(cfg, name="base")
    predict(summary.run.path)
    return summary.run.path


@pytest.fixture
def trained_run(trained_run_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained tiny run's project; returns the run directory."""
    project = trained_run_template.parent.parent
    dest = tmp_path / "proj"
    shutil.copytree(project, dest, symlinks=True)
    return dest / "runs" / trained_run_template.name


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test fails the run, whatever skipped it (a missing tool, a missing
    package, a test's own skip): CI runs every test."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if in_ci() and skipped:
        reporter.write_line(
            f"CI runs every test: {len(skipped)} skipped ({skipped[0].nodeid}: "
            f"{skipped[0].longrepr[-1] if isinstance(skipped[0].longrepr, tuple) else ''})",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
