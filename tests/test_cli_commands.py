"""The foundation's commands as a user runs them: new, folds, then train/predict on that project."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
from conftest import make_competition, medalist

from medalist import commands
from medalist.config import load_config
from medalist.logs import quiet_libraries


def test_new_then_folds_builds_a_project_from_a_competition_folder(tmp_path: Path) -> None:
    data = make_competition(tmp_path / "competition")
    proc = medalist("new", str(tmp_path / "proj"), "--data", str(data))
    assert proc.returncode == 0, proc.stderr
    project = tmp_path / "proj"
    for name in ("readme.md", "configs/baseline.yaml", "models", "runs", ".gitignore"):
        assert (project / name).exists(), name
    gitignore = (project / ".gitignore").read_text()
    assert "runs/" in gitignore and "mlruns.db" in gitignore
    cfg = load_config(project / "configs" / "baseline.yaml")
    assert (cfg.competition.id_column, cfg.competition.target_column) == ("id", "label")
    assert cfg.path(cfg.competition.image_dir).resolve() == (data / "train").resolve()

    folds = medalist("folds", str(project / "configs" / "baseline.yaml"), "cv.n_splits=3")
    assert folds.returncode == 0, folds.stderr
    written = pd.read_csv(project / "folds" / "stratified-k3-s42.csv")
    assert len(written) == 36 and sorted(written["fold"].unique()) == [0, 1, 2]
    # The per-fold table: one row per fold with its size and class shares.
    rows = [r for r in folds.stdout.splitlines() if re.match(r"^│\s*\d\s*│", r)]
    assert [int(r.split("│")[1]) for r in rows] == [0, 1, 2]
    assert all(" 24 " in r and " 12 " in r for r in rows), rows  # n_train, n_valid
    assert "share:bar_h" in folds.stdout


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    data = make_competition(tmp_path / "competition")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    proc = medalist("new", str(tmp_path / "proj"), "--data", str(data))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (tmp_path / "proj" / "notes.txt").read_text() == "mine"


def test_usage_errors_exit_2_without_traceback() -> None:
    for args in (["train", "--folds"], ["no-such-command"], ["runs", "--nope"]):
        proc = medalist(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_every_module_in_commands_registers_its_commands_on_the_app() -> None:
    # The commands package imports its modules by name: a module left out of that list would
    # vanish from the CLI. A fresh interpreter, so no other test's import can register it.
    code = (
        "import medalist.commands; from medalist.cli_app import app;"
        "print(sorted({c.callback.__module__ for c in app.registered_commands}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    folder = Path(commands.__file__).parent
    modules = sorted(f"medalist.commands.{p.stem}" for p in folder.glob("[!_]*.py"))
    assert out.stdout.strip() == str(modules), out.stderr


def test_quiet_libraries_logs_warnings_only_and_touches_warning_filters_only_when_asked() -> None:
    names = ("lightning.pytorch", "mlflow")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()  # no filters: whatever is added shows
            quiet_libraries(warnings_too=False)
            assert warnings.filters == []
            quiet_libraries()
            assert ("ignore", None, UserWarning, None, 0) in warnings.filters
        assert all(logging.getLogger(n).level == logging.WARNING for n in names)
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
