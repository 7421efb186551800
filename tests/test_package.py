"""`medalist package`: the dataset folder, the offline notebook, and `--check` against predict."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import medalist, unavailable

from medalist.errors import UserError
from medalist.kaggle.check import (
    CheckFailed,
    check_package,
    compare_submissions,
    offline_prefix,
    reference_submission,
)
from medalist.kaggle.package import (
    PackageOptions,
    create_package,
    read_weights_file,
)
from medalist.kaggle.runtime import describe_test_set, predict_offline
from medalist.workflows.inference import inference_weights

FAKE_KEY = "fake-kaggle-key-3f9c2e7a1b"


@pytest.fixture
def kaggle_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A user name and a (fake) key in the environment, and an empty Kaggle config folder."""
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))


@pytest.fixture(scope="module")
def shared(trained_run_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained project with its run packaged (quick path on); the package folder.

    Read it, don't change it: tests that change a package take `package`, a private copy.
    """
    project = tmp_path_factory.mktemp("packaged") / "proj"
    shutil.copytree(trained_run_template.parent.parent, project, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAGGLE_USERNAME", "alice")
        mp.setenv("KAGGLE_KEY", FAKE_KEY)
        opts = PackageOptions(competition="shapes-demo")
        return create_package([project / "runs" / "base"], opts).root


@pytest.fixture
def package(shared: Path, trained_run: Path) -> Path:
    """A private copy of the shared package, pointing at the private `trained_run`."""
    root = trained_run.parent.parent / "packages" / shared.name
    shutil.copytree(shared, root)
    local = json.loads((root / "local.json").read_text())
    local["runs"] = [str(trained_run)]
    local["data_root"] = str(_data(trained_run))
    (root / "local.json").write_text(json.dumps(local))
    return root


def _data(run: Path) -> Path:
    return run.parent.parent / "data"


def _files_with(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _zipped_files_with(root: Path, needle: bytes) -> list[str]:
    hits = []
    for whl in root.rglob("*.whl"):
        with zipfile.ZipFile(whl) as z:
            hits += [n for n in z.namelist() if needle in z.read(n)]
    return hits


def test_package_is_a_kaggle_dataset_with_inference_weights_configs_and_a_wheel(
    shared: Path, trained_run_template: Path
) -> None:
    run, dataset = trained_run_template, shared / "dataset"
    meta = json.loads((dataset / "dataset-metadata.json").read_text())
    assert meta["id"] == "alice/shapes-demo-medalist"
    assert meta["licenses"] == [{"name": "CC0-1.0"}] and 6 <= len(meta["title"]) <= 50
    # each fold: exactly the model's weights of best.ckpt, nothing of the optimizer or trainer
    for k in range(3):
        ckpt = torch.load(run / f"fold_{k}/best.ckpt", weights_only=False)["state_dict"]
        packed = torch.load(dataset / f"runs/base/fold_{k}.pt", weights_only=True)
        model_keys = {n.removeprefix("model.") for n in ckpt if n.startswith("model.")}
        assert set(packed) == model_keys
        assert all(torch.equal(packed[n], ckpt[f"model.{n}"]) for n in packed)
    assert (dataset / "runs/base/config.yaml").read_text() == (run / "config.yaml").read_text()
    assert (dataset / "runs/base/task.json").is_file()
    (wheel,) = (dataset / "wheels").glob("medalist-*.whl")
    assert "medalist/kaggle/notebook.py" in zipfile.ZipFile(wheel).namelist()
    kernel = json.loads((shared / "notebook" / "kernel-metadata.json").read_text())
    assert kernel["enable_internet"] is False and kernel["enable_gpu"] is False
    assert kernel["dataset_sources"] == ["alice/shapes-demo-medalist"]
    assert kernel["competition_sources"] == ["shapes-demo"]
    assert kernel["kernel_type"] == "notebook"
    assert (shared / "notebook" / kernel["code_file"]).is_file()
    # the key that was in the environment is nowhere in what would be uploaded
    assert _files_with(shared, FAKE_KEY.encode()) == []
    assert _zipped_files_with(shared, FAKE_KEY.encode()) == []


def test_notebook_reads_as_steps_with_no_medalist_code_pasted_in(shared: Path) -> None:
    (path,) = (shared / "notebook").glob("*.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    for i, kind in enumerate(kinds):
        if kind == "code":
            assert kinds[i - 1] == "markdown", f"code cell {i} has no markdown before it"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "def " not in code and "class " not in code and "torch" not in code
    assert "--no-index" in code and "{WHEELS}" in code
    # every path hangs off KAGGLE_ROOT, which is /kaggle unless the check moves it
    assert 'os.environ.get("KAGGLE_ROOT", "/kaggle")' in code
    assert code.count('"/kaggle"') == 1 and 'KAGGLE_ROOT / "working"' in code


def test_half_precision_stores_half_the_bytes(
    shared: Path, trained_run: Path, kaggle_env: None
) -> None:
    half = create_package(
        [trained_run],
        PackageOptions(competition="shapes-demo", half=True, out=trained_run.parent / "half"),
    )
    weights = torch.load(half.dataset_dir / "runs/base/fold_0.pt", weights_only=True)
    floats = [v for v in weights.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    full = sum(p.stat().st_size for p in (shared / "dataset/runs/base").glob("fold_*.pt"))
    assert sum(f.packaged_bytes for f in half.folds) / full < 0.6


def test_ema_runs_ship_the_averaged_weights() -> None:
    a, b = torch.zeros(2), torch.ones(2)
    state = {"model.fc.weight": a, "ema.module.fc.weight": b, "loss_fn.weight": a}
    assert inference_weights(state, "ema") == {"fc.weight": b}
    assert inference_weights(state, None) == {"fc.weight": a}
    assert inference_weights({"model.fc.weight": a}, "ema") == {"fc.weight": a}


def test_ensemble_weights_are_normalised_and_must_name_every_run(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"weights": {"a": 3, "b": 1}}))
    assert read_weights_file(path, ["a", "b"]) == {"a": 0.75, "b": 0.25}
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(UserError, match="'b' needs a weight"):
        read_weights_file(path, ["a", "b"])
    path.write_text(json.dumps({"a": 1, "c": 1}))
    with pytest.raises(UserError, match="'c' is not among"):
        read_weights_file(path, ["a"])


def test_offline_prediction_equals_medalist_predict(
    shared: Path, trained_run_template: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sub.csv"
    data = _data(trained_run_template)
    got = predict_offline(shared / "dataset", data, out, quick="off")
    want = pd.read_csv(trained_run_template / "submission.csv")
    assert compare_submissions(pd.read_csv(out), want, 1e-5) == 0.0
    assert list(got.columns) == list(want.columns)


def test_an_ensemble_is_blended_with_its_weights_as_predict_would(
    trained_run: Path, kaggle_env: None, tmp_path: Path
) -> None:
    other = trained_run.parent / "other"
    shutil.copytree(trained_run, other)
    for k in range(3):  # a second run that disagrees: its head prefers the last class
        ckpt = torch.load(other / f"fold_{k}/best.ckpt", weights_only=False)
        ckpt["state_dict"]["model.fc.bias"] += torch.tensor([0.0, 0.0, 0.5])
        torch.save(ckpt, other / f"fold_{k}/best.ckpt")
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({"base": 3, "other": 1}))
    opts = PackageOptions(competition="shapes-demo", weights=weights, out=tmp_path / "ens")
    result = create_package([trained_run, other], opts)
    assert result.manifest["weights"] == {"base": 0.75, "other": 0.25}
    got = predict_offline(result.dataset_dir, _data(trained_run), tmp_path / "s.csv", quick="off")
    want = reference_submission([trained_run, other], result.manifest, tmp_path)
    assert compare_submissions(got, want, 1e-5) == 0.0


def test_quick_path_runs_on_the_public_copy_and_not_on_a_hidden_test_set(
    shared: Path, trained_run_template: Path, tmp_path: Path
) -> None:
    package = shared
    data = _data(trained_run_template)
    public = describe_test_set(package / "dataset", data)
    assert public.quick and public.rows == 9
    out = tmp_path / "quick.csv"
    predict_offline(package / "dataset", data, out)
    assert pd.read_csv(out).equals(pd.read_csv(data / "sample_submission.csv"))
    assert not describe_test_set(package / "dataset", data, quick="off").quick
    # a "hidden" test set: other ids, same layout
    hidden = tmp_path / "hidden"
    shutil.copytree(data, hidden)
    sample = pd.read_csv(hidden / "sample_submission.csv").iloc[:5]
    sample.to_csv(hidden / "sample_submission.csv", index=False)
    sample[["id"]].to_csv(hidden / "test.csv", index=False)
    seen = describe_test_set(package / "dataset", hidden)
    assert not seen.quick and seen.rows == 5
    assert describe_test_set(package / "dataset", hidden, quick="on").quick


def test_quick_rows_rule_and_a_package_without_quick_path(
    trained_run: Path, kaggle_env: None
) -> None:
    data = _data(trained_run)
    small = create_package(
        [trained_run], PackageOptions(competition="shapes-demo", quick_rows=20, out=data / "q")
    )
    assert describe_test_set(small.dataset_dir, data).quick
    manifest = small.dataset_dir / "medalist-package.json"
    (small.dataset_dir / "medalist-package.json").write_text(
        manifest.read_text().replace('"enabled": true', '"enabled": false')
    )
    assert not describe_test_set(small.dataset_dir, data).quick


def test_network_prefix_leaves_only_loopback() -> None:
    prefix, why = offline_prefix()
    if not prefix:
        unavailable(why)  # CI runs as root, with util-linux's unshare
    out = subprocess.run([*prefix, "cat", "/proc/net/dev"], capture_output=True, text=True)
    interfaces = [line.split(":")[0].strip() for line in out.stdout.splitlines()[2:]]
    assert interfaces == ["lo"]


def test_compare_names_the_column_that_differs() -> None:
    want = pd.DataFrame({"id": ["a", "b"], "p": [0.1, 0.9], "label": ["x", "y"]})
    got = want.copy()
    got.loc[1, "p"] = 0.9 + 1e-3
    with pytest.raises(UserError, match="column 'p'.*0.001"):
        compare_submissions(got, want, 1e-5)
    got = want.copy()
    got.loc[0, "label"] = "y"
    with pytest.raises(UserError, match="column 'label': 1 of 2 labels differ"):
        compare_submissions(got, want, 1e-5)


def test_compare_takes_an_empty_cell_on_both_sides_as_equal(tmp_path: Path) -> None:
    """A detection submission leaves an image without boxes empty; read back, the cell is
    missing in both files, and the check must not count it as a difference."""
    sub = pd.DataFrame({"image_id": ["a", "b"], "PredictionString": ["0.9 1 2 3 4", ""]})
    sub.to_csv(tmp_path / "s.csv", index=False)
    want = pd.read_csv(tmp_path / "s.csv")
    assert want["PredictionString"].isna().tolist() == [False, True]
    assert compare_submissions(pd.read_csv(tmp_path / "s.csv"), want, 1e-5) == 0.0
    got = want.copy()
    got.loc[1, "PredictionString"] = "0.5 1 2 3 4"
    with pytest.raises(UserError, match="column 'PredictionString': 1 of 2 labels differ"):
        compare_submissions(got, want, 1e-5)


# ---- errors a user sees -------------------------------------------------------------------------
def _fails(r: object, *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    message = r.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for w in words:
        assert w in message, message


def test_package_refuses_a_folder_that_is_not_a_run(tmp_path: Path, kaggle_env: None) -> None:
    _fails(medalist("package", str(tmp_path), "--competition", "shapes-demo"), "not a run")


def test_package_needs_a_competition_name(trained_run: Path, kaggle_env: None) -> None:
    _fails(medalist("package", str(trained_run)), "competition.name", "--competition")


def test_package_needs_a_kaggle_user_name(
    trained_run: Path, kaggle_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    _fails(
        medalist("package", str(trained_run), "--competition", "shapes-demo"),
        "no Kaggle user name",
        "--user",
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--slug", "Bad Slug"], ["--slug", "6 to 50"]),
        (["--quick-mode", "fast"], ["--quick-mode", "sample or one-fold"]),
        (["--quick-rows", "-1"], ["--quick-rows"]),
        (["--extra-wheel", "missing-1.0-py3-none-any.whl"], ["--extra-wheel", "not found"]),
    ],
)
def test_package_options_are_checked(
    trained_run: Path, kaggle_env: None, args: list[str], words: list[str]
) -> None:
    _fails(medalist("package", str(trained_run), "--competition", "shapes-demo", *args), *words)


def test_a_competition_name_with_capitals_or_underscores_makes_a_valid_dataset_slug(
    trained_run: Path, kaggle_env: None
) -> None:
    made = create_package([trained_run], PackageOptions(competition="Shapes_Demo"))
    assert made.dataset_id == "alice/shapes-demo-medalist"


def test_package_weights_must_name_the_packaged_runs(
    trained_run: Path, kaggle_env: None, tmp_path: Path
) -> None:
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({"base": 1, "other": 1}))
    r = medalist(
        "package", str(trained_run), "--competition", "shapes-demo", "--weights", str(weights)
    )
    _fails(r, "--weights", "'other'")


def test_package_never_replaces_an_existing_one_unasked(
    package: Path, trained_run: Path, kaggle_env: None
) -> None:
    before = (package / "dataset" / "medalist-package.json").read_text()
    r = medalist("package", str(trained_run), "--competition", "shapes-demo", "--out", str(package))
    _fails(r, "exists", "--overwrite")
    assert (package / "dataset" / "medalist-package.json").read_text() == before
    _fails(medalist("package", str(package)), "is a package", "--check")


def test_package_refuses_a_run_without_finished_folds(trained_run: Path, kaggle_env: None) -> None:
    for k in range(3):
        (trained_run / f"fold_{k}" / "result.json").unlink()
    _fails(
        medalist("package", str(trained_run), "--competition", "shapes-demo"),
        "no finished fold",
    )


# ---- --check: the notebook offline, against medalist predict ------------------------------------
def _editable_medalist() -> bool:
    from importlib import metadata

    text = metadata.distribution("medalist").read_text("direct_url.json") or "{}"
    return json.loads(text).get("dir_info", {}).get("editable", False)


@pytest.mark.slow
def test_check_runs_the_notebook_offline_and_matches_predict(
    trained_run: Path, kaggle_env: None
) -> None:
    r = medalist("package", str(trained_run), "--competition", "shapes-demo", "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fold weights" in r.stdout and "MB" in r.stdout  # the sizes, printed
    assert "check passed" in r.stdout and "equal to medalist predict" in r.stdout
    assert "quick path: valid" in r.stdout
    if offline_prefix()[0]:  # root, with network namespaces allowed
        assert "network: cut" in r.stdout
    root = trained_run.parent.parent / "packages" / "shapes-demo-medalist"
    (executed,) = (root / "check").glob("*.ipynb")
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert "full inference" in outputs
    assert FAKE_KEY not in outputs + r.stdout + r.stderr
    assert _files_with(root, FAKE_KEY.encode()) == []
    assert _editable_medalist(), "the check installed medalist into the developer's venv"


@pytest.mark.slow
def test_check_fails_when_the_notebook_disagrees_with_predict(
    package: Path, trained_run: Path
) -> None:
    first = pd.read_csv(trained_run / "submission.csv")["label"].iloc[0]
    classes = json.loads((trained_run / "task.json").read_text())["classes"]
    other = next(i for i, c in enumerate(classes) if c != first)
    for path in (package / "dataset" / "runs" / "base").glob("fold_*.pt"):
        weights = torch.load(path, weights_only=True)
        (head,) = [n for n, v in weights.items() if n.endswith("bias") and len(v) == len(classes)]
        weights[head] = torch.from_numpy(np.eye(len(classes))[other] * 1e4).float()
        torch.save(weights, path)
    with pytest.raises(CheckFailed, match="differ from medalist predict"):
        check_package(package)


@pytest.mark.slow
def test_check_fails_when_the_notebook_cannot_install_medalist(package: Path) -> None:
    for wheel in (package / "dataset" / "wheels").glob("*.whl"):
        wheel.unlink()
    r = medalist("package", str(package), "--check")
    _fails(r, "the notebook failed offline", "medalist")


def test_the_check_tells_an_id_that_lost_its_leading_zeros_from_the_samples(
    tmp_path: Path,
) -> None:
    from medalist.kaggle.check import CheckFailed, compare_submissions, read_submission

    want = tmp_path / "want.csv"
    want.write_text("image_id,label\n00100,1\n00101,0\n")
    got = tmp_path / "got.csv"
    got.write_text("image_id,label\n100,1\n101,0\n")
    assert read_submission(want)["image_id"].tolist() == ["00100", "00101"]
    with pytest.raises(CheckFailed, match="ids differ"):
        compare_submissions(read_submission(got), read_submission(want), 1e-5)
    assert compare_submissions(read_submission(want), read_submission(want), 1e-5) == 0.0
