"""`medalist new --layout script|notebook|hybrid`: the three project layouts, each a
git repository; the generated scripts and notebooks run on a tiny competition."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import make_competition, medalist, require_tool

from medalist.errors import UserError
from medalist.workflows.scaffold import create_project

LAYOUT_FILES = {
    "script": ["src/train.py", "src/predict.py", "scripts/sweep.sh"],
    "notebook": ["notebook/train.ipynb", "notebook/test.ipynb"],
    "hybrid": ["src/train.py", "src/predict.py", "scripts/sweep.sh", "notebook/eda.ipynb"]
    + ["notebook/test.ipynb"],
}
COMMON = ["readme.md", ".gitignore", "configs/baseline.yaml", "models", "runs", "folds"]


@pytest.fixture(scope="module")
def competition(tmp_path_factory) -> Path:
    return make_competition(tmp_path_factory.mktemp("comp") / "data")


def _tiny(project: Path, epochs: int = 1) -> None:
    """Make the inferred config tiny: what the notebooks and scripts then read."""
    path = project / "configs" / "baseline.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["model"]["backbone"] = "test_resnet"
    cfg["data"]["image_size"] = 16
    cfg["cv"]["n_splits"] = 2
    cfg["train"].update(epochs=epochs, batch_size=8, threads=1, warmup_epochs=0)
    cfg["track"]["backends"] = ["none"]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _git(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)


@pytest.mark.parametrize("layout", ["script", "notebook", "hybrid"])
def test_each_layout_has_its_files_a_readme_that_says_how_and_a_fresh_git_repo(
    tmp_path, competition, layout
):
    report = create_project(tmp_path / "proj", competition, layout=layout)

    root = report.root
    for rel in COMMON + LAYOUT_FILES[layout]:
        assert (root / rel).exists(), rel
    others = {f for files in LAYOUT_FILES.values() for f in files} - set(LAYOUT_FILES[layout])
    assert not [f for f in others if (root / f).exists()]
    readme = (root / "readme.md").read_text()
    assert f"How to run ({layout} layout)" in readme
    assert ("src/train.py" in readme) == (layout != "notebook")
    assert ("notebook/test.ipynb" in readme) == (layout != "script")
    assert report.layout == layout
    require_tool("git", "apt-get install -y git")
    assert report.git
    assert _git(root, "rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
    assert _git(root, "rev-parse", "HEAD").returncode != 0  # no commit: the user's call
    status = _git(root, "status", "--porcelain", "--untracked-files=all").stdout
    listed = {line[3:] for line in status.splitlines()}
    assert listed == {".gitignore", "readme.md", "configs/baseline.yaml"} | {
        f for f in LAYOUT_FILES[layout]
    }


def test_generated_files_are_valid_python_notebooks_and_shell(tmp_path, competition):
    root = create_project(tmp_path / "proj", competition, layout="hybrid").root

    for py in (root / "src").glob("*.py"):
        compile(py.read_text(), str(py), "exec")
    for ipynb in (root / "notebook").glob("*.ipynb"):
        nb = nbformat.read(ipynb, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "from medalist" in code
    assert os.access(root / "scripts" / "sweep.sh", os.X_OK)
    shellcheck = require_tool("shellcheck", "apt-get install -y shellcheck")
    done = subprocess.run(
        [shellcheck, "--enable=all", str(root / "scripts" / "sweep.sh")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


def test_unknown_layout_is_a_user_error_and_nothing_is_written(tmp_path, competition):
    with pytest.raises(UserError, match="--layout 'notebooks'"):
        create_project(tmp_path / "proj", competition, layout="notebooks")
    assert not (tmp_path / "proj").exists()


@pytest.mark.slow
def test_script_layout_sweep_trains_and_src_predict_writes_the_submission(
    tmp_path, competition, monkeypatch, capsys
):
    root = create_project(tmp_path / "proj", competition, layout="script").root
    _tiny(root)
    env = {**os.environ, "PYTHON": sys.executable}

    sweep = subprocess.run(
        [str(root / "scripts" / "sweep.sh")], capture_output=True, text=True, env=env
    )

    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert "== configs/baseline.yaml" in sweep.stdout and "CV accuracy" in sweep.stdout
    (run,) = (root / "runs").glob("*/scores.json")
    # `python src/predict.py RUN`, in this process (torch is loaded once for the whole suite)
    monkeypatch.setattr(sys, "argv", ["src/predict.py", str(run.parent)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(root / "src" / "predict.py"), run_name="__main__")
    assert done.value.code == 0
    assert (run.parent / "submission.csv").is_file()
    assert "checked" in capsys.readouterr().out


@pytest.mark.slow
def test_generated_notebooks_run_with_nbclient(tmp_path, competition):
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    def run(path: Path, km: KernelManager | None = None) -> nbformat.NotebookNode:
        nb = nbformat.read(path, as_version=4)
        where = {"metadata": {"path": str(path.parent)}}
        NotebookClient(nb, km=km, timeout=180, kernel_name="python3", resources=where).execute()
        return nb

    notebook = create_project(tmp_path / "nb", competition, layout="notebook").root
    _tiny(notebook)
    # train then test in one kernel, as a user runs them: torch and Lightning load once
    km = KernelManager(kernel_name="python3")
    try:
        trained = run(notebook / "notebook" / "train.ipynb", km)
        tested = run(notebook / "notebook" / "test.ipynb", km)
    finally:
        km.shutdown_kernel(now=True)
    hybrid = create_project(tmp_path / "hy", competition, layout="hybrid").root
    _tiny(hybrid)
    eda = run(hybrid / "notebook" / "eda.ipynb")

    (run_dir,) = (notebook / "runs").glob("*/scores.json")
    assert (run_dir.parent / "submission.csv").is_file()
    outputs = [o for c in trained.cells if c.cell_type == "code" for o in c.outputs]
    assert any(o.get("output_type") == "display_data" and "image/png" in o.data for o in outputs)
    text = str([c.outputs for c in tested.cells if c.cell_type == "code"])
    assert "checked against the sample" in text
    assert list((hybrid / "folds").glob("*.csv"))  # the EDA notebook wrote the folds
    assert "folds written to" in str([c.outputs for c in eda.cells if c.cell_type == "code"])


def test_cli_new_takes_a_layout(tmp_path, competition):
    r = medalist("new", str(tmp_path / "proj"), "--data", str(competition), "--layout", "hybrid")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "proj" / "notebook" / "eda.ipynb").is_file()
    assert "hybrid" in r.stdout


def test_cli_unknown_layout_exits_2_with_one_line(tmp_path, competition):
    r = medalist("new", str(tmp_path / "proj"), "--data", str(competition), "--layout", "nb")
    assert r.returncode == 2
    assert "--layout" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "proj").exists()
