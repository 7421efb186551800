"""`medalist doctor`: is this machine ready to train? One row per check: OK, WARN or FAIL.

A FAIL blocks training (no torch, no room to write a checkpoint, DataLoader workers that will
crash on a tiny /dev/shm); a WARN is advice (a GPU under the Kaggle notebook's 16 GB, a
world-readable Kaggle key, a tracker that uploads the data). No check prints a secret.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

from medalist.envtools.probes import MIB, folder_size, read_speed
from medalist.errors import UserError

Status = Literal["OK", "WARN", "FAIL"]
GIB = 2**30
# Marketed 16 GB cards report less to torch (a T4 about 14.7 GiB, a P100 about 15.9 GiB);
# 12 GB cards report about 11.7 GiB. The line sits between, so 16 GB cards pass.
MIN_GPU_BYTES = int(14.5 * GIB)
MIN_FREE_BYTES = 2 * GIB  # room for checkpoints and the image cache of a small competition
MIN_SHM_WITH_WORKERS = 256 * MIB  # below this DataLoader workers die with a bus error
ADVISED_SHM = 2 * GIB
SLOW_READ_MB_S = 100.0
MIN_PROBE_BYTES = 16 * MIB  # below this the probe times open() calls, not the disk
SAAS_TRACKERS = {"wandb": "Weights & Biases", "comet": "Comet", "neptune": "Neptune"}
TRACKER_MODULES = {
    "mlflow": "mlflow",
    "wandb": "wandb",
    "comet": "comet_ml",
    "neptune": "neptune",
    "tensorboard": "tensorboard",
}


@dataclass
class Check:
    """One row of the doctor's table."""

    name: str
    status: Status
    detail: str


@dataclass
class Gpu:
    name: str
    total_bytes: int


@dataclass
class DoctorInputs:
    """What the checks look at: the project, its data, the configured workers and trackers."""

    project: Path
    data: Path | None
    num_workers: int
    backends: list[str]
    tracking_uri: str | None
    configs: list[Path] = field(default_factory=list)  # their backbones' weights are checked
    config: Path | None = None  # a config: its batch and memory estimate get a row


# ---------------------------------------------------------------------------------------------
# entry points


def doctor_inputs(
    project: Path | None = None, data: Path | None = None, config: Path | None = None
) -> DoctorInputs:
    """The project, data folder, workers and trackers to check, from the options and config."""
    if data is not None and not Path(data).is_dir():
        raise UserError(f"--data {data}: no such folder; give the competition's data folder")
    if config is not None:
        from medalist.config import load_config

        cfg = load_config(config)
        project = project or cfg.root
        train_csv = cfg.path(cfg.competition.train_csv)
        if data is None and train_csv is not None and train_csv.parent.is_dir():
            data = train_csv.parent
        return DoctorInputs(
            Path(project),
            Path(data) if data else None,
            cfg.data.workers,
            list(cfg.track.backends),
            cfg.track.tracking_uri,
            [Path(config)],
            Path(config),
        )
    project = Path(project) if project is not None else Path.cwd()
    if not project.is_dir():
        raise UserError(f"--project {project}: no such folder")
    if data is None and (project / "data").is_dir():
        data = project / "data"
    configs = sorted((project / "configs").glob("*.yaml"))
    return DoctorInputs(project, Path(data) if data else None, 0, ["mlflow"], None, configs)


def run_checks(inputs: DoctorInputs) -> list[Check]:
    """Every check, in the order the table shows them."""
    checks = [check_python(), *check_torch()]
    checks += check_gpus(list_gpus())
    checks += check_disk(inputs.project, inputs.data)
    checks.append(check_shm(shm_bytes(), inputs.num_workers))
    checks.append(check_cpus(cpu_count(), inputs.num_workers))
    checks += check_trackers(inputs.backends, inputs.project, inputs.tracking_uri)
    checks.append(check_kaggle_credentials())
    if inputs.config is not None:
        checks.append(check_memory(inputs.config))
    from medalist.envtools.weights import check_weights  # it imports Check from here

    return checks + check_weights(inputs.configs)


def check_memory(config: Path) -> Check:
    """The config's batch per update and its training memory against this machine's GPU."""
    from medalist.config import load_config
    from medalist.engine.budget import training_plan
    from medalist.workflows.train import prepare

    try:
        cfg = load_config(config)
        lines = training_plan(cfg, prepare(cfg).task)
    except UserError as exc:
        return Check("GPU memory", "WARN", f"not estimated: {exc}")
    status: Status = "WARN" if any(line.startswith("warning") for line in lines) else "OK"
    return Check("GPU memory", status, "; ".join(lines))


