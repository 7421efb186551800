"""`model.pretrained: true`: timm's default weights through the Hugging Face hub cache, never a
download in these tests (HF_HUB_OFFLINE=1, a cache folder the tests fill themselves).

The cache is laid out as huggingface_hub writes it for the hub id in timm's pretrained cfg:
models--<org>--<name>/refs/main and snapshots/<revision>/model.safetensors, the weights of a
freshly made (random) timm model, so that loaded values can only have come from that file.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from conftest import make_competition, make_project, medalist

from medalist.config import load_config
from medalist.errors import UserError

BACKBONE = "resnet18"  # what `medalist new` writes
REVISION = "0123456789abcdef0123456789abcdef01234567"


def fill_hub_cache(cache: Path, backbone: str) -> dict[str, torch.Tensor]:
    """Save a fresh timm model's weights where huggingface_hub caches its default hub id."""
    import timm
    from safetensors.torch import save_file

    hub_id = timm.models.get_pretrained_cfg(backbone).hf_hub_id  # e.g. timm/resnet18.a1_in1k
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    state = {k: v.contiguous() for k, v in timm.create_model(backbone).state_dict().items()}
    save_file(state, snapshot / "model.safetensors")
    return state


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A hub cache holding resnet18's default weights (made once), and those weights."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    return cache, fill_hub_cache(cache, BACKBONE)


def use_hub_cache(monkeypatch: pytest.MonkeyPatch, cache: Path, offline: bool = True) -> None:
    """Point huggingface_hub at `cache`, offline: the environment for subprocesses, and its
    constants for this process (it read the environment once, when first imported)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@pytest.fixture
def cached(monkeypatch: pytest.MonkeyPatch, filled_cache: tuple[Path, dict]) -> dict:
    """resnet18's weights in the hub cache this test sees; the weights."""
    use_hub_cache(monkeypatch, filled_cache[0])
    return filled_cache[1]


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "empty-hub"
    cache.mkdir()
    use_hub_cache(monkeypatch, cache)
    return cache


def resnet_config(tmp_path: Path, *overrides: str):
    config = make_project(tmp_path / "proj")
    return config, load_config(config, [f"model.backbone={BACKBONE}", *overrides])


# ---- loading ------------------------------------------------------------------------------------
def test_pretrained_true_loads_timms_default_weights_from_the_hub_cache(cached, tmp_path):
    from medalist.models.factory import create_model

    _, cfg = resnet_config(tmp_path, "model.pretrained=true")
    model = create_model(cfg, 3)

    state = model.state_dict()
    assert state["fc.weight"].shape == (3, 512), "the 1000-class head is replaced"
    body = [k for k in cached if not k.startswith("fc.")]
    assert len(body) > 50
    for key in body:
        assert torch.equal(state[key], cached[key]), key


def test_pretrained_false_ignores_the_cache(cached, tmp_path):
    from medalist.models.factory import create_model

    _, cfg = resnet_config(tmp_path)
    model = create_model(cfg, 3)
    assert not torch.equal(model.state_dict()["conv1.weight"], cached["conv1.weight"])


def test_segmentation_encoder_loads_the_hub_weights(cached, tmp_path):
    from medalist.models.factory import create_segmenter, pretrained_file

    _, cfg = resnet_config(tmp_path, "model.pretrained=true", "competition.task=segment")
    unet = create_segmenter(cfg, 1, pretrained_file(cfg))

    encoder = unet.encoder.model.state_dict()
    shared = [k for k in encoder if k in cached]
    assert "conv1.weight" in shared and "layer4.1.conv2.weight" in shared
    for key in shared:
        assert torch.equal(encoder[key], cached[key]), key


@pytest.mark.slow
def test_predict_needs_no_hub_weights_the_fold_checkpoints_replace(trained_run, empty_cache):
    import pandas as pd
    import yaml

    from medalist.workflows.predict import predict

    before = pd.read_csv(trained_run / "submission.csv")
    config = trained_run / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["model"]["pretrained"] = True  # trained on hub weights, say, on another machine
    config.write_text(yaml.safe_dump(data))

    result = predict(trained_run)  # offline, nothing cached: must not ask for the weights
    pd.testing.assert_frame_equal(pd.read_csv(result.path), before)


# ---- when the weights can't be had --------------------------------------------------------------
@pytest.mark.slow
def test_no_network_and_no_cache_is_one_line_naming_model_cache_and_fixes(empty_cache, tmp_path):
    config = make_project(tmp_path / "proj")
    r = medalist("train", str(config), f"model.backbone={BACKBONE}", "model.pretrained=true")

    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()
    for needle in (BACKBONE, "timm/resnet18", str(empty_cache), "local weights file", "run once"):
        assert needle in line, line
    assert not (tmp_path / "proj" / "runs").exists() or not any((tmp_path / "proj/runs").iterdir())


def test_a_backbone_without_hub_weights_is_a_user_error(empty_cache, tmp_path):
    from medalist.models.factory import pretrained_file

    _, cfg = resnet_config(tmp_path, "model.backbone=botnet50ts_256", "model.pretrained=true")
    with pytest.raises(UserError, match="botnet50ts_256.*local weights file"):
        pretrained_file(cfg)


