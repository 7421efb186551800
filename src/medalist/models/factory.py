"""One factory over timm (classification) and segmentation_models_pytorch (U-Net on a timm
encoder): a backbone by name, optionally with weights from a local file."""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from medalist.config.schema import Config
from medalist.errors import UserError


def check_backbone(name: str) -> None:
    """An unknown timm name is a UserError that suggests the nearest known ones."""
    import timm

    if timm.is_model(name):
        return
    near = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}?" if near else "see timm.list_models()"
    raise UserError(f"model.backbone = {name!r}: not a timm model; {hint}")


def pretrained_file(cfg: Config) -> Path | None:
    """The local weights file of `model.pretrained`, or None when training from scratch."""
    value = cfg.model.pretrained
    if value is False:
        return None
    if value is True:
        raise UserError(
            "model.pretrained = true: weights can't be downloaded here; set it to the path of "
            "a local weights file (.pth, .bin or .safetensors)"
        )
    path = cfg.path(str(value))
    if not path.is_file():
        raise UserError(f"model.pretrained = {value!r}: file {path} not found; fix the path")
    return path


def create_model(cfg: Config, num_outputs: int) -> torch.nn.Module:
    """The configured timm classifier with `num_outputs` outputs (stem adapted to
    `model.in_chans`). Tasks choose their model (`Task.create_model`); this is classify's."""
    import timm

    check_backbone(cfg.model.backbone)
    weights = pretrained_file(cfg)
    kwargs = dict(
        num_classes=num_outputs,
        in_chans=cfg.model.in_chans,
        drop_rate=cfg.model.drop_rate,
    )
    if cfg.model.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.model.drop_path_rate
    if weights is None:
        return timm.create_model(cfg.model.backbone, pretrained=False, **kwargs)
    try:
        # timm loads the file, drops a mismatched classifier and adapts the stem to in_chans.
        return timm.create_model(
            cfg.model.backbone,
            pretrained=True,
            pretrained_cfg_overlay=dict(file=str(weights)),
            **kwargs,
        )
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise UserError(
            f"model.pretrained = {str(weights)!r}: could not load it into "
            f"{cfg.model.backbone} ({str(exc).splitlines()[0][:160]})"
        ) from None


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
    its encoder ("tu-" names); a local weights file loads into the encoder through timm, as for
    classification."""
    import segmentation_models_pytorch as smp

    arch = getattr(smp, check_arch(cfg.model.arch))
    kwargs: dict = {}
    if cfg.model.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.model.drop_path_rate
    if weights is not None:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(weights))
    try:
        return arch(
            encoder_name=f"tu-{cfg.model.backbone}",
            encoder_weights=True if weights is not None else None,
            in_channels=cfg.model.in_chans,
            classes=num_outputs,
            **kwargs,
        )
    except (RuntimeError, KeyError, ValueError, OSError, TypeError) as exc:
        what = f"model.pretrained = {str(weights)!r}" if weights else "model.backbone"
        raise UserError(
            f"{what}: could not build a {cfg.model.arch} encoder from {cfg.model.backbone} "
            f"({str(exc).splitlines()[0][:160]}); pick a timm backbone with feature maps"
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
