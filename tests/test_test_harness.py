"""The harness the suite relies on: the warm CLI answers as a fresh process would, and in CI a
skipped test fails the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from warm_cli import WarmCli

HERE = Path(__file__).parent


def cold(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from medalist.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_forked_cli_call_answers_exactly_as_a_fresh_process(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "bad.yaml").write_text("model: [resnet\n")
    calls = [
        ["--help"],
        ["train", "nope.yaml"],
        ["train", "configs/bad.yaml"],
        ["runs", "--project", str(tmp_path)],
        ["cost"],
    ]
    warm = WarmCli()
    try:
        for args in calls:
            a, b = warm.run(args, tmp_path, 300), cold(args, tmp_path)
            assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args
        assert warm.proc is not None  # every call above went through the server
    finally:
        warm.close()


def test_a_call_that_changes_an_import_time_variable_runs_cold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    warm = WarmCli()
    assert warm.usable(dict(os.environ))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert not warm.usable(dict(os.environ))
    r = warm.run(["--help"], tmp_path, 300)
    assert r.returncode == 0 and "Usage" in r.stdout
    assert warm.proc is None  # answered by a fresh process: no server was started


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("1", 1), ("", 0)])
def test_in_ci_a_skipped_test_fails_the_run(tmp_path: Path, ci: str, code: int) -> None:
    for name in ("conftest.py", "warm_cli.py"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_s.py").write_text(
        "import pytest\n\ndef test_ok():\n    pass\n\n"
        "def test_s():\n    pytest.skip('no such tool')\n"
    )
    env = {**os.environ, "CI": ci}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == code, r.stdout[-2000:]
    assert ("CI runs every test: 1 skipped" in r.stdout) == bool(code), r.stdout[-2000:]