def blocks_training(checks: list[Check]) -> bool:
    """True when a check failed: training can't start or will crash."""
    return any(c.status == "FAIL" for c in checks)


# ---------------------------------------------------------------------------------------------
# versions and GPUs


def check_python() -> Check:
    v = sys.version_info
    text = f"{platform.python_version()} ({sys.executable})"
    return Check("python", "OK" if v >= (3, 10) else "FAIL", text)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_torch() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is what this row reports
        return [Check("torch", "FAIL", f"import torch failed ({exc}): reinstall torch")]
    libs = ", ".join(
        f"{d} {_version(d)}" for d in ("lightning", "timm", "albumentations") if _version(d)
    )
    rows = [Check("torch", "OK", f"{torch.__version__}; {libs}")]
    cuda = torch.version.cuda
    if cuda is None:
        rows.append(Check("CUDA", "WARN", "this torch is a CPU build: training runs on the CPU"))
        return rows
    v = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    # cuDNN 9 counts major*10000 + minor*100 + patch; cuDNN 8 major*1000 + minor*100 + patch
    cudnn = (
        "not available"
        if not v
        else f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
        if v >= 10000
        else f"{v // 1000}.{v % 1000 // 100}.{v % 100}"
    )
    rows.append(Check("CUDA", "OK", f"CUDA {cuda}, cuDNN {cudnn}"))
    return rows


def list_gpus() -> list[Gpu]:
    """The CUDA GPUs torch sees, with their total memory."""
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [
            Gpu(torch.cuda.get_device_name(i), torch.cuda.get_device_properties(i).total_memory)
            for i in range(torch.cuda.device_count())
        ]
    except Exception:  # noqa: BLE001 - a driver problem reads as "no GPU"; check_gpus says so
        return []


def check_gpus(gpus: list[Gpu]) -> list[Check]:
    if not gpus:
        return [
            Check(
                "GPU",
                "WARN",
                "no CUDA GPU visible: fine for the tiny demo, far too slow for a competition",
            )
        ]
    rows = []
    for i, gpu in enumerate(gpus):
        gib = gpu.total_bytes / GIB
        if gpu.total_bytes < MIN_GPU_BYTES:
            rows.append(
                Check(
                    f"GPU {i}",
                    "WARN",
                    f"{gpu.name}, {gib:.1f} GiB: under 16 GB, the Kaggle notebook's P100/T4; "
                    "a model that fits here may not fit there, and large models won't fit here",
                )
            )
        else:
            rows.append(Check(f"GPU {i}", "OK", f"{gpu.name}, {gib:.1f} GiB"))
    return rows


# ---------------------------------------------------------------------------------------------
# disk, shared memory, CPUs


def check_disk(project: Path, data: Path | None) -> list[Check]:
    rows = []
    if not _writable(project):
        rows.append(Check("project", "FAIL", f"{project} is not writable: runs/ can't be made"))
    free = shutil.disk_usage(project).free
    where = f"{_size(free)} free where the project lives"
    size, complete = folder_size(data) if data is not None else (0, True)
    known = _size(size) if complete else f"more than {_size(size)}"
    if free < MIN_FREE_BYTES:
        rows.append(Check("disk", "FAIL", f"{where}: too little for checkpoints; free some space"))
    elif data is None:
        rows.append(Check("disk", "WARN", f"{where}; no data folder to compare: pass --data"))
    elif free < size:
        rows.append(
            Check(
                "disk",
                "WARN",
                f"{where}, the data is {known}: the image cache and checkpoints need room too",
            )
        )
    else:
        rows.append(Check("disk", "OK", f"{where}; the data is {known}"))
    if data is None:
        return rows
    speed = read_speed(data)
    if speed is None:
        rows.append(Check("data read", "WARN", f"no readable file in {data}"))
        return rows
    mb_s, n = speed
    if n < MIN_PROBE_BYTES:  # open() and metadata dominate: no measure of the disk
        rows.append(Check("data read", "OK", f"{_size(n)} in {data}: too little to time the disk"))
        return rows
    slow = mb_s < SLOW_READ_MB_S
    advice = ": slow for tens of GB of images; keep the data on a local SSD" if slow else ""
    rows.append(
        Check(
            "data read",
            "WARN" if slow else "OK",
            f"{mb_s:,.0f} MB/s reading {_size(n)} of {data}{advice}",
        )
    )
    return rows


def shm_bytes() -> int | None:
    """The size of /dev/shm (None where there is none, e.g. macOS)."""
    try:
        return shutil.disk_usage("/dev/shm").total
    except OSError:
        return None


