"""`medalist kaggle ...` against a fake Kaggle API on 127.0.0.1: the requests the client sends,
and what a user sees when credentials are missing or the server refuses.

Every command runs in a subprocess (the `medalist` helper): `import kaggle` and the
KAGGLE_API_ENVIRONMENT it reads at import stay out of the test process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import medalist
from fake_kaggle import FakeKaggle

from medalist.kaggle.package import PackageOptions, create_package

FAKE_KEY = "fake-kaggle-key-3f9c2e7a1b"
COMP = "shapes-demo"


@pytest.fixture(scope="module")
def project(trained_run_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained project with its run packaged; the project folder."""
    root = tmp_path_factory.mktemp("kaggle") / "proj"
    shutil.copytree(trained_run_template.parent.parent, root, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAGGLE_USERNAME", "alice")
        create_package([root / "runs" / "base"], PackageOptions(competition=COMP))
    return root


@pytest.fixture
def package(project: Path) -> Path:
    return project / "packages" / f"{COMP}-medalist"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeKaggle:
    """A running fake Kaggle, and an environment that points the client at it as alice."""
    with FakeKaggle() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("KAGGLE_USERNAME", "alice")
        monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
        monkeypatch.setenv("TMPDIR", str(tmp_path))  # the client's upload-resume state
        yield server


def kaggle(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`medalist kaggle ...`; the key must not appear in anything it prints."""
    r = medalist("kaggle", *args, cwd=cwd, timeout=120)
    assert FAKE_KEY not in r.stdout + r.stderr
    return r


def refused(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    message = r.stderr.strip().splitlines()
    assert len(message) == 1, message
    for w in words:
        assert w in message[0], message[0]


def test_dataset_creates_the_package_dataset_with_every_file(
    fake: FakeKaggle, package: Path
) -> None:
    r = kaggle("dataset", str(package))
    assert r.returncode == 0, r.stderr
    assert "created dataset alice/shapes-demo-medalist" in r.stdout
    (create,) = fake.named("CreateDataset")
    assert create.user == "alice"
    body = create.body
    assert (body["ownerSlug"], body["slug"]) == ("alice", "shapes-demo-medalist")
    assert body["licenseName"] == "CC0-1.0" and body["isPrivate"] is True
    assert (
        body["title"]
        == json.loads((package / "dataset/dataset-metadata.json").read_text())["title"]
    )
    # folders go up as zips; every upload's token is in the dataset
    assert set(fake.uploads) == {"medalist-package.json", "runs.zip", "wheels.zip"}
    tokens = {c.body for c in fake.named("PUT")}
    assert {f["token"] for f in body["files"]} == tokens
    manifest = json.loads(fake.uploads["medalist-package.json"])
    assert manifest["dataset_id"] == "alice/shapes-demo-medalist"


def test_dataset_uploads_a_new_version_when_it_exists(fake: FakeKaggle, package: Path) -> None:
    fake.existing_datasets.add("alice/shapes-demo-medalist")
    r = kaggle("dataset", str(package), "--notes", "fold 3 retrained")
    assert r.returncode == 0, r.stderr
    assert not fake.named("CreateDataset")
    (version,) = fake.named("CreateDatasetVersion")
    assert version.body["datasetSlug"] == "shapes-demo-medalist"
    assert version.body["body"]["versionNotes"] == "fold 3 retrained"
    assert len(version.body["body"]["files"]) == 3


def test_push_sends_the_notebook_offline_with_its_sources(fake: FakeKaggle, package: Path) -> None:
    r = kaggle("push", str(package), "--accelerator", "NvidiaTeslaT4")
    assert r.returncode == 0, r.stderr
    (save,) = fake.named("SaveKernel")
    body = save.body
    assert body["slug"] == "alice/shapes-demo-medalist-inference"
    assert body["enableInternet"] is False and body["kernelType"] == "notebook"
    assert body["datasetDataSources"] == ["alice/shapes-demo-medalist"]
    assert body["competitionDataSources"] == [COMP]
    assert body["machineShape"] == "NvidiaTeslaT4"
    cells = json.loads(body["text"])["cells"]
    assert any("predict_offline" in c["source"] for c in cells)
    assert FAKE_KEY not in body["text"]


def test_push_without_accelerator_turns_the_gpu_off(fake: FakeKaggle, package: Path) -> None:
    meta = package / "notebook" / "kernel-metadata.json"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "enable_gpu": True}))
    try:
        assert kaggle("push", str(package), "--accelerator", "none").returncode == 0
    finally:
        meta.write_text(json.dumps(data))
    (save,) = fake.named("SaveKernel")
    assert save.body["enableGpu"] is False and "machineShape" not in save.body


def test_status_and_output_fetch_the_kernel_run(
    fake: FakeKaggle, package: Path, tmp_path: Path
) -> None:
    r = kaggle("status", str(package))
    assert r.returncode == 0 and "complete" in r.stdout
    (status,) = fake.named("GetKernelSessionStatus")
    assert status.body == {"userName": "alice", "kernelSlug": "shapes-demo-medalist-inference"}
    r = kaggle("output", "alice/shapes-demo-medalist-inference", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "submission.csv").read_bytes() == fake.output_files["submission.csv"]


def test_submit_a_run_uploads_its_file_described_by_run_and_cv(
    fake: FakeKaggle, project: Path
) -> None:
    run = project / "runs" / "base"
    r = kaggle("submit", str(run), "--competition", COMP, "--message", "first try")
    assert r.returncode == 0, r.stderr
    assert fake.uploads["submission.csv"] == (run / "submission.csv").read_bytes()
    (create,) = fake.named("CreateSubmission")
    scores = json.loads((run / "scores.json").read_text())
    description = create.body["submissionDescription"]
    assert description.startswith("base: CV accuracy") and "first try" in description
    assert f"{scores['mean']:.4f}" in description
    assert create.body["competitionName"] == COMP


def test_submit_a_run_takes_its_zip_of_mask_files_when_predict_wrote_it_last(
    fake: FakeKaggle, project: Path
) -> None:
    import os

    run = project / "runs" / "base"
    zipped = run / "submission.zip"
    zipped.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip, newer than the CSV
    later = (run / "submission.csv").stat().st_mtime + 10
    os.utime(zipped, (later, later))
    try:
        r = kaggle("submit", str(run), "--competition", COMP)
        assert r.returncode == 0, r.stderr
        assert fake.uploads["submission.zip"] == zipped.read_bytes()
    finally:
        zipped.unlink()


def test_submit_a_package_makes_a_code_submission(fake: FakeKaggle, package: Path) -> None:
    r = kaggle("submit", str(package), "--version", "3")
    assert r.returncode == 0, r.stderr
    (code,) = fake.named("CreateCodeSubmission")
    assert code.body["kernelOwner"] == "alice"
    assert code.body["kernelSlug"] == "shapes-demo-medalist-inference"
    assert code.body["kernelVersion"] == 3 and code.body["fileName"] == "submission.csv"
    assert code.body["competitionName"] == COMP
    assert code.body["submissionDescription"].startswith("base: CV accuracy")
    assert not fake.uploads


def test_submissions_are_saved_as_kaggle_writes_them_and_leaderboard_shown(
    fake: FakeKaggle, project: Path
) -> None:
    fake.submissions = [
        {
            "ref": 7,
            "fileName": "submission.csv",
            "date": "2026-11-20T10:00:00.000Z",
            "description": "base: CV accuracy 0.5278 +- 0.1712",
            "status": "COMPLETE",
            "publicScore": "0.61",
            "privateScore": "",
        },
    ]
    fake.leaderboard = [
        {
            "teamId": 1,
            "teamName": "first team",
            "submissionDate": "2026-11-20T10:00:00.000Z",
            "score": "0.99",
        },
    ]
    csv = project / "kaggle" / "subs.csv"
    r = kaggle("submissions", "--competition", COMP, "--project", str(project), "--csv", str(csv))
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == [
        "ref",
        "fileName",
        "date",
        "description",
        "status",
        "publicScore",
        "privateScore",
    ]
    assert table.loc[0, "description"] == "base: CV accuracy 0.5278 +- 0.1712"
    assert float(table.loc[0, "publicScore"]) == 0.61
    # and the score is in the project's leaderboard ledger, matched to the run by name
    assert "1 submission(s) matched" in r.stdout
    ledger = pd.read_csv(project / "leaderboard.csv")
    assert ledger.loc[ledger["run"] == "base", "public"].iloc[0] == 0.61
    r = kaggle("leaderboard", "--competition", COMP, "--top", "5")
    assert r.returncode == 0 and "first team" in r.stdout
    (board,) = fake.named("GetLeaderboard")
    assert board.body["competitionName"] == COMP and board.body["pageSize"] == 5


# ---- what a user sees when it goes wrong --------------------------------------------------------
def test_missing_credentials_say_how_to_add_them(
    fake: FakeKaggle, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    r = kaggle("dataset", str(package))
    refused(r, "no Kaggle credentials", "KAGGLE_USERNAME", "kaggle.json")
    assert fake.calls == []


def test_half_given_credentials_are_an_error(
    fake: FakeKaggle, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAGGLE_KEY")
    refused(kaggle("push", str(package)), "KAGGLE_USERNAME is set but KAGGLE_KEY is not")
    assert fake.calls == []


def test_server_refusal_shows_the_servers_message(fake: FakeKaggle, project: Path) -> None:
    fake.refuse["CreateSubmission"] = (400, "Daily submission limit (5) reached")
    r = kaggle("submit", str(project / "runs" / "base"), "--competition", COMP)
    refused(r, "Kaggle refused to submit", "Daily submission limit (5) reached", "HTTP 400")


def test_a_rejected_key_points_at_the_credentials(fake: FakeKaggle, package: Path) -> None:
    fake.refuse["SaveKernel"] = (401, "Unauthenticated")
    refused(kaggle("push", str(package)), "Unauthenticated", "HTTP 401", "KAGGLE_KEY")


def test_kaggle_json_is_used_and_open_permissions_warned_about(
    fake: FakeKaggle, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    config = Path(os.environ["KAGGLE_CONFIG_DIR"])
    config.mkdir(parents=True)
    (config / "kaggle.json").write_text(json.dumps({"username": "bob", "key": FAKE_KEY}))
    (config / "kaggle.json").chmod(0o644)
    r = kaggle("status", "bob/some-notebook")
    assert r.returncode == 0, r.stderr
    assert "chmod 600" in r.stderr and "644" in r.stderr
    assert fake.calls[0].user == "bob"


def test_submissions_need_a_competition_name(fake: FakeKaggle, tmp_path: Path) -> None:
    refused(
        kaggle("submissions", "--project", str(tmp_path)), "no competition name", "--competition"
    )


def test_kernel_must_be_user_slug_or_a_package(fake: FakeKaggle) -> None:
    refused(kaggle("status", "just-a-slug"), "user/slug")


def test_a_server_that_echoes_the_key_never_shows_it(fake: FakeKaggle) -> None:
    fake.refuse["GetKernelSessionStatus"] = (400, f"key {FAKE_KEY} is not valid here")
    refused(kaggle("status", "alice/some-notebook"), "key *** is not valid here", "HTTP 400")


def test_an_unreachable_server_is_a_network_error(
    fake: FakeKaggle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MEDALIST_KAGGLE_ENDPOINT", f"http://127.0.0.1:{port}")
    refused(kaggle("status", "alice/some-notebook"), "could not reach Kaggle", "network")
