"""DeepLabv3+ (Chen et al., ECCV 2018): encoder-decoder with atrous separable convolution.

Encoder: a backbone at output stride 16 or 8 (atrous convolution replaces the last strides)
feeding ASPP: a 1x1 branch, three atrous *depthwise separable* 3x3 branches (rates 6/12/18 at
OS 16, doubled at OS 8) and image pooling. Decoder: the low-level 1/4 features reduced to 48
channels, concatenated with the 4x-upsampled ASPP output, refined by two separable 3x3 convs.

Image pooling is a mean over H and W followed by a 1x1 conv and an *expand* back to the
feature size (not an interpolation from 1x1), which every backend executes exactly.

Options for the layouts of ports whose weights edgeseg converts (VainF/DeepLabV3Plus-Pytorch:
`head_conv="conv"` or `"separable-nobn"`, `decoder_convs=1`, `dilate_first_block=False`,
`backbone_padding="block"`, `resnet_depth` 50 or 101; open-mmlab/mmsegmentation:
`deep_stem=True`, `aspp_channels=512`, `aspp_project_kernel=3`, `head_conv="separable"`,
`dilate_first_block=False`); the defaults are the layout above.
`head_conv` is the form of every 3x3 conv in ASPP and the decoder: `"separable"` (depthwise
-> BN -> ReLU -> pointwise -> BN -> ReLU), `"conv"` (a dense 3x3 conv -> BN -> ReLU) or
`"separable-nobn"` (depthwise straight into pointwise, then one BN -> ReLU).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.backbones.mobilenetv2 import PADDINGS, MobileNetV2
from edgeseg.models.backbones.resnet import atrous_schedule, resnet50, resnet101
from edgeseg.models.backbones.xception import AlignedXception
from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, SeparableConv, global_avg_pool, resize
from edgeseg.models.registry import check_choice, register_model

BACKBONES = ("mobilenetv2", "resnet50", "xception")
HEAD_CONVS = ("separable", "conv", "separable-nobn")


class DepthwisePointwise(nn.Sequential):
    """Depthwise 3x3 straight into a pointwise conv, one BN and ReLU after both."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, 1, dilation, dilation, groups=in_ch,
                                   bias=False)
        self.pointwise = ConvBNAct(in_ch, out_ch, 1)


def conv3x3(kind: str, in_ch: int, out_ch: int, dilation: int = 1) -> nn.Module:
    if kind == "conv":
        return ConvBNAct(in_ch, out_ch, 3, 1, dilation)
    if kind == "separable-nobn":
        return DepthwisePointwise(in_ch, out_ch, dilation)
    return SeparableConv(in_ch, out_ch, dilation=dilation)


