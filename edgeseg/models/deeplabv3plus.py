"""DeepLabv3+ (Chen et al., ECCV 2018): encoder-decoder with atrous separable convolution.

Encoder: a backbone at output stride 16 or 8 (atrous convolution replaces the last strides)
feeding ASPP: a 1x1 branch, three atrous *depthwise separable* 3x3 branches (rates 6/12/18 at
OS 16, doubled at OS 8) and image pooling. Decoder: the low-level 1/4 features reduced to 48
channels, concatenated with the 4x-upsampled ASPP output, refined by two separable 3x3 convs.

Image pooling is a mean over H and W followed by a 1x1 conv and an *expand* back to the
feature size (not an interpolation from 1x1), which every backend executes exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.backbones.mobilenetv2 import MobileNetV2
from edgeseg.models.backbones.resnet import atrous_schedule, resnet50
from edgeseg.models.backbones.xception import AlignedXception
from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, SeparableConv, global_avg_pool, resize
from edgeseg.models.registry import check_choice, register_model

BACKBONES = ("mobilenetv2", "resnet50", "xception")


class ASPP(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1x1 = ConvBNAct(in_ch, out_ch, 1)
        self.atrous = nn.ModuleList(SeparableConv(in_ch, out_ch, dilation=r) for r in rates)
        self.image_pool = ConvBNAct(in_ch, out_ch, 1)
        self.project = nn.Sequential(ConvBNAct(out_ch * 5, out_ch, 1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(global_avg_pool(x)).expand(-1, -1, x.shape[2], x.shape[3])
        branches = [self.conv1x1(x), *(conv(x) for conv in self.atrous), pooled]
        return self.project(torch.cat(branches, dim=1))


class DeepLabV3Plus(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm in the image-pooling branch

    def __init__(
        self, *, num_classes: int, backbone: str, output_stride: int, in_channels: int, pad: str
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad)
        if backbone == "mobilenetv2":
            self.backbone: nn.Module = MobileNetV2(
                in_channels=in_channels, output_stride=output_stride
            )
        elif backbone == "xception":
            self.backbone = AlignedXception(in_channels=in_channels, output_stride=output_stride)
        else:
            strides, dilations = atrous_schedule(output_stride)
            self.backbone = resnet50(in_channels=in_channels, strides=strides, dilations=dilations)
        low_ch, high_ch = self.backbone.out_channels[0], self.backbone.out_channels[-1]
        base_rates = (6, 12, 18)
        self.aspp = ASPP(high_ch, 256, tuple(r * 16 // output_stride for r in base_rates))
        self.reduce_low = ConvBNAct(low_ch, 48, 1)
        self.decoder = nn.Sequential(SeparableConv(256 + 48, 256), SeparableConv(256, 256))
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = self.backbone(x)
        low, high = feats[0], feats[-1]
        y = resize(self.aspp(high), low.shape[-2:])
        y = self.decoder(torch.cat([y, self.reduce_low(low)], dim=1))
        return self.classifier(y), []


@register_model(
    "deeplabv3plus",
    summary="DeepLabv3+: atrous separable ASPP + decoder (MobileNetV2/ResNet-50/Xception)",
    variants={
        "mobilenetv2-os16": {"backbone": "mobilenetv2", "output_stride": 16},
        "resnet50-os16": {"backbone": "resnet50", "output_stride": 16},
        "xception65-os16": {"backbone": "xception", "output_stride": 16},
    },
)
def deeplabv3plus(
    *,
    num_classes: int,
    backbone: str = "mobilenetv2",
    output_stride: int = 16,
    in_channels: int = 3,
    pad: str = "pad",
) -> DeepLabV3Plus:
    """DeepLabv3+; `backbone` in mobilenetv2|resnet50|xception (aligned Xception-65),
    `output_stride` 16 (default) or 8 (ASPP rates doubled, 4x the backbone's late compute)."""
    check_choice("deeplabv3plus", "backbone", backbone, BACKBONES)
    check_choice("deeplabv3plus", "output_stride", output_stride, (8, 16))
    return DeepLabV3Plus(
        num_classes=num_classes, backbone=backbone, output_stride=output_stride,
        in_channels=in_channels, pad=pad,
    )