def check_shm(size: int | None, num_workers: int) -> Check:
    if size is None:
        return Check("shared memory", "OK", "no /dev/shm here; DataLoader uses files instead")
    text = f"/dev/shm is {_size(size)}"
    if num_workers > 0 and size < MIN_SHM_WITH_WORKERS:
        return Check(
            "shared memory",
            "FAIL",
            f"{text}: {num_workers} DataLoader workers will crash (bus error); run docker with "
            "--shm-size=8G (`medalist docker`) or set data.num_workers: 0",
        )
    if size < ADVISED_SHM:
        return Check(
            "shared memory",
            "WARN",
            f"{text}: small for DataLoader workers; in docker pass --shm-size=8G",
        )
    return Check("shared memory", "OK", text)


def cpu_count() -> int:
    """CPUs this process may use (the container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_cpus(cpus: int, num_workers: int) -> Check:
    text = f"{cpus} CPUs, data.num_workers: {num_workers}"
    if num_workers > cpus:
        return Check("CPUs", "WARN", f"{text}: more workers than CPUs; use at most {cpus}")
    return Check("CPUs", "OK", text)


# ---------------------------------------------------------------------------------------------
# trackers and credentials


def check_trackers(backends: list[str], project: Path, tracking_uri: str | None) -> list[Check]:
    from importlib.util import find_spec

    rows = []
    for backend in backends:
        module = TRACKER_MODULES.get(backend)
        if module is not None and find_spec(module) is None:
            rows.append(
                Check(
                    f"tracker {backend}",
                    "WARN",
                    f"track.backends has {backend} but {module} is not installed: "
                    f"pip install {module}; runs go on without it",
                )
            )
    if "mlflow" in backends:
        rows.append(_check_mlflow_store(project, tracking_uri))
    saas = [SAAS_TRACKERS[b] for b in backends if b in SAAS_TRACKERS]
    if saas:
        rows.append(
            Check(
                "tracker rules",
                "WARN",
                f"{' and '.join(saas)} {'is a SaaS' if len(saas) == 1 else 'are SaaS'}: synced "
                "runs upload their data. Check the competition's rules before you sync; "
                "MLflow and CSV stay local",
            )
        )
    return rows


def _check_mlflow_store(project: Path, uri: str | None) -> Check:
    if uri is None:
        store = project / "mlruns.db"
    elif uri.startswith("sqlite:///"):
        store = Path(uri.removeprefix("sqlite:///"))  # sqlite:////abs -> /abs; else cwd-relative
    elif uri.startswith("file:") or "://" not in uri:
        store = Path(uri.removeprefix("file://").removeprefix("file:")) / "mlruns"
    else:
        return Check("MLflow store", "OK", f"{uri}: a server, not checked from here")
    folder = store.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # MLflow makes the missing folders: what counts is the first one
    if _writable(folder):
        return Check("MLflow store", "OK", f"{store} (writable)")
    return Check(
        "MLflow store",
        "WARN",
        f"{folder} is not writable: MLflow will be skipped (the run directory keeps everything)",
    )


def check_kaggle_credentials() -> Check:
    """Credentials present and private; the key itself is never read into the report."""
    from medalist.kaggle.credentials import kaggle_json_path, permission_warning

    name = "Kaggle credentials"
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        if Path(token).is_file():
            problem = permission_warning(Path(token))
            return Check(name, "WARN" if problem else "OK", problem or "token file from env")
        return Check(name, "OK", "KAGGLE_API_TOKEN is set")
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return Check(name, "OK", f"KAGGLE_USERNAME={os.environ['KAGGLE_USERNAME']} and KAGGLE_KEY")
    for token_file in (Path.home() / ".kaggle" / f for f in ("access_token", "access_token.txt")):
        if token_file.is_file():
            problem = permission_warning(token_file)
            return Check(name, "WARN" if problem else "OK", problem or f"{token_file}")
    config = kaggle_json_path()
    if not config.is_file():
        return Check(
            name,
            "WARN",
            f"none found (KAGGLE_USERNAME/KAGGLE_KEY, KAGGLE_API_TOKEN or {config}): "
            "`medalist kaggle` can't download or submit",
        )
    problem = permission_warning(config)
    try:
        import json

        user = json.loads(config.read_text()).get("username")
    except (OSError, ValueError, AttributeError):
        return Check(name, "WARN", f"{config} is not valid JSON: download it again from Kaggle")
    if problem:
        return Check(name, "WARN", problem)
    return Check(name, "OK", f"{config} (user {user})")


# ---------------------------------------------------------------------------------------------
# helpers


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".medalist-doctor-"):
            return True
    except OSError:
        return False


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e3:,.0f} kB"
