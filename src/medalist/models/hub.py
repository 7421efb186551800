"""A timm backbone's pretrained weights on the Hugging Face hub: which file timm loads for the
default tag, whether the local hub cache holds it, and whether the hub answers.

timm itself downloads and loads the weights (`timm.create_model(..., pretrained=True)`); this
module only answers before anything trains, so that a run with no network and no cached copy
stops with one line instead of a traceback in the first fold. The cache folder, offline mode
and endpoint are huggingface_hub's own (`HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`,
`HF_ENDPOINT`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from medalist.errors import UserError

PROBE_TIMEOUT_S = 3.0  # `medalist new` and `doctor` wait at most this long for the hub
TIMM_DEFAULT_FILE = "pytorch_model.bin"  # timm's filename when the pretrained cfg names none


@dataclass(frozen=True)
class HubWeights:
    """Where timm finds a backbone's default pretrained weights on the hub."""

    backbone: str
    repo_id: str  # e.g. timm/resnet18.a1_in1k
    revision: str | None
    filenames: tuple[str, ...]  # in the order timm tries them

    @property
    def name(self) -> str:
        """The hub id as timm's pretrained cfg writes it."""
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def hub_weights(backbone: str) -> HubWeights | None:
    """The hub location of `backbone`'s pretrained tag (its default one when the name has
    none); None when timm knows no hub weights for it."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(backbone)
    except RuntimeError:  # an architecture with no such tag
        return None
    hub_id = cfg.hf_hub_id if cfg is not None else None
    if not hub_id:
        return None
    repo_id, _, revision = hub_id.partition("@")
    return HubWeights(backbone, repo_id, revision or None, _timm_filenames(cfg.hf_hub_filename))


def _timm_filenames(filename: str | None) -> tuple[str, ...]:
    # timm's load_state_dict_from_hf prefers a safetensors twin of a .bin file when it exists.
    name = filename or TIMM_DEFAULT_FILE
    if name.endswith(".safetensors"):
        return (name,)
    if name == TIMM_DEFAULT_FILE:
        return ("model.safetensors", name)
    if name.endswith(".bin"):
        return (name[: -len(".bin")] + ".safetensors", name)
    return (name,)


def cache_folder() -> Path:
    """The hub cache this process reads and writes (HF_HUB_CACHE, or HF_HOME/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_weights(weights: HubWeights) -> Path | None:
    """The cached weights file timm would load, or None when the cache doesn't hold it."""
    from huggingface_hub import try_to_load_from_cache

    for filename in weights.filenames:
        found = try_to_load_from_cache(weights.repo_id, filename, revision=weights.revision)
        if isinstance(found, str):
            return Path(found)
    return None


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE keeps huggingface_hub (and so timm) off the network."""
    from huggingface_hub import is_offline_mode

    return is_offline_mode()


def hub_reachable(weights: HubWeights, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the hub serves the weights file within `timeout` seconds; False at once in
    offline mode."""
    if hub_offline():
        return False
    from huggingface_hub import constants

    return _hub_answers(
        constants.ENDPOINT, weights.repo_id, weights.revision, weights.filenames, timeout
    )


@lru_cache(maxsize=64)
def _hub_answers(
    endpoint: str, repo_id: str, revision: str | None, filenames: tuple[str, ...], timeout: float
) -> bool:
    # A thread bounds the whole probe: a name lookup can block longer than any HTTP timeout.
    answered: list[bool] = []

    def probe() -> None:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        for filename in filenames:
            url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
            try:
                get_hf_file_metadata(url, timeout=timeout)
            except Exception:  # noqa: BLE001 - any failure (no route, 404, timeout) is "no"
                continue
            answered.append(True)
            return

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def require_hub_weights(backbone: str) -> HubWeights:
    """The hub weights of `backbone`, checked to be cached or downloadable; else a UserError
    that names the model, the cache folder and the two fixes."""
    weights = hub_weights(backbone)
    if weights is None:
        raise UserError(
            f"model.pretrained = true: timm knows no Hugging Face hub weights for {backbone}; "
            "set model.pretrained to a local weights file (.pth, .bin or .safetensors) or false"
        )
    if cached_weights(weights) is not None or hub_reachable(weights):
        return weights
    raise UserError(
        f"model.pretrained = true: the weights of {backbone} ({weights.name}) are not in the "
        f"hub cache {cache_folder()} and {unreachable_reason()}; set model.pretrained to a local "
        "weights file (.pth, .bin or .safetensors), or run once with network to cache them"
    )


def unreachable_reason() -> str:
    """Why the hub is out of reach: offline mode, or no answer."""
    return "HF_HUB_OFFLINE is set" if hub_offline() else "the hub can't be reached"


def pretrained_default(backbone: str) -> tuple[bool, str]:
    """What `medalist new` writes for `model.pretrained` and the comment that says why: true
    when timm can load the weights (cached, or the hub answers), else false."""
    weights = hub_weights(backbone)
    if weights is None:
        return False, f"# timm has no hub weights for {backbone}: false, or a local file"
    if cached_weights(weights) is not None:
        return True, f"# {weights.name} is in the hub cache; false: from scratch"
    if hub_reachable(weights):
        return True, f"# timm downloads {weights.name} on the first run; false: from scratch"
    return False, (
        f"# not true: {weights.name} is not cached and {unreachable_reason()}; "
        "run once online, or give a local file"
    )
