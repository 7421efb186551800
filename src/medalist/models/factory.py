"""One factory over timm (classification) and segmentation_models_pytorch (U-Net on a timm
encoder): a backbone by name, optionally with pretrained weights: timm's own, through the
Hugging Face hub cache (`model.pretrained: true`), or a local file (a path)."""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from medalist.config.schema import Config
from medalist.errors import UserError, first_line


def check_backbone(name: str) -> None:
    """An unknown timm name is a UserError that suggests the nearest known ones."""
    import timm

    if timm.is_model(name):
        return
    near = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}?" if near else "see timm.list_models()"
    raise UserError(f"model.backbone = {name!r}: not a timm model; {hint}")


def pretrained_file(cfg: Config) -> Path | None:
    """The local weights file of `model.pretrained`; None when training from scratch or when
    timm loads the hub's weights (`true`: checked here to be cached or downloadable)."""
    value = cfg.model.pretrained
    if value is False:
        return None
    if value is True:
        from medalist.models.hub import require_hub_weights

        check_backbone(cfg.model.backbone)
        require_hub_weights(cfg.model.backbone)
        return None
    path = cfg.path(str(value))
    if not path.is_file():
        raise UserError(f"model.pretrained = {value!r}: file {path} not found; fix the path")
    return path


def create_model(cfg: Config, num_outputs: int, *, pretrained: bool = True) -> torch.nn.Module:
    """The configured timm classifier with `num_outputs` outputs (stem adapted to
    `model.in_chans`); `pretrained=False`: without `model.pretrained`'s weights, for a checkpoint
    loaded next. Tasks choose their model (`Task.create_model`); this is classify's."""
    import timm

    check_backbone(cfg.model.backbone)
    if not pretrained:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"pretrained": False})})
    weights = pretrained_file(cfg)
    kwargs = dict(
        num_classes=num_outputs,
        in_chans=cfg.model.in_chans,
        drop_rate=cfg.model.drop_rate,
    )
    if cfg.model.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.model.drop_path_rate
    if weights is None and cfg.model.pretrained is not True:
        return timm.create_model(cfg.model.backbone, pretrained=False, **kwargs)
    if weights is not None:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(weights))
    try:
        # timm loads the weights (the file, or its default tag through the hub cache), drops a
        # mismatched classifier and adapts the stem to in_chans.
        return timm.create_model(cfg.model.backbone, pretrained=True, **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise UserError(
            f"{_pretrained_what(cfg, weights)}: could not load it into "
            f"{cfg.model.backbone} ({first_line(exc)[:160]})"
        ) from None


def _pretrained_what(cfg: Config, weights: Path | None) -> str:
    if weights is not None:
        return f"model.pretrained = {str(weights)!r}"
    return "model.pretrained = true (the weights timm gets from the hub)"


# model.arch -> segmentation_models_pytorch's class (all of them take a timm "tu-" encoder).
SEGMENTATION_ARCHS = {
    "unet": "Unet",
    "unetplusplus": "UnetPlusPlus",
    "fpn": "FPN",
    "deeplabv3": "DeepLabV3",
    "deeplabv3plus": "DeepLabV3Plus",
    "manet": "MAnet",
    "linknet": "Linknet",
    "pan": "PAN",
    "pspnet": "PSPNet",
    "upernet": "UPerNet",
    "segformer": "Segformer",
}


def check_arch(name: str) -> str:
    """`model.arch` as segmentation_models_pytorch names it; an unknown one suggests the nearest."""
    key = name.lower().replace("-", "").replace("_", "")
    if key in SEGMENTATION_ARCHS:
        return SEGMENTATION_ARCHS[key]
    near = difflib.get_close_matches(key, SEGMENTATION_ARCHS, n=2, cutoff=0.5)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    raise UserError(
        f"model.arch = {name!r}: not a segmentation architecture; {hint}"
        f"use one of {', '.join(SEGMENTATION_ARCHS)}"
    )


def create_segmenter(cfg: Config, num_outputs: int, weights: Path | None) -> torch.nn.Module:
    """segmentation_models_pytorch's `model.arch` (a U-Net by default) over the timm backbone as
    its encoder ("tu-" names); pretrained weights (the hub's, or a local file) load into the
    encoder through timm, as for classification."""
    import segmentation_models_pytorch as smp

    arch = getattr(smp, check_arch(cfg.model.arch))
    kwargs: dict = {}
    if cfg.model.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.model.drop_path_rate
    if weights is not None:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(weights))
    pretrained = weights is not None or cfg.model.pretrained is True
    try:
        return arch(
            encoder_name=f"tu-{cfg.model.backbone}",
            encoder_weights=True if pretrained else None,
            in_channels=cfg.model.in_chans,
            classes=num_outputs,
            **kwargs,
        )
    except (RuntimeError, KeyError, ValueError, OSError, TypeError) as exc:
        what = _pretrained_what(cfg, weights) if pretrained else "model.backbone"
        raise UserError(
            f"{what}: could not build a {cfg.model.arch} encoder from {cfg.model.backbone} "
            f"({first_line(exc)[:160]}); pick a timm backbone with feature maps"
        ) from None


