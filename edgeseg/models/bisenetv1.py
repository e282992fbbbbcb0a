"""BiSeNet V1 (Yu et al., ECCV 2018): bilateral segmentation network.

Spatial path: three stride-2 conv blocks keep a wide 1/8 map with fine detail.
Context path: a fast backbone (ResNet-18, or Xception39) to 1/32; global average pooling
adds the whole-image context; attention refinement modules (ARM: global pooling -> 1x1 conv
-> sigmoid, re-weighting channels) refine the 1/16 and 1/32 features, which are upsampled
back to 1/8. The feature fusion module (FFM) concatenates both paths and re-weights the
channels with an SE-like attention. Two auxiliary heads supervise the context path in
training (the paper's alpha = 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.backbones.resnet import resnet18
from edgeseg.models.backbones.xception39 import Xception39
from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, global_avg_pool, resize
from edgeseg.models.registry import check_choice, register_model

BACKBONES = ("resnet18", "xception39")
# Width of the main head's 3x3 conv: 256 with ResNet-18 (the common reimplementation, 13.3 M
# parameters), 64 with Xception39 (TorchSeg's configuration, the paper's 2.9 GMACs at 360x640;
# at 256 this conv alone would cost 2 GMACs there).
HEAD_WIDTH = {"resnet18": 256, "xception39": 64}
UPSAMPLE_MODES = ("bilinear", "nearest")
FFM_ATTENTIONS = ("paper", "conv-bn", "conv-bn-relu")


class SpatialPath(nn.Sequential):
    def __init__(self, in_ch: int) -> None:
        super().__init__(
            ConvBNAct(in_ch, 64, 7, 2), ConvBNAct(64, 64, 3, 2), ConvBNAct(64, 64, 3, 2),
            ConvBNAct(64, 128, 1),
        )


class AttentionRefinement(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_ch, out_ch, 3)
        self.attention = ConvBNAct(out_ch, out_ch, 1, act=nn.Sigmoid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(global_avg_pool(x))


class ContextPath(nn.Module):
    def __init__(self, backbone: str, in_ch: int, ch: int = 128,
                 upsample: str = "bilinear") -> None:
        super().__init__()
        self.upsample = upsample
        self.backbone = resnet18(in_channels=in_ch) if backbone == "resnet18" else Xception39(
            in_channels=in_ch)
        c16, c32 = self.backbone.out_channels[-2:]
        self.arm16 = AttentionRefinement(c16, ch)
        self.arm32 = AttentionRefinement(c32, ch)
        self.global_context = ConvBNAct(c32, ch, 1)
        self.refine32 = ConvBNAct(ch, ch, 3)
        self.refine16 = ConvBNAct(ch, ch, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the refined context at 1/8 and at 1/16 (both `ch` channels)."""
        *_, f16, f32 = self.backbone(x)
        ctx32 = self.arm32(f32) + self.global_context(global_avg_pool(f32))
        up32 = self.refine32(self._up(ctx32, f16.shape[-2:]))
        ctx16 = self.arm16(f16) + up32
        size8 = (f16.shape[-2] * 2, f16.shape[-1] * 2)
        return self.refine16(self._up(ctx16, size8)), up32

    def _up(self, x: torch.Tensor, size) -> torch.Tensor:
        if self.upsample == "nearest":
            return F.interpolate(x, size=tuple(size), mode="nearest")
        return resize(x, size)