class ASPP(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, int, int],
                 conv: str = "separable", project_kernel: int = 1) -> None:
        super().__init__()
        self.conv1x1 = ConvBNAct(in_ch, out_ch, 1)
        self.atrous = nn.ModuleList(conv3x3(conv, in_ch, out_ch, r) for r in rates)
        self.image_pool = ConvBNAct(in_ch, out_ch, 1)
        self.project = nn.Sequential(ConvBNAct(out_ch * 5, out_ch, project_kernel),
                                     nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(global_avg_pool(x)).expand(-1, -1, x.shape[2], x.shape[3])
        branches = [self.conv1x1(x), *(conv(x) for conv in self.atrous), pooled]
        return self.project(torch.cat(branches, dim=1))


class DeepLabV3Plus(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm in the image-pooling branch

    def __init__(
        self, *, num_classes: int, backbone: str, output_stride: int, in_channels: int, pad: str,
        head_conv: str = "separable", decoder_convs: int = 2, backbone_padding: str = "conv",
        dilate_first_block: bool = True, resnet_depth: int = 50, deep_stem: bool = False,
        aspp_channels: int = 256, aspp_project_kernel: int = 1,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad)
        if backbone == "mobilenetv2":
            self.backbone: nn.Module = MobileNetV2(
                in_channels=in_channels, output_stride=output_stride, padding=backbone_padding
            )
        elif backbone == "xception":
            self.backbone = AlignedXception(in_channels=in_channels, output_stride=output_stride)
        else:
            strides, dilations = atrous_schedule(output_stride)
            build = resnet101 if resnet_depth == 101 else resnet50
            self.backbone = build(in_channels=in_channels, strides=strides, dilations=dilations,
                                  dilate_first_block=dilate_first_block, deep_stem=deep_stem)
        low_ch, high_ch = self.backbone.out_channels[0], self.backbone.out_channels[-1]
        base_rates = (6, 12, 18)
        ch = aspp_channels
        self.aspp = ASPP(high_ch, ch, tuple(r * 16 // output_stride for r in base_rates),
                         head_conv, aspp_project_kernel)
        self.reduce_low = ConvBNAct(low_ch, 48, 1)
        self.decoder = nn.Sequential(conv3x3(head_conv, ch + 48, ch),
                                     *(conv3x3(head_conv, ch, ch)
                                       for _ in range(decoder_convs - 1)))
        self.classifier = nn.Conv2d(ch, num_classes, 1)

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
    head_conv: str = "separable",
    decoder_convs: int = 2,
    backbone_padding: str = "conv",
    dilate_first_block: bool = True,
    resnet_depth: int = 50,
    deep_stem: bool = False,
    aspp_channels: int = 256,
    aspp_project_kernel: int = 1,
) -> DeepLabV3Plus:
    """DeepLabv3+; `backbone` in mobilenetv2|resnet50|xception (aligned Xception-65),
    `output_stride` 16 (default) or 8 (ASPP rates doubled, 4x the backbone's late compute).

    Layout options (the module docstring says which port uses which): `head_conv`
    separable|conv|separable-nobn, `decoder_convs` 2|1, `backbone_padding` conv|block
    (MobileNetV2), `dilate_first_block` (ResNet; False: torchvision's dilation),
    `resnet_depth` 50|101 (with backbone="resnet50": the ResNet family's depth),
    `deep_stem` (ResNet; True: three 3x3 stem convs, 32/32/64 channels, as mmsegmentation's
    ResNetV1c), `aspp_channels` 256|512 (the width of ASPP, its projection and the
    decoder), `aspp_project_kernel` 1|3 (the conv that fuses the five ASPP branches)."""
    check_choice("deeplabv3plus", "backbone", backbone, BACKBONES)
    check_choice("deeplabv3plus", "output_stride", output_stride, (8, 16))
    check_choice("deeplabv3plus", "head_conv", head_conv, HEAD_CONVS)
    check_choice("deeplabv3plus", "decoder_convs", decoder_convs, (1, 2))
    check_choice("deeplabv3plus", "backbone_padding", backbone_padding, PADDINGS)
    check_choice("deeplabv3plus", "dilate_first_block", dilate_first_block, (True, False))
    check_choice("deeplabv3plus", "resnet_depth", resnet_depth, (50, 101))
    check_choice("deeplabv3plus", "deep_stem", deep_stem, (False, True))
    check_choice("deeplabv3plus", "aspp_channels", aspp_channels, (256, 512))
    check_choice("deeplabv3plus", "aspp_project_kernel", aspp_project_kernel, (1, 3))
    if deep_stem and backbone != "resnet50":
        check_choice("deeplabv3plus", "deep_stem", deep_stem, (False,))
    if backbone_padding != "conv" and backbone != "mobilenetv2":
        check_choice("deeplabv3plus", "backbone_padding", backbone_padding, ("conv",))
    if resnet_depth != 50 and backbone != "resnet50":
        check_choice("deeplabv3plus", "resnet_depth", resnet_depth, (50,))
    return DeepLabV3Plus(
        num_classes=num_classes, backbone=backbone, output_stride=output_stride,
        in_channels=in_channels, pad=pad, head_conv=head_conv, decoder_convs=decoder_convs,
        backbone_padding=backbone_padding, dilate_first_block=dilate_first_block,
        resnet_depth=resnet_depth, deep_stem=bool(deep_stem), aspp_channels=aspp_channels,
        aspp_project_kernel=aspp_project_kernel,
    )
