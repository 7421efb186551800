"""`medalist doctor`'s rows about pretrained weights: for each backbone the configs name, are
its weights in the Hugging Face hub cache, and can the configs that want them get them?"""

from __future__ import annotations

from pathlib import Path

from medalist.envtools.doctor import Check
from medalist.errors import UserError


def check_weights(configs: list[Path]) -> list[Check]:
    """One row per configured backbone (and one per config that does not load)."""
    from medalist.config import load_config

    rows: list[Check] = []
    wanted: dict[str, list[tuple[str, bool | str]]] = {}  # backbone -> (config, pretrained)
    for path in configs:
        try:
            cfg = load_config(path)
        except UserError as exc:
            rows.append(Check(f"config {path.name}", "WARN", f"not checked: {exc}"))
            continue
        value = cfg.model.pretrained
        if isinstance(value, str):
            value = str(cfg.path(value))
        wanted.setdefault(cfg.model.backbone, []).append((path.stem, value))
    rows += [_backbone_row(backbone, uses) for backbone, uses in wanted.items()]
    return rows


def _backbone_row(backbone: str, uses: list[tuple[str, bool | str]]) -> Check:
    from medalist.models.factory import check_backbone
    from medalist.models.hub import (
        cache_folder,
        cached_weights,
        hub_reachable,
        hub_weights,
        unreachable_reason,
    )

    name = f"weights {backbone}"
    missing = [f"{c}: {v}" for c, v in uses if isinstance(v, str) and not Path(v).is_file()]
    if missing:
        return Check(name, "FAIL", f"model.pretrained file not found ({'; '.join(missing)})")
    try:
        check_backbone(backbone)
    except UserError as exc:
        return Check(name, "FAIL", str(exc))
    hub_users = [c for c, v in uses if v is True]
    how = _how_configs_start(uses)
    weights = hub_weights(backbone)
    if weights is None:
        if not hub_users:
            return Check(name, "OK", f"timm knows no hub weights for it ({how})")
        fix = "set model.pretrained to a local weights file, or false"
        return Check(name, "FAIL", f"timm knows no hub weights for it ({how}): {fix}")
    if cached_weights(weights) is not None:
        return Check(name, "OK", f"{weights.name} cached in {cache_folder()} ({how})")
    if not hub_users:
        return Check(name, "OK", f"{weights.name} not cached ({how})")
    if hub_reachable(weights):
        return Check(name, "OK", f"{weights.name} not cached: the first run downloads it ({how})")
    return Check(
        name,
        "FAIL",
        f"{weights.name} is not in {cache_folder()} and {unreachable_reason()} ({how}): run "
        "once with network, or set model.pretrained to a local weights file",
    )


def _how_configs_start(uses: list[tuple[str, bool | str]]) -> str:
    """ "pretrained: true in a, b; a local file in c; from scratch in d" """
    groups = {
        "pretrained: true": [c for c, v in uses if v is True],
        "a local file": [c for c, v in uses if isinstance(v, str)],
        "from scratch": [c for c, v in uses if v is False],
    }
    return "; ".join(f"{what} in {', '.join(cs)}" for what, cs in groups.items() if cs)
