"""DDRNet (Hong et al., 2021, "Deep Dual-resolution Networks for Real-time and Accurate
Semantic Segmentation of Road Scenes"): DDRNet-23-slim, about 5.7 M parameters.

* Stem to 1/8: two strided 3x3 conv-BN-ReLU (32 ch, 1/4), then two stages of two
  BasicBlocks (32 ch at 1/4, 64 ch at 1/8).
* Two branches from 1/8: the high-resolution one stays at 1/8 with 64 channels (two
  BasicBlocks per stage); the low-resolution one goes to 1/16 (128 ch) and 1/32 (256 ch).
* Bilateral fusion after each of those two stages: high -> low by strided 3x3 conv-BN (one
  at 1/16, two at 1/32), low -> high by a 1x1 conv-BN and bilinear upsampling; each added
  to the other branch.
* Last stage: one Bottleneck (expansion 2) per branch, the low one strided to 1/64 (512 ch),
  then the deep aggregation pyramid pooling module (DAPPM: average pools of kernel 5/9/17
  and stride 2/4/8, plus a global one, each upsampled and fused hierarchically by 3x3
  convs) to 128 channels, upsampled to 1/8 and added to the high branch.
* Head: BN-ReLU-3x3 conv (64 ch) -BN-ReLU-1x1 classifier on that sum. Training adds the
  same head on the high branch after the first fusion (weight 0.4).

As in the authors' code, the last block of a stage (and a Bottleneck stage's first) ends
without ReLU; the branches apply it where they read a stage's output. DAPPM and the heads
are pre-activation (BN-ReLU-conv).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, global_avg_pool, resize
from edgeseg.models.registry import register_model


class Block(nn.Module):
    """A residual block (BasicBlock: two 3x3; Bottleneck: 1x1-3x3-1x1, expansion 2) whose
    final ReLU can be left out (`relu=False`) for the last block of a stage."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1, *, bottleneck: bool = False,
                 relu: bool = True) -> None:
        super().__init__()
        self.expansion = 2 if bottleneck else 1
        out = planes * self.expansion
        if bottleneck:
            self.body: nn.Module = nn.Sequential(
                ConvBNAct(in_ch, planes, 1), ConvBNAct(planes, planes, 3, stride),
                ConvBNAct(planes, out, 1, act=False))
        else:
            self.body = nn.Sequential(ConvBNAct(in_ch, planes, 3, stride),
                                      ConvBNAct(planes, out, 3, act=False))
        self.shortcut = (nn.Identity() if stride == 1 and in_ch == out
                         else ConvBNAct(in_ch, out, 1, stride, act=False))
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def stage(in_ch: int, planes: int, blocks: int, stride: int = 1, *,
          bottleneck: bool = False, relu_first: bool | None = None) -> nn.Sequential:
    """`blocks` residual blocks, the first one strided. The authors' code builds the first
    block with its class's default (a BasicBlock ends with ReLU, a Bottleneck without:
    `relu_first`), the later ones with ReLU except the last."""
    exp = 2 if bottleneck else 1
    first = (not bottleneck) if relu_first is None else relu_first
    return nn.Sequential(*[Block(in_ch if i == 0 else planes * exp, planes,
                                 stride if i == 0 else 1, bottleneck=bottleneck,
                                 relu=first if i == 0 else i < blocks - 1)
                           for i in range(blocks)])


class BNActConv(nn.Sequential):
    """Pre-activation conv: BatchNorm -> ReLU -> conv (bias only where asked)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2,
                              groups=groups, bias=bias)


class PooledBranch(nn.Module):
    """Average pool (kernel k, stride s, padding s; k=0: global) -> BN-ReLU-1x1 conv."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel, stride, stride) if kernel else None
        self.conv = BNActConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x) if self.pool is not None else global_avg_pool(x))


POOLS = ((5, 2), (9, 4), (17, 8), (0, 0))


