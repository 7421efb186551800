"""`medalist kaggle download SLUG` and `medalist new DIR --competition SLUG` against the fake
Kaggle API: the data is fetched and unzipped by the kaggle package, a refusal is one line.

The fake answers `DownloadDataFiles` the way Kaggle does, with a redirect to a signed storage
URL of the competition's zip; commands run in subprocesses (see test_kaggle_api.py).
"""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import make_competition, medalist
from fake_kaggle import FakeKaggle

from medalist.config import load_config
from medalist.errors import UserError
from medalist.kaggle.download import competition_slug

FAKE_KEY = "fake-kaggle-key-77d1c0a9e2"
COMP = "shapes-demo"
RULES_403 = "You must accept this competition's rules before you'll be able to download files."


@pytest.fixture(scope="module")
def competition(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A Kaggle-layout competition folder and the zip Kaggle would serve of it."""
    folder = make_competition(tmp_path_factory.mktemp("comp") / "shapes")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return folder, buffer.getvalue()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, competition) -> FakeKaggle:
    """The fake Kaggle serving COMP's data, and a client environment pointed at it as alice."""
    with FakeKaggle(competition_zips={COMP: competition[1]}) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("KAGGLE_USERNAME", "alice")
        monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
        yield server


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The folder the commands run in (the client's config folder is elsewhere)."""
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    r = medalist(*args, cwd=cwd, timeout=180)
    assert FAKE_KEY not in r.stdout + r.stderr
    return r


def refused(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    message = r.stderr.strip().splitlines()
    assert len(message) == 1, message
    for w in words:
        assert w in message[0], message[0]


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ---- medalist kaggle download -------------------------------------------------------------------
def test_download_fetches_and_unzips_into_kaggle_data_slug(fake, competition, work):
    r = run("kaggle", "download", COMP, cwd=work)

    assert r.returncode == 0, r.stderr
    folder = work / "kaggle-data" / COMP
    same_files(folder, competition[0])  # every file, byte for byte, and the zip removed
    (call,) = fake.named("DownloadDataFiles")
    assert call.body == {"competitionName": COMP} and call.user == "alice"
    (get,) = fake.named("GET")
    assert get.body == f"/storage/{COMP}.zip"
    assert "train.csv" in r.stdout
    assert f"medalist new PROJECT --data {folder.relative_to(work)}" in r.stdout


def test_download_into_a_given_folder_from_the_competitions_address(fake, competition, work):
    url = f"https://www.kaggle.com/competitions/{COMP}/data"
    r = run("kaggle", "download", url, "--to", str(work / "here"), cwd=work)
    assert r.returncode == 0, r.stderr
    same_files(work / "here", competition[0])


def test_rules_not_accepted_is_one_line_that_says_so(fake, work):
    fake.refuse["DownloadDataFiles"] = (403, RULES_403)
    r = run("kaggle", "download", COMP, cwd=work)
    refused(r, "HTTP 403", "accept the competition's rules", f"competitions/{COMP}/rules", "alice")
    assert not (work / "kaggle-data" / COMP).exists()


def test_an_unknown_competition_shows_the_servers_message(fake, work):
    r = run("kaggle", "download", "no-such-thing", cwd=work)
    refused(r, "Competition no-such-thing not found", "HTTP 404")
    assert not (work / "kaggle-data" / "no-such-thing").exists()


@pytest.mark.parametrize("slug", ["Shapes Demo", "shapes/demo", "shapes_demo"])
def test_a_name_that_is_no_slug_is_refused_before_any_request(fake, work, slug):
    refused(run("kaggle", "download", slug, cwd=work), "not a Kaggle competition name")
    assert fake.calls == []


def test_a_folder_with_files_is_never_written_into(fake, work):
    (work / "full").mkdir()
    (work / "full" / "train.csv").write_text("mine\n")
    r = run("kaggle", "download", COMP, "--to", str(work / "full"), cwd=work)
    refused(r, "--to", "not empty")
    assert (work / "full" / "train.csv").read_text() == "mine\n"
    assert fake.calls == []


def test_competition_slug_takes_the_slug_or_its_address():
    assert competition_slug("titanic") == "titanic"
    assert competition_slug("https://www.kaggle.com/competitions/titanic/rules") == "titanic"
    assert competition_slug("kaggle.com/c/digit-recognizer") == "digit-recognizer"
    with pytest.raises(UserError):
        competition_slug("https://www.kaggle.com/datasets/someone/thing")


# ---- medalist new --competition -----------------------------------------------------------------
@pytest.mark.slow
def test_new_with_a_competition_downloads_into_data_and_infers_the_config(fake, competition, work):
    r = run("new", "proj", "--competition", COMP, cwd=work)

    assert r.returncode == 0, r.stderr
    data = work / "proj" / "data"
    assert data.is_dir() and not data.is_symlink()
    same_files(data, competition[0])
    cfg = load_config(work / "proj" / "configs" / "baseline.yaml")
    assert cfg.competition.name == COMP
    assert cfg.path(cfg.competition.train_csv) == data / "train.csv"
    assert cfg.competition.target_column == "label" and cfg.competition.id_column == "id"
    assert os.listdir(work) == ["proj"], "no download folder left beside the project"
    readme = (work / "proj" / "readme.md").read_text()
    assert ".download" not in readme and f"the Kaggle competition `{COMP}`" in readme


def test_new_with_a_refused_competition_makes_nothing(fake, work):
    fake.refuse["DownloadDataFiles"] = (403, RULES_403)
    refused(run("new", "proj", "--competition", COMP, cwd=work), "HTTP 403", "rules")
    assert os.listdir(work) == []


@pytest.mark.parametrize(
    "args",
    [["proj"], ["proj", "--data", "somewhere", "--competition", COMP]],
)
def test_new_needs_either_data_or_a_competition(fake, work, args):
    refused(run("new", *args, cwd=work), "--data", "--competition")
    assert fake.calls == [] and not (work / "proj").exists()


def test_new_with_a_competition_never_writes_into_a_full_folder(fake, work):
    (work / "proj").mkdir()
    (work / "proj" / "notes.txt").write_text("mine\n")
    refused(run("new", "proj", "--competition", COMP, cwd=work), "not empty")
    assert os.listdir(work / "proj") == ["notes.txt"] and fake.calls == []