def backbone_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Every parameter except the classifier head's (what freezing the backbone freezes); a
    segmentation model's encoder."""
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, torch.nn.Module):
        return list(encoder.parameters())
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, torch.nn.Module) else set()
    return [p for p in model.parameters() if id(p) not in head_ids]


def _timm_backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The timm network inside `model`: itself, or a segmentation model's encoder's."""
    encoder = getattr(model, "encoder", None)
    inner = getattr(encoder, "model", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def _feature_modules(net: torch.nn.Module) -> list[str]:
    """The modules after which timm takes its feature maps ("layer1", "stages.0", ...)."""
    info = getattr(net, "feature_info", None)
    if info is None:
        return []
    if hasattr(info, "module_name"):  # a features_only network's FeatureInfo
        return list(info.module_name())
    return [f["module"] for f in info]


def backbone_stages(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """The backbone's parameters by stage, input side first: [stem, stage 1, stage 2, ...].

    A stage ends where timm takes a feature map (`feature_info`); parameters between two
    feature modules stay with the stage before. The classifier head is in no stage.
    """
    net = _timm_backbone(model)
    features = [f.replace("_", ".") for f in _feature_modules(net)]
    if not features:
        raise UserError(
            f"model.freeze_stages: {type(net).__name__} has no feature_info to find its stages; "
            "use a timm backbone, or train.freeze_backbone_epochs instead"
        )
    keep = {id(p) for p in backbone_parameters(model)}
    stages: list[list[torch.nn.Parameter]] = [[]]
    with_params: list[str] = []
    for name, p in net.named_parameters():
        if id(p) not in keep:
            continue
        dotted = name.replace("_", ".")
        match = next((f for f in features if dotted.startswith(f + ".")), None)
        if match is not None and match not in with_params:
            with_params.append(match)
            stages.append([])
        stages[-1].append(p)
    return stages  # the stem may be empty (no parameters before the first feature module)


def frozen_stage_parameters(model: torch.nn.Module, n: int) -> list[torch.nn.Parameter]:
    """The parameters of the stem and the first `n` stages (what `model.freeze_stages` freezes)."""
    if n == 0:
        return []
    stages = backbone_stages(model)
    if n > len(stages) - 1:
        raise UserError(
            f"model.freeze_stages = {n}: the backbone has {len(stages) - 1} stages after its "
            f"stem; use at most {len(stages) - 1} (all of them: only the head trains)"
        )
    return [p for stage in stages[: n + 1] for p in stage]


def set_grad_checkpointing(model: torch.nn.Module) -> None:
    """timm's gradient checkpointing on the backbone (`model.grad_checkpointing`)."""
    net = _timm_backbone(model)
    try:
        net.set_grad_checkpointing(True)
    except (AttributeError, NotImplementedError, AssertionError) as exc:
        raise UserError(
            f"model.grad_checkpointing: {type(net).__name__} does not support it ({exc}); "
            "set it to false, lower train.batch_size and raise train.accumulate_grad_batches"
        ) from None
