"""PIDNet (Xu et al., CVPR 2023, "PIDNet: A Real-time Semantic Segmentation Network
Inspired by PID Controllers"): PIDNet-S, about 7.6 M parameters.

Three branches, named after a PID controller's terms:
* I (integral, context): a residual backbone to 1/32 (BasicBlocks: two at 1/4 and 1/8,
  three at 1/16 and 1/32), two Bottlenecks (expansion 2) to 1/64, then parallel aggregation
  pyramid pooling (PAPPM: DDRNet's pooled scales, each added to the unpooled one and
  processed together by one grouped 3x3 conv) to 128 channels;
* P (proportional, detail): stays at 1/8 with 64 channels (two BasicBlocks per stage). After
  each of the I branch's 1/16 and 1/32 stages, pixel-attention-guided fusion (Pag) pulls
  context into it: the similarity of the two branches' 1x1 projections gates, per pixel,
  how much of the upsampled I feature replaces the P feature;
* D (derivative, boundary): at 1/8 (a BasicBlock to 32 channels, a Bottleneck to 64), with
  the I branch's features added after each stage through a 3x3 conv-BN and upsampling.
Boundary-attention-guided fusion (Bag, the light version of PIDNet-S) merges the three at
1/8: sigmoid(D) weights I against P; BN-ReLU-3x3-BN-ReLU-1x1 head to the classes.

Training adds a segmentation head on P after the first Pag (weight 0.4) and a boundary head
(one channel) on D after its second stage, trained against the label map's class boundaries
(weight 1; see train.boundary_loss). The paper also weighs a cross-entropy term on the
pixels its boundary head is confident about (its BAS loss); that term is not used here.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.base import SegmentationModel
from edgeseg.models.ddrnet import POOLS, BNActConv, PooledBranch, SegHead, stage, stem
from edgeseg.models.layers import ConvBNAct, resize
from edgeseg.models.registry import register_model


class PAPPM(nn.Module):
    """Parallel aggregation PPM: every pooled scale (upsampled) plus the unpooled one,
    processed at once by a grouped 3x3 conv, concatenated with it and compressed; plus a
    1x1 shortcut."""

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int) -> None:
        super().__init__()
        n = len(POOLS)
        self.scale0 = BNActConv(in_ch, branch_ch)
        self.scales = nn.ModuleList(PooledBranch(in_ch, branch_ch, k, s) for k, s in POOLS)
        self.process = BNActConv(branch_ch * n, branch_ch * n, 3, groups=n)
        self.compression = BNActConv(branch_ch * (n + 1), out_ch)
        self.shortcut = BNActConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x0 = self.scale0(x)
        pooled = self.process(torch.cat([resize(s(x), size) + x0 for s in self.scales], 1))
        return self.compression(torch.cat([x0, pooled], 1)) + self.shortcut(x)


class PagFM(nn.Module):
    """Pixel-attention-guided fusion: sigma = sigmoid(sum_c f_x(p) * up(f_y(i))) per pixel;
    out = (1 - sigma) p + sigma up(i)."""

    def __init__(self, ch: int, mid_ch: int) -> None:
        super().__init__()
        self.f_x = ConvBNAct(ch, mid_ch, 1, act=False)
        self.f_y = ConvBNAct(ch, mid_ch, 1, act=False)

    def forward(self, p: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        size = p.shape[-2:]
        sim = torch.sigmoid((self.f_x(p) * resize(self.f_y(i), size)).sum(1, keepdim=True))
        return (1 - sim) * p + sim * resize(i, size)


class LightBag(nn.Module):
    """Light boundary-attention-guided fusion: a = sigmoid(d);
    out = conv_p((1 - a) i + p) + conv_i(i + a p), each conv a 1x1 conv-BN."""

    def __init__(self, ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv_p = ConvBNAct(ch, out_ch, 1, act=False)
        self.conv_i = ConvBNAct(ch, out_ch, 1, act=False)

    def forward(self, p: torch.Tensor, i: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(d)
        return self.conv_p((1 - a) * i + p) + self.conv_i(i + a * p)


class PIDNet(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm after PAPPM's global pooling
    def __init__(self, *, num_classes: int, in_channels: int, pad: str, m: int = 2, n: int = 3,
                 planes: int = 32, ppm_planes: int = 96, head_planes: int = 128,
                 aux_heads: bool = True) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(0.4, 1.0) if aux_heads else ())
        self.aux_kinds = ("seg", "boundary") if aux_heads else ()
        p = planes
        self.relu = nn.ReLU()
        self.stem = stem(in_channels, p)
        self.layer1 = stage(p, p, m)
        self.layer2 = stage(p, 2 * p, m, 2)
        # I branch
        self.layer3 = stage(2 * p, 4 * p, n, 2)
        self.layer4 = stage(4 * p, 8 * p, n, 2)
        self.layer5 = stage(8 * p, 8 * p, 2, 2, bottleneck=True)
        self.spp = PAPPM(16 * p, ppm_planes, 4 * p)
        # P branch
        self.compression3 = ConvBNAct(4 * p, 2 * p, 1, act=False)
        self.compression4 = ConvBNAct(8 * p, 2 * p, 1, act=False)
        self.pag3 = PagFM(2 * p, p)
        self.pag4 = PagFM(2 * p, p)
        self.layer3_ = stage(2 * p, 2 * p, m)
        self.layer4_ = stage(2 * p, 2 * p, m)
        self.layer5_ = stage(2 * p, 2 * p, 1, bottleneck=True)
        # D branch
        self.layer3_d = stage(2 * p, p, 1, relu_first=False)
        self.layer4_d = stage(p, p, 1, bottleneck=True)
        self.layer5_d = stage(2 * p, 2 * p, 1, bottleneck=True)
        self.diff3 = ConvBNAct(4 * p, p, 3, act=False)
        self.diff4 = ConvBNAct(8 * p, 2 * p, 3, act=False)
        self.bag = LightBag(4 * p, 4 * p)
        self.head = SegHead(4 * p, head_planes, num_classes)
        self.aux_heads = nn.ModuleList([SegHead(2 * p, head_planes, num_classes),
                                        SegHead(2 * p, p, 1)] if aux_heads else [])

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r = self.relu
        x = r(self.layer2(r(self.layer1(self.stem(x)))))
        size = x.shape[-2:]  # 1/8
        p, d = self.layer3_(x), self.layer3_d(x)
        i = r(self.layer3(x))
        p = self.pag3(p, self.compression3(i))
        d = d + resize(self.diff3(i), size)
        early_p = p
        i = r(self.layer4(i))
        p, d = self.layer4_(r(p)), self.layer4_d(r(d))
        p = self.pag4(p, self.compression4(i))
        d = d + resize(self.diff4(i), size)
        early_d = d
        p, d = self.layer5_(r(p)), self.layer5_d(r(d))
        i = resize(self.spp(self.layer5(i)), size)
        main = self.head(self.bag(p, i, d))
        aux = ([h(f) for h, f in zip(self.aux_heads, (early_p, early_d))]
               if self.training else [])
        return main, aux


@register_model("pidnet", summary="PIDNet-S: detail, context and boundary branches with "
                "attention-guided fusions", variants={"s": {}})
def pidnet(*, num_classes: int, in_channels: int = 3, pad: str = "pad",
           aux_heads: bool = True) -> PIDNet:
    """PIDNet-S (m=2, n=3, planes 32, PAPPM 96, head 128). `aux_heads=False` builds neither
    the P segmentation head nor the D boundary head (both are for training only)."""
    return PIDNet(num_classes=num_classes, in_channels=in_channels, pad=pad,
                  aux_heads=bool(aux_heads))
