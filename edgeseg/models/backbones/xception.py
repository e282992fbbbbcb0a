"""Aligned Xception (Chollet 2017, modified in DeepLabv3+ 2018) for DeepLabv3+.

DeepLab's changes to Xception: more middle-flow blocks (16 in Xception-65), every max-pool
replaced by a strided separable conv (so the stride can become a dilation), and BN + ReLU
after every depthwise conv. `middle_blocks` trades depth for speed (8 gives Xception-41).
Returns [low (1/4, 128 ch), high (2048 ch)].
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.layers import ConvBNAct, SeparableConv


class XceptionBlock(nn.Module):
    """Three separable convs (the last one strided) with a residual connection."""

    def __init__(
        self, in_ch: int, channels: tuple[int, int, int], stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        convs, ch = [], in_ch
        for i, out in enumerate(channels):
            convs.append(SeparableConv(ch, out, stride if i == 2 else 1, dilation))
            ch = out
        self.convs = nn.Sequential(*convs)
        if stride == 1 and in_ch == ch:
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = ConvBNAct(in_ch, ch, 1, stride, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x) + self.skip(x)


class AlignedXception(nn.Module):
    def __init__(
        self, *, in_channels: int = 3, output_stride: int = 16, middle_blocks: int = 16
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"Xception: output_stride must be 8 or 16, got {output_stride}")
        if middle_blocks < 1:
            raise ValueError(f"Xception: middle_blocks must be >= 1, got {middle_blocks}")
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
        self.out_channels = [128, 2048]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        low = self.entry1(self.stem(x))
        x = self.middle(self.entry3(self.entry2(low)))
        return [low, self.exit_convs(self.exit_block(x))]
