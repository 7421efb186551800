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
    from medalist.models.hub import cache_folder, cached_weights, hub_reachable, hub_weights

    name = f"weights {backbone}"
    missing = [f"{c}: {v}" for c, v in uses if isinstance(v, str) and not Path(v).is_file()]
    if missing:
        return Check(name, "FAIL", f"model.pretrained file not found ({'; '.join(missing)})")
    hub_users = [c for c, v in uses if v is True]
    on = f"; pretrained: true in {', '.join(hub_users)}" if hub_users else ""
    try:
        check_backbone(backbone)
    except UserError as exc:
        return Check(name, "FAIL", str(exc))
    weights = hub_weights(backbone)
    if weights is None:
        status = "FAIL" if hub_users else "OK"
        return Check(name, status, f"timm knows no hub weights for it{on}")
    cached = cached_weights(weights)
    if cached is not None:
        return Check(name, "OK", f"{weights.name} cached in {cache_folder()}{on}")
    if not hub_users:
        return Check(name, "OK", f"{weights.name} not cached; the configs train from scratch")
    if hub_reachable(weights):
        return Check(name, "OK", f"{weights.name} not cached: the first run downloads it{on}")
    return Check(
        name,
        "FAIL",
        f"{weights.name} is not in {cache_folder()} and the hub can't be reached{on}: run once "
        "with network, or set model.pretrained to a local weights file",
    )
