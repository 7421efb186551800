"""`medalist docker`: a run script for the Kaggle GPU image or NGC PyTorch, shellcheck-clean."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import medalist, require_tool

from medalist.envtools.docker import IMAGES, write_docker_script

FAKE_DOCKER = '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n'


def _shellcheck() -> str:
    return require_tool("shellcheck", "apt-get install -y shellcheck")


def _docker_args(script: Path, tmp_path: Path, *command: str) -> list[str]:
    """The arguments the script passes to `docker` (a fake one on PATH prints them)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("MEDALIST_IMAGE", None)
    env.pop("MEDALIST_CONTAINER", None)
    out = subprocess.run(
        [str(script), *command], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.splitlines()


@pytest.mark.parametrize("image", ["kaggle", "ngc", "registry.example.com/team/torch:2.4-cuda12"])
def test_docker_script_passes_shellcheck(tmp_path, image):
    shellcheck = _shellcheck()
    script = write_docker_script(tmp_path / "scripts" / "docker_run.sh", image, project=tmp_path)

    done = subprocess.run([shellcheck, "--enable=all", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_docker_script_runs_the_image_with_the_advised_options(tmp_path):
    project = tmp_path / "proj"
    competition = tmp_path / "competition"
    competition.mkdir()
    (project / "scripts").mkdir(parents=True)
    (project / "data").symlink_to(competition)
    script = write_docker_script(project / "scripts" / "docker_run.sh", "kaggle", project=project)

    args = _docker_args(script, tmp_path)

    assert args[0] == "run"
    for option in ("--shm-size=8G", "--net=host", "--gpus=all", "-it", "--rm"):
        assert option in args
    assert args[args.index("-u") + 1] == f"{os.getuid()}:{os.getgid()}"
    mounts = [args[i + 1] for i, a in enumerate(args) if a == "-v"]
    assert "/etc/passwd:/etc/passwd:ro" in mounts
    assert f"{project.resolve()}:/kaggle/working" in mounts
    assert f"{competition.resolve()}:{competition.resolve()}:ro" in mounts  # data/ resolves
    assert args[args.index("-w") + 1] == "/kaggle/working"
    assert args[args.index("--name") + 1] == "medalist-proj"
    assert args[-2:] == [IMAGES["kaggle"], "bash"]


def test_docker_script_passes_a_command_and_works_from_any_folder(tmp_path):
    project = tmp_path / "proj"
    script = write_docker_script(project / "scripts" / "run.sh", "ngc", project=project)

    args = _docker_args(script, tmp_path, "python", "-c", "print(1)")

    assert args[-4:] == [IMAGES["ngc"], "python", "-c", "print(1)"]
    mounts = [args[i + 1] for i, a in enumerate(args) if a == "-v"]
    assert f"{project.resolve()}:/kaggle/working" in mounts


def test_every_docker_option_has_a_comment(tmp_path):
    script = write_docker_script(tmp_path / "run.sh", "kaggle", project=tmp_path)
    lines = script.read_text().splitlines()
    start, end = lines.index("args=("), lines.index(")")
    body = lines[start + 1 : end]

    options = [i for i, line in enumerate(body) if line.strip().startswith("-")]
    assert len(options) >= 10
    for i in options:
        assert body[i - 1].strip().startswith("#"), f"no comment above {body[i].strip()}"


def test_cli_writes_an_executable_script_and_never_overwrites_without_force(tmp_path):
    r = medalist("docker", cwd=tmp_path)
    script = tmp_path / "scripts" / "docker_run.sh"
    assert r.returncode == 0, r.stderr
    assert os.access(script, os.X_OK)
    script.write_text("# my edits\n")

    again = medalist("docker", "--image", "ngc", cwd=tmp_path)

    assert again.returncode == 2
    assert "--force" in again.stderr and "docker_run.sh" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
    assert script.read_text() == "# my edits\n"
    forced = medalist("docker", "--image", "ngc", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert IMAGES["ngc"] in script.read_text()


@pytest.mark.parametrize(
    "args, named",
    [
        (["--image", "bad image; rm -rf /"], "--image"),
        (["--name", "no spaces allowed"], "--name"),
        (["--shm-size", "lots"], "--shm-size"),
        (["--out", "."], "--out"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, args, named):
    r = medalist("docker", *args, cwd=tmp_path)

    assert r.returncode == 2
    assert named in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "scripts").exists()
