"""torchvision's detectors (FCOS, RetinaNet, Faster R-CNN) on a timm backbone's feature maps.

torchvision's `BackboneWithFPN` expects named child layers, which timm's feature models don't
have, so `TimmFPN` wraps a timm `features_only` model (its last three levels) and torchvision's
`FeaturePyramidNetwork`. The detector's own resize is set to the input size (medalist already
letterboxed the image) and its normalisation to the identity (medalist's `InputNorm` already
normalised the batch), so neither is done twice. Nothing downloads: every builder gets no
weights, and `model.pretrained` loads a local file into the backbone through timm.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from medalist.config.schema import Config
from medalist.errors import UserError, first_line

DETECTORS = ("fcos", "retinanet", "faster_rcnn")


class TimmFPN(nn.Module):
    """A timm feature model's last three maps through a feature pyramid: an OrderedDict of
    maps with `out_channels` channels each, as torchvision's detectors take."""

    def __init__(self, body: nn.Module, out_channels: int, extra: nn.Module | None) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.body = body
        self.fpn = FeaturePyramidNetwork(
            body.feature_info.channels(), out_channels, extra_blocks=extra
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = self.body(x)
        return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps)))


def feature_body(cfg: Config, weights: Path | None) -> nn.Module:
    """The timm backbone as a feature model (its last three levels), weights from a local
    file when given; a backbone without feature maps is a UserError."""
    import timm

    kwargs: dict = dict(features_only=True, out_indices=(-3, -2, -1), in_chans=cfg.model.in_chans)
    if cfg.model.drop_path_rate:
        kwargs["drop_path_rate"] = cfg.model.drop_path_rate
    if weights is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(weights)))
    try:
        body = timm.create_model(cfg.model.backbone, **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError, TypeError, AssertionError) as exc:
        what = f"model.pretrained = {str(weights)!r}" if weights else "model.backbone"
        raise UserError(
            f"{what}: could not build a feature model from {cfg.model.backbone} "
            f"({first_line(exc)[:160]}); pick a timm backbone with feature maps "
            "(e.g. resnet18, efficientnet_b0, convnext_nano)"
        ) from None
    strides = body.feature_info.reduction()
    if any(b <= a for a, b in zip(strides, strides[1:], strict=False)):
        raise UserError(
            f"model.backbone = {cfg.model.backbone!r}: its last feature maps are all at strides "
            f"{strides}, not a pyramid of scales; pick a backbone whose maps shrink (resnet18, "
            "efficientnet_b0, convnext_nano)"
        )
    if cfg.model.freeze_bn:
        from timm.layers import freeze_batch_norm_2d

        body = freeze_batch_norm_2d(body)
    return body


def check_feature_backbone(cfg: Config) -> None:
    """A UserError unless the backbone gives a pyramid of feature maps (built on the meta
    device: no memory, no weights)."""
    from medalist.models.factory import check_backbone

    check_backbone(cfg.model.backbone)
    with torch.device("meta"):
        feature_body(cfg, None)


def create_detector(cfg: Config, num_classes: int, weights: Path | None) -> nn.Module:
    """`model.detector` on the backbone's pyramid, at the input size, `num_classes` classes
    (Faster R-CNN adds its background class itself)."""
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    name, ch = cfg.model.detector, cfg.model.fpn_channels
    h, w = cfg.image_shape
    common = dict(
        min_size=min(h, w),
        max_size=max(h, w),
        image_mean=[0.0] * cfg.model.in_chans,
        image_std=[1.0] * cfg.model.in_chans,
    )
    body = feature_body(cfg, weights)
    if name == "faster_rcnn":
        from torchvision.ops import MultiScaleRoIAlign

        backbone = TimmFPN(body, ch, LastLevelMaxPool())
        anchors = AnchorGenerator(((16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 4)
        return FasterRCNN(
            backbone,
            num_classes=num_classes + 1,
            rpn_anchor_generator=anchors,
            box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
            box_detections_per_img=cfg.model.detections_per_image,
            box_score_thresh=0.05,
            **common,
        )
    backbone = TimmFPN(body, ch, LastLevelP6P7(ch, ch))
    if name == "retinanet":
        # torchvision's anchors start at 32 px; small objects need smaller ones.
        sizes = tuple(
            (s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (16, 32, 64, 128, 256)
        )
        anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
        return RetinaNet(
            backbone,
            num_classes=num_classes,
            anchor_generator=anchors,
            detections_per_img=cfg.model.detections_per_image,
            score_thresh=0.05,
            **common,
        )
    fcos = FCOS(
        backbone,
        num_classes=num_classes,
        detections_per_img=cfg.model.detections_per_image,
        score_thresh=0.05,
        **common,
    )
    if ch < 64:
        # The head normalises in 32 groups: with one channel per group, the 1x1 top level of an
        # input up to 128 px is one value per group, which GroupNorm refuses for a lone image.
        for convs in (fcos.head.classification_head.conv, fcos.head.regression_head.conv):
            for i, layer in enumerate(convs):
                if isinstance(layer, nn.GroupNorm):
                    convs[i] = nn.GroupNorm(ch // 2, ch)
    return fcos


def loss_and_detections(
    model: nn.Module, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]] | None:
    """FCOS's or RetinaNet's loss dict and detections from one pass (torchvision's own steps,
    in whatever mode the model is: validation keeps BatchNorm in eval mode); None for a
    detector whose losses need training mode (Faster R-CNN's sampled proposals)."""
    from torchvision.models.detection import FCOS, RetinaNet

    if not isinstance(model, (FCOS, RetinaNet)):
        return None
    sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
    batch, targets = model.transform(images, targets)
    features = list(model.backbone(batch.tensors).values())
    head = model.head(features)
    anchors = model.anchor_generator(batch, features)
    per_level = [x.size(2) * x.size(3) for x in features]
    if isinstance(model, FCOS):
        losses = model.compute_loss(targets, head, anchors, per_level)
    else:
        losses = model.compute_loss(targets, head, anchors)
        per_anchor = head["cls_logits"].size(1) // sum(per_level)
        per_level = [hw * per_anchor for hw in per_level]
    split = {k: list(v.split(per_level, dim=1)) for k, v in head.items()}
    split_anchors = [list(a.split(per_level)) for a in anchors]
    detections = model.postprocess_detections(split, split_anchors, batch.image_sizes)
    return losses, model.transform.postprocess(detections, batch.image_sizes, sizes)
