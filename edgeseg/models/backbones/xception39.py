"""Xception39: the small Xception-style context backbone of BiSeNet V1 (Yu et al. 2018).

An 8-channel strided stem and max-pool (1/4), then three stages of separable-conv residual
blocks (4, 8, 4 blocks; 16/32/64 mid channels expanded 4x) at 1/8, 1/16 and 1/32.
Returns [c3 (64 ch), c4 (128 ch), c5 (256 ch)].
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.layers import ConvBNAct


class SepConvBN(nn.Sequential):
    """Depthwise 3x3 (no BN) -> pointwise 1x1 -> BN -> optional ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, act: bool = True) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
            ConvBNAct(in_ch, out_ch, 1, act=act),
        )


class Xception39Block(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, mid_ch: int, stride: int) -> None:
        super().__init__()
        out = mid_ch * self.expansion
        self.body = nn.Sequential(
            SepConvBN(in_ch, mid_ch, stride), SepConvBN(mid_ch, mid_ch),
            SepConvBN(mid_ch, out, act=False),
        )
        self.proj: nn.Module = (
            nn.Identity() if stride == 1 and in_ch == out else SepConvBN(in_ch, out, stride, False)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.proj(x))


class Xception39(nn.Module):
    def __init__(self, *, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(in_channels, 8, 3, 2), nn.MaxPool2d(3, 2, 1))
        stages, in_ch, self.out_channels = [], 8, []
        for n, mid in zip((4, 8, 4), (16, 32, 64)):
            blocks = []
            for i in range(n):
                blocks.append(Xception39Block(in_ch, mid, 2 if i == 0 else 1))
                in_ch = mid * Xception39Block.expansion
            stages.append(nn.Sequential(*blocks))
            self.out_channels.append(in_ch)
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
