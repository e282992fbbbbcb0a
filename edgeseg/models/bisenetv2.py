"""BiSeNet V2 (Yu et al., IJCV 2021): bilateral network with guided aggregation.

Detail branch: wide, shallow, 1/8 resolution (three stages of 3x3 convs, 64-64-128 ch).
Semantic branch: narrow, deep, 1/32 resolution: a stem (conv and max-pool halves fused),
gather-and-expansion (GE) layers with depthwise convs, and a context-embedding block
(global pooling + residual). Bilateral guided aggregation (BGA) lets each branch gate the
other at both resolutions. Booster training: four auxiliary heads on semantic stages
(1/4, 1/8, 1/16, 1/32), dropped at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, global_avg_pool, resize
from edgeseg.models.registry import check_choice, register_model

UPSAMPLE_MODES = ("bilinear", "nearest")


class DetailBranch(nn.Sequential):
    def __init__(self, in_ch: int) -> None:
        super().__init__(
            ConvBNAct(in_ch, 64, 3, 2), ConvBNAct(64, 64, 3),
            ConvBNAct(64, 64, 3, 2), ConvBNAct(64, 64, 3), ConvBNAct(64, 64, 3),
            ConvBNAct(64, 128, 3, 2), ConvBNAct(128, 128, 3), ConvBNAct(128, 128, 3),
        )


class StemBlock(nn.Module):
    """1/4 resolution, 16 ch: a strided conv path and a max-pool path, concatenated and fused."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_ch, 16, 3, 2)
        self.left = nn.Sequential(ConvBNAct(16, 8, 1), ConvBNAct(8, 16, 3, 2))
        self.right = nn.MaxPool2d(3, 2, 1)
        self.fuse = ConvBNAct(32, 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class GatherExpansion(nn.Module):
    """GE layer: 3x3 conv gathers, depthwise 3x3 expands by 6 (two of them when strided),
    a 1x1 projects back; residual shortcut (a separable conv when strided)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expand: int = 6) -> None:
        super().__init__()
        mid = in_ch * expand
        layers: list[nn.Module] = [ConvBNAct(in_ch, in_ch, 3)]
        if stride == 2:
            layers += [ConvBNAct(in_ch, mid, 3, 2, groups=in_ch, act=False),
                       ConvBNAct(mid, mid, 3, groups=mid)]
        else:
            layers.append(ConvBNAct(in_ch, mid, 3, groups=in_ch))
        layers.append(ConvBNAct(mid, out_ch, 1, act=False))
        self.body = nn.Sequential(*layers)
        if stride == 1 and in_ch == out_ch:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvBNAct(in_ch, in_ch, 3, stride, groups=in_ch, act=False),
                ConvBNAct(in_ch, out_ch, 1, act=False),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ContextEmbedding(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(ch)
        self.conv_gap = ConvBNAct(ch, ch, 1)
        self.conv_last = ConvBNAct(ch, ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(x + self.conv_gap(self.bn(global_avg_pool(x))))


class SemanticBranch(nn.Module):
    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.stem = StemBlock(in_ch)
        self.s3 = nn.Sequential(GatherExpansion(16, 32, 2), GatherExpansion(32, 32))
        self.s4 = nn.Sequential(GatherExpansion(32, 64, 2), GatherExpansion(64, 64))
        self.s5 = nn.Sequential(GatherExpansion(64, 128, 2),
                                *[GatherExpansion(128, 128) for _ in range(3)])
        self.ce = ContextEmbedding(128)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s2 = self.stem(x)
        s3 = self.s3(s2)
        s4 = self.s4(s3)
        s5 = self.s5(s4)
        return [s2, s3, s4, s5, self.ce(s5)]


class BGA(nn.Module):
    """Bilateral guided aggregation: detail (1/8) and semantic (1/32) gate each other."""

    def __init__(self, ch: int = 128, upsample: str = "bilinear",
                 pointwise_bias: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.detail_keep = nn.Sequential(
            ConvBNAct(ch, ch, 3, groups=ch, act=False),
            nn.Conv2d(ch, ch, 1, bias=pointwise_bias))
        self.detail_down = nn.Sequential(
            ConvBNAct(ch, ch, 3, 2, act=False), nn.AvgPool2d(3, 2, 1, ceil_mode=False))
        self.semantic_up = ConvBNAct(ch, ch, 3, act=False)
        self.semantic_keep = nn.Sequential(
            ConvBNAct(ch, ch, 3, groups=ch, act=False),
            nn.Conv2d(ch, ch, 1, bias=pointwise_bias))
        self.fuse = ConvBNAct(ch, ch, 3)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        size = detail.shape[-2:]
        high = self.detail_keep(detail) * torch.sigmoid(self._up(self.semantic_up(semantic), size))
        low = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        return self.fuse(high + self._up(low, size))

    def _up(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        if self.upsample == "nearest":
            return F.interpolate(x, size=tuple(size), mode="nearest")
        return resize(x, size)


class SegHead(nn.Sequential):
    """3x3 conv -> dropout -> 1x1 classifier (logits stay at the feature resolution)."""

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__(ConvBNAct(in_ch, mid_ch, 3), nn.Dropout(0.1),
                         nn.Conv2d(mid_ch, num_classes, 1))


class BiSeNetV2(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm in the context-embedding block

    def __init__(self, *, num_classes: int, in_channels: int, pad: str,
                 bga_upsample: str = "bilinear", aux_heads: bool = True,
                 bga_pointwise_bias: bool = False) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(1.0, 1.0, 1.0, 1.0) if aux_heads else ())
        self.detail = DetailBranch(in_channels)
        self.semantic = SemanticBranch(in_channels)
        self.bga = BGA(128, bga_upsample, bga_pointwise_bias)
        self.head = SegHead(128, 1024, num_classes)
        self.aux_heads = nn.ModuleList(
            SegHead(ch, 128, num_classes) for ch in ((16, 32, 64, 128) if aux_heads else ())
        )

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = self.semantic(x)
        main = self.head(self.bga(self.detail(x), feats[-1]))
        aux = [h(f) for h, f in zip(self.aux_heads, feats[:4])] if self.training else []
        return main, aux


@register_model(
    "bisenetv2",
    summary="BiSeNet V2: detail + semantic branches, guided aggregation, booster aux heads",
    variants={"default": {}},
)
def bisenetv2(*, num_classes: int, in_channels: int = 3, pad: str = "pad",
              bga_upsample: str = "bilinear", aux_heads: bool = True,
              bga_pointwise_bias: bool = False) -> BiSeNetV2:
    """BiSeNet V2 (about 3.4 M parameters with 19 classes, the common reimplementation).

    `bga_upsample`: how the guided aggregation brings the 1/32 maps to 1/8, "bilinear"
    (default) or "nearest" (CoinCheung/BiSeNet's nn.Upsample, which its released weights
    were trained with). `aux_heads=False` builds no booster heads: for weights published
    without ours (CoinCheung's heads have another layout), inference and fine-tuning
    without auxiliary losses. `bga_pointwise_bias=True` gives the 1x1 convs that follow
    the guided aggregation's two depthwise convs (detail_keep.1, semantic_keep.1) a bias, as
    mmsegmentation's BGALayer has (its pointwise conv carries no BatchNorm, so a bias);
    default False (no bias, as the paper's figure and CoinCheung/BiSeNet).
    """
    check_choice("bisenetv2", "bga_upsample", bga_upsample, UPSAMPLE_MODES)
    return BiSeNetV2(num_classes=num_classes, in_channels=in_channels, pad=pad,
                     bga_upsample=bga_upsample, aux_heads=bool(aux_heads),
                     bga_pointwise_bias=bool(bga_pointwise_bias))
