"""MobileNetV2 (Sandler et al. 2018) with atrous stages, as DeepLabv3+ uses it.

The final 1x1 conv to 1280 channels and the classifier are left out (DeepLab's mobile
variant feeds the 320-channel features to ASPP). Returns [low (1/4, 24 ch), high (320 ch)].

`padding="block"` reproduces the MobileNetV2 of VainF/DeepLabV3Plus-Pytorch, so that its
weights compute what they were trained to compute: the stem conv is unpadded, and each
inverted-residual block zero-pads its input once, before the 1x1 expansion, instead of the
depthwise conv padding its own input. The depthwise conv then sees act(BN(0)) at the border,
not zero; the default, `"conv"`, is the usual layout (every conv pads its own input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.core.errors import UsageError
from edgeseg.models.layers import ConvBNAct, make_divisible

# expansion t, channels c, repeats n, stride s (the paper's Table 2)
_CONFIG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
PADDINGS = ("conv", "block")


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int, expand: int,
                 pad_input: bool = False) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(in_ch, hidden, 1, act=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, dilation, groups=hidden, act=nn.ReLU6),
            ConvBNAct(hidden, out_ch, 1, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.input_pad = dilation if pad_input else 0
        if pad_input:
            layers[-2].conv.padding = (0, 0)  # the block's input is padded instead

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.input_pad
        y = self.block(F.pad(x, (p, p, p, p)) if p else x)
        return x + y if self.use_residual else y


class MobileNetV2(nn.Module):
    def __init__(
        self, *, in_channels: int = 3, width_mult: float = 1.0, output_stride: int = 16,
        padding: str = "conv",
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise UsageError(f"MobileNetV2: output_stride must be 8, 16 or 32, got {output_stride}")
        if padding not in PADDINGS:
            raise UsageError(f"MobileNetV2: padding must be one of {PADDINGS}, got {padding!r}")
        stem_ch = make_divisible(32 * width_mult)
        self.stem = ConvBNAct(in_channels, stem_ch, 3, 2, act=nn.ReLU6)
        if padding == "block":
            self.stem.conv.padding = (0, 0)
        stride_so_far, dilation, in_ch = 2, 1, stem_ch
        low, high = [], []
        for t, c, n, s in _CONFIG:
            out_ch = make_divisible(c * width_mult)
            if s == 2 and stride_so_far >= output_stride:
                stride, dilation_next = 1, dilation * 2
            else:
                stride, dilation_next = s, dilation
                stride_so_far *= s
            for i in range(n):
                # The first block of a newly dilated stage keeps the old dilation.
                d = dilation if i == 0 else dilation_next
                block = InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, d, t,
                                         pad_input=padding == "block")
                (low if c <= 24 else high).append(block)
                in_ch = out_ch
            dilation = dilation_next
        self.low = nn.Sequential(*low)
        self.high = nn.Sequential(*high)
        self.out_channels = [make_divisible(24 * width_mult), in_ch]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        low = self.low(self.stem(x))
        return [low, self.high(low)]
