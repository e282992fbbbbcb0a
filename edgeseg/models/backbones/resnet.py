"""ResNet-18/50/101 (He et al. 2016) with atrous stages for dense prediction.

`strides`/`dilations` per stage (layer1..layer4) turn the last strides into dilations, as
DeepLab and PSPNet do; `base_width` scales every stage (ICNet uses half width, 32);
`deep_stem` replaces the 7x7 stem conv by three 3x3 convs (32/32/64 channels, PSPNet's and
ICNet's stem); `dilate_first_block=False` gives the first block of a stage whose rate grew
the previous stage's rate, as torchvision's `replace_stride_with_dilation` does (and the
DeepLab ports built on it, VainF/DeepLabV3Plus-Pytorch among them), so that their weights
see the receptive fields they were trained with. mmsegmentation's ResNetV1c, under its ICNet,
differs in two more places, each an option: `ceil_pool=True` (the stem's max-pool rounds its
output size up, keeping the last row and column of a map whose size is even) and
`basic_dilate_conv2=False` (a BasicBlock dilates its first 3x3 conv only; the second keeps
rate 1).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.layers import ConvBNAct


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int, dilation: int,
                 dilate_conv2: bool = True) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = ConvBNAct(in_ch, planes, 3, stride, dilation)
        self.conv2 = ConvBNAct(planes, out, 3, 1, dilation if dilate_conv2 else 1, act=False)
        self.downsample = _shortcut(in_ch, out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.downsample(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, dilation: int,
                 dilate_conv2: bool = True) -> None:
        super().__init__()  # dilate_conv2: a BasicBlock option; a Bottleneck has one 3x3
        out = planes * self.expansion
        self.conv1 = ConvBNAct(in_ch, planes, 1)
        self.conv2 = ConvBNAct(planes, planes, 3, stride, dilation)
        self.conv3 = ConvBNAct(planes, out, 1, act=False)
        self.downsample = _shortcut(in_ch, out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.downsample(x))


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return ConvBNAct(in_ch, out_ch, 1, stride, act=False)


class ResNet(nn.Module):
    """Stem (7x7/2 conv + 3x3/2 max-pool) and four stages; returns [c2, c3, c4, c5]."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        in_channels: int = 3,
        base_width: int = 64,
        strides: tuple[int, int, int, int] = (1, 2, 2, 2),
        dilations: tuple[int, int, int, int] = (1, 1, 1, 1),
        deep_stem: bool = False,
        dilate_first_block: bool = True,
        ceil_pool: bool = False,
        basic_dilate_conv2: bool = True,
    ) -> None:
        super().__init__()
        pool = nn.MaxPool2d(3, 2, 1, ceil_mode=ceil_pool)
        if deep_stem:
            stem_ch = 64
            self.stem = nn.Sequential(
                ConvBNAct(in_channels, 32, 3, 2), ConvBNAct(32, 32, 3), ConvBNAct(32, stem_ch, 3),
                pool,
            )
        else:
            stem_ch = base_width
            self.stem = nn.Sequential(ConvBNAct(in_channels, stem_ch, 7, 2), pool)
        stages, in_ch, self.out_channels = [], stem_ch, []
        for i, (n, s, d) in enumerate(zip(layers, strides, dilations)):
            planes = base_width * 2**i
            blocks = []
            first_d = d if dilate_first_block or i == 0 else dilations[i - 1]
            for j in range(n):
                # By default every block of a dilated stage uses the stage's rate, as the
                # released PSPNet/ICNet and TF DeepLab do; torchvision's weights expect the
                # first block at the previous rate (dilate_first_block=False).
                blocks.append(block(in_ch, planes, s if j == 0 else 1, first_d if j == 0 else d,
                                    basic_dilate_conv2))
                in_ch = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
            self.out_channels.append(in_ch)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c2 = self.layer1(self.stem(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c2, c3, c4, self.layer4(c4)]


def resnet18(**kw) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), **kw)


def resnet50(**kw) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), **kw)


def resnet101(**kw) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 23, 3), **kw)


def atrous_schedule(output_stride: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(strides, dilations) for layer1..layer4 that give output stride 8, 16 or 32."""
    return {
        32: ((1, 2, 2, 2), (1, 1, 1, 1)),
        16: ((1, 2, 2, 1), (1, 1, 1, 2)),
        8: ((1, 2, 1, 1), (1, 1, 2, 4)),
    }[output_stride]