def test_a_cached_copy_is_enough_offline(cached, tmp_path):
    from medalist.models.factory import pretrained_file

    _, cfg = resnet_config(tmp_path, "model.pretrained=true")
    assert pretrained_file(cfg) is None  # no local file: timm takes the cached hub weights


# ---- medalist doctor ----------------------------------------------------------------------------
@pytest.mark.slow
def test_doctor_lists_the_configured_backbones_weights_as_cached(cached, tmp_path):
    config = make_project(tmp_path / "proj")
    config.write_text(config.read_text().replace("backbone: test_resnet", f"backbone: {BACKBONE}"))
    r = medalist("doctor", str(config))  # a fresh process: only the environment points it here

    row = next(line for line in r.stdout.splitlines() if f"weights {BACKBONE}" in line)
    assert "OK" in row and "cached" in row and "not cached" not in row, r.stdout


def test_doctor_fails_a_config_whose_hub_weights_cant_be_had(empty_cache, tmp_path):
    from medalist.envtools.weights import check_weights

    proj = tmp_path / "proj"
    make_project(proj)
    (proj / "configs" / "big.yaml").write_text(
        f"extends: baseline.yaml\nmodel:\n  backbone: {BACKBONE}\n  pretrained: true\n"
    )
    rows = {r.name: r for r in check_weights(sorted((proj / "configs").glob("*.yaml")))}

    assert rows[f"weights {BACKBONE}"].status == "FAIL"
    assert "big" in rows[f"weights {BACKBONE}"].detail
    assert "local weights file" in rows[f"weights {BACKBONE}"].detail
    # the baseline trains test_resnet from scratch: nothing to fetch, nothing to fail
    assert rows["weights test_resnet"].status == "OK"
    assert "from scratch" in rows["weights test_resnet"].detail


@pytest.mark.parametrize(
    "backbone, needle", [("botnet50ts_256", "no hub weights"), ("resnet181", "did you mean")]
)
def test_doctor_fails_pretrained_true_on_a_backbone_timm_has_no_weights_for(
    empty_cache, tmp_path, backbone, needle
):
    from medalist.envtools.weights import check_weights

    config = make_project(tmp_path / "proj")
    text = config.read_text().replace("test_resnet", backbone)
    config.write_text(text.replace("model:\n", "model:\n  pretrained: true\n"))
    (row,) = check_weights([config])
    assert row.status == "FAIL" and needle in row.detail, row


def test_doctor_fails_a_missing_local_weights_file(empty_cache, tmp_path):
    from medalist.envtools.weights import check_weights

    config = make_project(tmp_path / "proj")
    config.write_text(
        config.read_text().replace("model:\n", "model:\n  pretrained: models/gone.pth\n")
    )
    (row,) = check_weights([config])
    assert row.status == "FAIL" and "gone.pth" in row.detail


# ---- medalist new -------------------------------------------------------------------------------
def written_pretrained(tmp_path: Path) -> str:
    from medalist.workflows.scaffold import create_project

    data = make_competition(tmp_path / "comp")
    report = create_project(tmp_path / "new", data)
    (line,) = [
        x for x in report.config_path.read_text().splitlines() if x.startswith("  pretrained:")
    ]
    assert load_config(report.config_path).model.pretrained == ("true" in line.split("#")[0])
    return line


def test_new_writes_pretrained_true_when_the_weights_are_cached(cached, tmp_path):
    line = written_pretrained(tmp_path)
    assert line.split("#")[0].strip() == "pretrained: true"
    assert "in the hub cache" in line


def test_new_writes_pretrained_false_and_why_when_offline_without_a_copy(empty_cache, tmp_path):
    line = written_pretrained(tmp_path)
    assert line.split("#")[0].strip() == "pretrained: false"
    assert "not cached" in line and "HF_HUB_OFFLINE" in line


class _Hub(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # what huggingface_hub asks before a download
        self.send_response(200 if self.path.endswith("/model.safetensors") else 404)
        self.send_header("Content-Length", "1000")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def new_in_a_fresh_process(tmp_path: Path, monkeypatch, endpoint: str) -> str:
    """`medalist new` with the hub at `endpoint` (HF_ENDPOINT is read when huggingface_hub is
    imported, so only a new process sees it) and an empty cache; the pretrained line."""
    use_hub_cache(monkeypatch, tmp_path / "empty-hub", offline=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    data = make_competition(tmp_path / "comp")
    r = medalist("new", str(tmp_path / "new"), "--data", str(data))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "new" / "configs" / "baseline.yaml").read_text()
    (line,) = [x for x in text.splitlines() if x.startswith("  pretrained:")]
    return line


@pytest.mark.slow
def test_new_writes_pretrained_true_when_the_hub_answers(monkeypatch, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        line = new_in_a_fresh_process(
            tmp_path, monkeypatch, f"http://127.0.0.1:{server.server_port}"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert line.split("#")[0].strip() == "pretrained: true"
    assert "downloads timm/resnet18" in line


@pytest.mark.slow
def test_new_writes_pretrained_false_when_the_hub_does_not_answer(monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = new_in_a_fresh_process(tmp_path, monkeypatch, f"http://127.0.0.1:{port}")
    assert line.split("#")[0].strip() == "pretrained: false"
    assert "can't be reached" in line
