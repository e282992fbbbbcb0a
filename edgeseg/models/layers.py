"""Building blocks shared by the model files."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> activation (ReLU, another class such as nn.ReLU6, or
    none with `act=False`).

    A plain Sequential with children named conv/bn/act so that BatchNorm folding at export
    time can find the pairs without model-specific code.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool | type[nn.Module] = True,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel_size, stride, padding, dilation, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch)
        if act is True:
            act = nn.ReLU
        if not act:
            self.act: nn.Module = nn.Identity()
        else:
            self.act = act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act()


class SeparableConv(nn.Sequential):
    """Atrous depthwise separable conv as in DeepLabv3+: depthwise (dilated) 3x3 -> BN -> ReLU
    -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(in_ch, in_ch, 3, stride, dilation, groups=in_ch)
        self.pointwise = ConvBNAct(in_ch, out_ch, 1)


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize to an explicit size (align_corners=False: what every backend agrees on)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling to Nx C x 1 x 1 as a mean (ReduceMean in ONNX, no adaptive op)."""
    return x.mean(dim=(2, 3), keepdim=True)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never below 90% of `value`."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new