class FeatureFusion(nn.Module):
    """Concatenate, 1x1 conv-BN-ReLU, then the paper's channel attention: global pooling,
    1x1 conv, ReLU, 1x1 conv, sigmoid (no BatchNorm), applied as x + x * attention.
    `attention="conv-bn"`: one 1x1 conv (no bias) and BatchNorm before the sigmoid instead,
    the ARM's form, which CoinCheung/BiSeNet's released weights use. `attention=
    "conv-bn-relu"`: that conv and BatchNorm followed by a ReLU before the sigmoid, as
    mmsegmentation's FeatureFusionModule computes. `attention="squeeze4"`: squeeze and
    excitation, 1x1 convs without bias to a quarter of the channels and back (STDC-Seg's)."""

    def __init__(self, in_ch: int, out_ch: int, attention: str = "paper") -> None:
        super().__init__()
        self.blend = ConvBNAct(in_ch, out_ch, 1)
        if attention == "conv-bn":
            self.attention: nn.Module = ConvBNAct(out_ch, out_ch, 1, act=nn.Sigmoid)
        elif attention == "conv-bn-relu":
            self.attention = nn.Sequential(ConvBNAct(out_ch, out_ch, 1), nn.Sigmoid())
        elif attention == "squeeze4":
            self.attention = nn.Sequential(
                nn.Conv2d(out_ch, out_ch // 4, 1, bias=False), nn.ReLU(inplace=True),
                nn.Conv2d(out_ch // 4, out_ch, 1, bias=False), nn.Sigmoid())
        else:
            self.attention = nn.Sequential(
                nn.Conv2d(out_ch, out_ch, 1), nn.ReLU(inplace=True),
                nn.Conv2d(out_ch, out_ch, 1), nn.Sigmoid(),
            )

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.blend(torch.cat([spatial, context], dim=1))
        return x + x * self.attention(global_avg_pool(x))


class OutputHead(nn.Sequential):
    def __init__(self, in_ch: int, mid_ch: int, num_classes: int) -> None:
        super().__init__(ConvBNAct(in_ch, mid_ch, 3), nn.Conv2d(mid_ch, num_classes, 1))


class BiSeNetV1(SegmentationModel):
    # ARM/FFM attention and the global context have BatchNorm after global pooling.
    needs_batch_stats_on_pooled = True

    def __init__(self, *, num_classes: int, backbone: str, in_channels: int, pad: str,
                 context_upsample: str = "bilinear", ffm_attention: str = "paper") -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(1.0, 1.0))
        self.spatial = SpatialPath(in_channels)
        self.context = ContextPath(backbone, in_channels, upsample=context_upsample)
        self.ffm = FeatureFusion(256, 256, ffm_attention)
        self.head = OutputHead(256, HEAD_WIDTH[backbone], num_classes)
        self.aux8 = OutputHead(128, 64, num_classes)
        self.aux16 = OutputHead(128, 64, num_classes)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        ctx8, ctx16 = self.context(x)
        main = self.head(self.ffm(self.spatial(x), ctx8))
        aux = [self.aux8(ctx8), self.aux16(ctx16)] if self.training else []
        return main, aux


@register_model(
    "bisenetv1",
    summary="BiSeNet V1: spatial path + context path (ResNet-18 or Xception39), ARM, FFM",
    variants={"resnet18": {"backbone": "resnet18"}, "xception39": {"backbone": "xception39"}},
)
def bisenetv1(
    *, num_classes: int, backbone: str = "resnet18", in_channels: int = 3, pad: str = "pad",
    context_upsample: str = "bilinear", ffm_attention: str = "paper",
) -> BiSeNetV1:
    """BiSeNet V1; `backbone` is resnet18 (default, about 13.3 M parameters) or xception39.

    For weights trained elsewhere: `context_upsample` is how the context path doubles the
    1/32 and 1/16 maps, "bilinear" (default) or "nearest"; `ffm_attention` is the fusion
    module's channel attention, "paper" (default: conv, ReLU, conv), "conv-bn" (one conv
    and BatchNorm) or "conv-bn-relu" (one conv, BatchNorm and ReLU). CoinCheung/BiSeNet's
    released weights need "nearest" and "conv-bn"; mmsegmentation's "nearest" and
    "conv-bn-relu".
    """
    check_choice("bisenetv1", "backbone", backbone, BACKBONES)
    check_choice("bisenetv1", "context_upsample", context_upsample, UPSAMPLE_MODES)
    check_choice("bisenetv1", "ffm_attention", ffm_attention, FFM_ATTENTIONS)
    return BiSeNetV1(num_classes=num_classes, backbone=backbone, in_channels=in_channels, pad=pad,
                     context_upsample=context_upsample, ffm_attention=ffm_attention)