class DAPPM(nn.Module):
    """Deep aggregation pyramid pooling: each pooled scale, upsampled, is added to the fused
    previous one and goes through a 3x3 conv; all five are concatenated and compressed,
    plus a 1x1 shortcut."""

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int) -> None:
        super().__init__()
        self.scale0 = BNActConv(in_ch, branch_ch)
        self.scales = nn.ModuleList(PooledBranch(in_ch, branch_ch, k, s) for k, s in POOLS)
        self.process = nn.ModuleList(BNActConv(branch_ch, branch_ch, 3) for _ in POOLS)
        self.compression = BNActConv(branch_ch * 5, out_ch)
        self.shortcut = BNActConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [self.scale0(x)]
        for scale, process in zip(self.scales, self.process):
            outs.append(process(resize(scale(x), size) + outs[-1]))
        return self.compression(torch.cat(outs, 1)) + self.shortcut(x)


class SegHead(nn.Sequential):
    """BN-ReLU-3x3 conv -> BN-ReLU-1x1 classifier (with bias)."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__(BNActConv(in_ch, mid_ch, 3), BNActConv(mid_ch, num_classes, bias=True))


def stem(in_ch: int, ch: int) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(in_ch, ch, 3, 2), ConvBNAct(ch, ch, 3, 2))


class DDRNet(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm after DAPPM's global pooling
    def __init__(self, *, num_classes: int, in_channels: int, pad: str, planes: int = 32,
                 spp_planes: int = 128, head_planes: int = 64, aux_heads: bool = True) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(0.4,) if aux_heads else ())
        p = planes
        self.relu = nn.ReLU()
        self.stem = stem(in_channels, p)
        self.layer1 = stage(p, p, 2)
        self.layer2 = stage(p, 2 * p, 2, 2)
        self.layer3 = stage(2 * p, 4 * p, 2, 2)
        self.layer4 = stage(4 * p, 8 * p, 2, 2)
        self.layer5 = stage(8 * p, 8 * p, 1, 2, bottleneck=True)
        self.layer3_ = stage(2 * p, 2 * p, 2)
        self.layer4_ = stage(2 * p, 2 * p, 2)
        self.layer5_ = stage(2 * p, 2 * p, 1, bottleneck=True)
        self.down3 = ConvBNAct(2 * p, 4 * p, 3, 2, act=False)
        self.down4 = nn.Sequential(ConvBNAct(2 * p, 4 * p, 3, 2),
                                   ConvBNAct(4 * p, 8 * p, 3, 2, act=False))
        self.compression3 = ConvBNAct(4 * p, 2 * p, 1, act=False)
        self.compression4 = ConvBNAct(8 * p, 2 * p, 1, act=False)
        self.spp = DAPPM(16 * p, spp_planes, 4 * p)
        self.head = SegHead(4 * p, head_planes, num_classes)
        self.aux_heads = nn.ModuleList([SegHead(2 * p, head_planes, num_classes)]
                                       if aux_heads else [])

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r = self.relu
        x = self.layer2(r(self.layer1(self.stem(x))))
        size = x.shape[-2:]  # 1/8
        # each fusion reads the stage outputs from before the other branch was added
        low = self.layer3(r(x))
        high = self.layer3_(r(x))
        low, high = (low + self.down3(r(high)),
                     high + resize(self.compression3(r(low)), size))
        early = high
        low = self.layer4(r(low))
        high = self.layer4_(r(high))
        low, high = (low + self.down4(r(high)),
                     high + resize(self.compression4(r(low)), size))
        high = self.layer5_(r(high))
        low = resize(self.spp(self.layer5(r(low))), size)
        main = self.head(low + high)
        aux = [h(early) for h in self.aux_heads] if self.training else []
        return main, aux


@register_model("ddrnet", summary="DDRNet-23-slim: dual-resolution branches with bilateral "
                "fusion and DAPPM", variants={"23-slim": {}})
def ddrnet(*, num_classes: int, in_channels: int = 3, pad: str = "pad",
           aux_heads: bool = True) -> DDRNet:
    """DDRNet-23-slim (planes 32, DAPPM 128, head 64). `aux_heads=False` builds no
    auxiliary head."""
    return DDRNet(num_classes=num_classes, in_channels=in_channels, pad=pad,
                  aux_heads=bool(aux_heads))
