"""Two `medalist tune` processes, as two machines would, on one study in a real PostgreSQL.

The test starts a throwaway server on 127.0.0.1 (initdb into a temp folder, `pg_ctl start` on a
free port, as the `postgres` user when run as root) and stops it afterwards; or it uses the
server in MEDALIST_TEST_POSTGRES_URL. Without the PostgreSQL binaries or psycopg2 it is
skipped, except in CI (CI set), where it fails.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import SYSTEM_TEMP, TINY_CONFIG, make_project, unavailable

from medalist.config.schema import Tune
from medalist.workflows.tune_trial import open_storage

pytestmark = pytest.mark.slow

TUNE = """\
tune:
  metric_folds: [0]
  space:
    train.lr: {type: float, low: 1e-4, high: 3.0e-2, log: true}
  n_startup_trials: 1
"""


def pg_binary(name: str) -> str | None:
    """Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off the PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server on loopback that lives as long as this module's tests."""
    if importlib.util.find_spec("psycopg2") is None:
        unavailable("psycopg2 is not installed (pip install psycopg2-binary)")
    if os.environ.get("MEDALIST_TEST_POSTGRES_URL"):
        yield os.environ["MEDALIST_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("the PostgreSQL server binaries are missing (apt-get install postgresql)")
    as_user: list[str] = []
    # In the system's temp folder: the postgres user can't enter pytest's private base folder.
    base = Path(tempfile.mkdtemp(prefix="medalist-pg-", dir=SYSTEM_TEMP))
    if os.geteuid() == 0:  # the server refuses to run as root
        if not shutil.which("runuser"):
            unavailable("running as root needs runuser to start PostgreSQL as postgres")
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()
    run = [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"]
    subprocess.run(run, check=True, capture_output=True)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [*as_user, pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w"]
    subprocess.run([*ctl, "-o", options, "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_on_one_postgres_study_number_the_trials_once_each(
    tmp_path: Path, postgres_url: str
) -> None:
    cfg = make_project(tmp_path / "proj", TINY_CONFIG + TUNE)
    project = cfg.parent.parent
    study = f"pg-{uuid.uuid4().hex[:8]}"
    args = ["tune", str(cfg), "--trials", "2", "--study", study, "--storage", postgres_url]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", "from medalist.cli import main; main()", *args],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
        assert "Traceback" not in err and "best: trial" in out

    found = optuna.load_study(study_name=study, storage=open_storage(postgres_url, Tune()))
    trials = found.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        run = project / "runs" / f"{study}-trial{t.number:03d}"
        assert json.loads((run / "trial.json").read_text())["trial"] == t.number
        ran = yaml.safe_load((run / "config.yaml").read_text())
        assert ran["train"]["lr"] == pytest.approx(t.params["train.lr"])
    assert "postgres@127.0.0.1" in outputs[0][0], "the storage is named in the summary"
