"""Aligned Xception (Chollet 2017, modified in DeepLabv3+ 2018) for DeepLabv3+.

DeepLab's changes to Xception: more middle-flow blocks (16 in Xception-65), every max-pool
replaced by a strided separable conv (so the stride can become a dilation), BN after every
depthwise conv. As in TF DeepLab's `xception_module`, the entry, middle and first exit
blocks pre-activate each separable conv (ReLU before, none inside, none before the residual
add); the final three separable convs have BN + ReLU after the depthwise and the pointwise
conv. `middle_blocks` trades depth for speed (8 gives Xception-41). Returns [low (1/4, 256
ch: entry block 2's second unit, before its stride), high (2048 ch)].
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.core.errors import UsageError
from edgeseg.models.layers import ConvBNAct, SeparableConv


class SepConvPreAct(nn.Sequential):
    """ReLU -> depthwise 3x3 (dilated) -> BN -> pointwise 1x1 -> BN: DeepLab's separable
    unit with the activation before the conv and none inside."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            ConvBNAct(in_ch, in_ch, 3, stride, dilation, groups=in_ch, act=False),
            ConvBNAct(in_ch, out_ch, 1, act=False),
        )


class XceptionBlock(nn.Module):
    """Three pre-activated separable convs (the last one strided) plus a residual (a strided
    1x1 conv + BN when the shape changes), added without an activation."""

    def __init__(
        self, in_ch: int, channels: tuple[int, int, int], stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.unit1 = SepConvPreAct(in_ch, channels[0], dilation=dilation)
        self.unit2 = SepConvPreAct(channels[0], channels[1], dilation=dilation)
        self.unit3 = SepConvPreAct(channels[1], channels[2], stride, dilation)
        if stride == 1 and in_ch == channels[2]:
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = ConvBNAct(in_ch, channels[2], 1, stride, act=False)

    def forward_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, the second unit's output: before the stride, DeepLab's low-level tap)."""
        hidden = self.unit2(self.unit1(x))
        return self.unit3(hidden) + self.skip(x), hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]


class AlignedXception(nn.Module):
    def __init__(
        self, *, in_channels: int = 3, output_stride: int = 16, middle_blocks: int = 16
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise UsageError(f"Xception: output_stride must be 8 or 16, got {output_stride}")
        if middle_blocks < 1:
            raise UsageError(f"Xception: middle_blocks must be >= 1, got {middle_blocks}")
        entry3_stride, middle_d, exit_d = (2, 1, (1, 2)) if output_stride == 16 else (1, 2, (2, 4))
        self.stem = nn.Sequential(ConvBNAct(in_channels, 32, 3, 2), ConvBNAct(32, 64, 3))
        self.entry1 = XceptionBlock(64, (128, 128, 128), stride=2)
        self.entry2 = XceptionBlock(128, (256, 256, 256), stride=2)
        self.entry3 = XceptionBlock(256, (728, 728, 728), stride=entry3_stride)
        self.middle = nn.Sequential(
            *[XceptionBlock(728, (728, 728, 728), dilation=middle_d) for _ in range(middle_blocks)]
        )
        self.exit_block = XceptionBlock(728, (728, 1024, 1024), stride=1, dilation=exit_d[0])
        self.exit_convs = nn.Sequential(
            SeparableConv(1024, 1536, dilation=exit_d[1]),
            SeparableConv(1536, 1536, dilation=exit_d[1]),
            SeparableConv(1536, 2048, dilation=exit_d[1]),
        )
        self.out_channels = [256, 2048]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, low = self.entry2.forward_with_hidden(self.entry1(self.stem(x)))
        x = self.middle(self.entry3(x))
        return [low, self.exit_convs(self.exit_block(x))]
