"""`medalist docker`: a script that runs the project inside the Kaggle GPU image or NGC PyTorch.

The options follow Fixstars, "Kaggle image competitions, part 2", slide 27:
larger shared memory, host network, every GPU, an interactive shell removed on exit, the same
user and group inside as outside with /etc/passwd mounted read-only, the project at
/kaggle/working as the working directory, and a container name. Every option carries a comment.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from medalist.errors import UserError
from medalist.io import write_text

IMAGES = {
    # Kaggle's own notebook image: the same libraries as the notebook that scores a submission.
    "kaggle": "gcr.io/kaggle-gpu-images/python:latest",
    # NVIDIA's PyTorch container, for GPUs newer than the Kaggle image supports.
    "ngc": "nvcr.io/nvidia/pytorch:24.12-py3",
}
DEFAULT_OUT = Path("scripts/docker_run.sh")
DEFAULT_SHM = "8G"

_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SHM_RE = re.compile(r"[1-9][0-9]*[bkmgBKMG]?")


def resolve_image(image: str) -> str:
    """`kaggle`, `ngc` or a docker image reference, checked; returns the reference."""
    ref = IMAGES.get(image, image)
    if not _IMAGE_RE.fullmatch(ref):
        raise UserError(
            f"--image {image!r}: use kaggle, ngc or an image name such as "
            "nvcr.io/nvidia/pytorch:24.12-py3"
        )
    return ref


def container_name_for(project: Path) -> str:
    """A docker container name from the project folder's name (medalist-<name>)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", project.resolve().name).strip("-.") or "project"
    return f"medalist-{stem}"


def render_docker_script(
    image: str, container_name: str, shm_size: str = DEFAULT_SHM, project_dir: str = ".."
) -> str:
    """The run script for `image` (resolved) and `container_name`.

    `project_dir` is the project relative to the script's folder (`..` for scripts/), or an
    absolute path when the script lies outside the project.
    """
    if not _NAME_RE.fullmatch(container_name):
        raise UserError(
            f"--name {container_name!r}: a container name takes letters, digits, '_', '.', '-'"
        )
    if not _SHM_RE.fullmatch(shm_size):
        raise UserError(f"--shm-size {shm_size!r}: give a size such as 8G or 16g")
    if Path(project_dir).is_absolute():
        where = shlex.quote(project_dir)
    else:
        where = f'"$(cd "$(dirname "${{BASH_SOURCE[0]}}")/{project_dir}" && pwd)"'
    return _TEMPLATE.format(image=image, name=container_name, shm=shm_size, project_dir=where)


def write_docker_script(
    out: Path = DEFAULT_OUT,
    image: str = "kaggle",
    *,
    name: str | None = None,
    shm_size: str = DEFAULT_SHM,
    force: bool = False,
    project: Path | None = None,
) -> Path:
    """Write the run script to `out` (executable); an existing file needs `force`."""
    out = Path(out)
    project = Path(project) if project is not None else Path.cwd()
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name such as {DEFAULT_OUT}")
    if out.exists() and not force:
        raise UserError(f"{out} exists: add --force to replace it, or give another --out")
    text = render_docker_script(
        resolve_image(image),
        name or container_name_for(project),
        shm_size,
        _project_from_script(out, project),
    )
    write_text(out, text)
    out.chmod(0o755)
    return out


def _project_from_script(out: Path, project: Path) -> str:
    """The project folder as the script will find it: relative to its own folder if inside."""
    folder = out.absolute().parent
    try:
        depth = len(folder.relative_to(project.absolute()).parts)
    except ValueError:
        return str(project.resolve())
    return "/".join([".."] * depth) or "."


# The script: options in a bash array, one comment per option (bash allows comments between
# array elements). Runtime values come from the environment so the file needs no editing.
_TEMPLATE = """\
#!/usr/bin/env bash
# Run this project inside a GPU container (written by `medalist docker`).
#   scripts/docker_run.sh                  an interactive shell in the container
#   scripts/docker_run.sh nvidia-smi       one command, then exit
# MEDALIST_IMAGE=... and MEDALIST_CONTAINER=... override the image and the container name.
set -euo pipefail

# The image to run.
image_name="${{MEDALIST_IMAGE:-{image}}}"
# A fixed name, so `docker exec -it <name> bash` opens a second shell in the same container.
container_name="${{MEDALIST_CONTAINER:-{name}}}"
# The project folder, found from where this script lies in it.
project_dir={project_dir}
# Your user and group ids.
user_id="$(id -u)"
group_id="$(id -g)"

args=(
  # Larger shared memory: docker's default 64 MB crashes DataLoader workers (bus error).
  --shm-size={shm}
  # The host's network: Jupyter, TensorBoard and the MLflow UI answer on the host's ports.
  --net=host
  # Every GPU of the machine.
  --gpus=all
  # An interactive terminal (-i keeps stdin open, -t allocates a tty).
  -it
  # Remove the container on exit: everything worth keeping lives in the mounted project.
  --rm
  # The same user and group inside as outside, so files written in the container are yours
  # (install packages into the image, not from inside: this user is not root there).
  -u "${{user_id}}:${{group_id}}"
  # Your user's name and home as the host knows them, read-only, for the user id above.
  -v "/etc/passwd:/etc/passwd:ro"
  # A writable home inside: caches of pip, torch and matplotlib go to /tmp, not to a
  # home folder that does not exist in the image.
  -e HOME=/tmp
  # The project where a Kaggle notebook keeps its files: the same paths as on Kaggle.
  -v "${{project_dir}}:/kaggle/working"
  # Start in the project.
  -w /kaggle/working
  # The container's name.
  --name "${{container_name}}"
)

# data/ made by `medalist new` links to the competition folder: mount that folder at the same
# path, read-only, so the link resolves inside the container too.
if [[ -L "${{project_dir}}/data" ]]; then
  data_dir="$(readlink -f "${{project_dir}}/data")"
  args+=(-v "${{data_dir}}:${{data_dir}}:ro")
fi

# Kaggle API credentials, read-only, where the kaggle package looks with HOME=/tmp.
if [[ -d "${{HOME}}/.kaggle" ]]; then
  args+=(-v "${{HOME}}/.kaggle:/tmp/.kaggle:ro")
fi

# Run the given command, or bash when none is given.
if [[ $# -eq 0 ]]; then
  set -- bash
fi
exec docker run "${{args[@]}}" "${{image_name}}" "$@"
"""
