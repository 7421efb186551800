"""`medalist doctor`: OK / WARN / FAIL rows about the machine; exit code 1 when training is
blocked; never a secret in the output."""

from __future__ import annotations

import json
import os
from collections import namedtuple

import pytest
from conftest import TINY_CONFIG, make_project, medalist
from typer.testing import CliRunner

from medalist.envtools import doctor
from medalist.envtools.doctor import (
    GIB,
    MIB,
    Gpu,
    check_cpus,
    check_disk,
    check_gpus,
    check_kaggle_credentials,
    check_shm,
    check_trackers,
    folder_size,
    read_speed,
)

SECRET = "0123456789abcdef0123456789abcdef"


def test_gpu_under_16_gb_warns_and_the_kaggle_cards_pass():
    rows = check_gpus(
        [
            Gpu("Tesla T4", 15_843_721_216),  # what torch reports for Kaggle's T4
            Gpu("Tesla P100-PCIE-16GB", 17_071_734_784),
            Gpu("NVIDIA GeForce RTX 3060", 12_622_168_064),
        ]
    )
    assert [r.status for r in rows] == ["OK", "OK", "WARN"]
    assert "16 GB" in rows[2].detail and "RTX 3060" in rows[2].detail


def test_no_gpu_is_a_warning_not_a_failure():
    (row,) = check_gpus([])
    assert row.status == "WARN"


def test_tiny_shared_memory_blocks_training_only_with_dataloader_workers():
    assert check_shm(64 * MIB, num_workers=4).status == "FAIL"
    assert "--shm-size" in check_shm(64 * MIB, num_workers=4).detail
    assert check_shm(64 * MIB, num_workers=0).status == "WARN"
    assert check_shm(8 * GIB, num_workers=4).status == "OK"


def test_more_workers_than_cpus_warns():
    assert check_cpus(4, num_workers=8).status == "WARN"
    assert check_cpus(4, num_workers=4).status == "OK"


def test_saas_trackers_bring_the_competition_rules_warning_local_ones_do_not(tmp_path):
    rows = check_trackers(["mlflow", "wandb", "comet"], tmp_path, None)
    rules = [r for r in rows if r.name == "tracker rules"]
    assert len(rules) == 1 and rules[0].status == "WARN"
    assert "Weights & Biases and Comet" in rules[0].detail and "rules" in rules[0].detail

    local = check_trackers(["mlflow", "csv", "tensorboard"], tmp_path, None)
    assert not [r for r in local if r.name == "tracker rules"]
    assert [r.status for r in local if r.name == "MLflow store"] == ["OK"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home without Kaggle credentials in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


def _kaggle_json(home, mode):
    path = home / ".kaggle" / "kaggle.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"username": "someone", "key": SECRET}))
    path.chmod(mode)
    return path


def test_kaggle_json_readable_by_others_warns_with_the_fix(home):
    path = _kaggle_json(home, 0o644)
    row = check_kaggle_credentials()
    assert row.status == "WARN"
    assert f"chmod 600 {path}" in row.detail
    path.chmod(0o600)
    assert check_kaggle_credentials().status == "OK"


def test_kaggle_credentials_from_the_environment_are_enough(home, monkeypatch):
    assert check_kaggle_credentials().status == "WARN"  # none at all
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    row = check_kaggle_credentials()
    assert row.status == "OK" and SECRET not in row.detail


def test_cli_never_prints_the_kaggle_key(home, monkeypatch, tmp_path):
    _kaggle_json(home, 0o644)
    monkeypatch.setenv("KAGGLE_KEY", SECRET)  # a key without a user name: the file is used
    r = medalist("doctor", "--project", str(tmp_path))
    assert r.returncode in (0, 1), r.stderr
    assert "Kaggle credentials" in r.stdout and "chmod 600" in r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_read_speed_probe_stops_at_its_byte_cap_or_when_its_time_is_spent(tmp_path):
    for i in range(6):
        (tmp_path / "sub").mkdir(exist_ok=True)
        (tmp_path / "sub" / f"f{i}.bin").write_bytes(os.urandom(3 * MIB))
    mb_s, n = read_speed(tmp_path, budget_s=3600.0, max_bytes=8 * MIB)
    assert 8 * MIB <= n <= 12 * MIB  # stops at the first chunk past the cap
    assert mb_s > 0
    # A spent budget stops the probe after its first read, with 15 MiB left to read.
    _, n = read_speed(tmp_path, budget_s=0.0, max_bytes=1 << 40)
    assert n == 3 * MIB
    assert read_speed(tmp_path / "sub" / "nothing-here") is None


def test_free_disk_is_weighed_against_the_data_size(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor, "folder_size", lambda root, budget_s=0: (50 * GIB, True))
    monkeypatch.setattr(doctor, "read_speed", lambda root: None)

    def disk(free):
        monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(500 * GIB, 0, free))
        return next(r for r in check_disk(tmp_path, tmp_path) if r.name == "disk")

    assert disk(400 * GIB).status == "OK"
    assert disk(20 * GIB).status == "WARN"  # less room than the data itself
    assert disk(GIB // 2).status == "FAIL"  # no room for a checkpoint


def test_data_read_row_times_a_real_read_and_ignores_a_tiny_folder(tmp_path):
    (tmp_path / "big.bin").write_bytes(os.urandom(20 * MIB))
    row = next(r for r in check_disk(tmp_path, tmp_path) if r.name == "data read")
    assert "MB/s" in row.detail
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "a.png").write_bytes(b"x" * 100)
    row = next(r for r in check_disk(tmp_path, tiny) if r.name == "data read")
    assert row.status == "OK" and "too little" in row.detail


def test_folder_size_follows_links_but_never_loops(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(b"x" * 1000)
    (data / "loop").symlink_to(data)  # a folder that contains itself
    size, complete = folder_size(data, budget_s=5)
    assert (size, complete) == (1000, True)


def test_doctor_exits_1_when_shared_memory_blocks_workers(tmp_path, monkeypatch):
    import medalist.commands  # noqa: F401 - registers the commands
    from medalist.cli_app import app

    cfg = make_project(
        tmp_path / "proj",
        TINY_CONFIG.replace("  image_size: 16", "  image_size: 16\n  num_workers: 2"),
    )
    monkeypatch.setattr(doctor, "shm_bytes", lambda: 64 * MIB)
    monkeypatch.setattr(doctor, "cpu_count", lambda: 4)

    result = CliRunner().invoke(app, ["doctor", "--config", str(cfg)])

    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "blocks training" in result.output


def test_cli_table_exit_code_matches_its_fail_rows(tiny_project):
    r = medalist("doctor", "--config", str(tiny_project))
    for name in ("python", "torch", "disk", "data read", "shared memory", "CPUs"):
        assert name in r.stdout
    assert (r.returncode == 1) == ("FAIL" in r.stdout), r.stdout + r.stderr


@pytest.mark.parametrize(
    "args, named",
    [
        (["--data", "no/such/folder"], "--data"),
        (["--config", "no/such.yaml"], "no/such.yaml"),
        (["no/such.yaml"], "no/such.yaml"),
        (["a.yaml", "--config", "b.yaml"], "give one config"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, args, named):
    r = medalist("doctor", *args, cwd=tmp_path)
    assert r.returncode == 2
    assert named in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
