"""STDC-Seg (Fan et al., CVPR 2021, "Rethinking BiSeNet For Real-time Semantic
Segmentation") with the STDC1 backbone: 8.3 M parameters with 19 classes (the backbone
5.3 M without its ImageNet classifier), 67 GMACs at 1024x2048.

* STDC1 backbone: a 3x3 conv-BN-ReLU of 32 channels at 1/2 and one of 64 at 1/4, then three
  stages (1/8: 256, 1/16: 512, 1/32: 1024 channels) of two Short-Term Dense Concatenate
  modules each, the first strided.
* STDC module (four blocks): a 1x1 conv to C/2, then 3x3 convs to C/4, C/8 and C/8, each
  on the previous block's output; the four outputs are concatenated (C channels). When
  strided, a depthwise 3x3 conv-BN of stride 2 follows the first block, and the first block's
  own output is average-pooled (3x3, stride 2) before the concatenation.
* Head (BiSeNet's, as the paper keeps it): attention refinement (3x3 conv, then a channel
  gate from global pooling, 1x1 conv, BN, sigmoid) on the 1/32 and 1/16 features, plus the
  globally pooled 1/32 feature; each level is upsampled 2x (nearest, as the authors' code)
  and refined by a 3x3 conv; the 1/8 backbone feature (spatial path) and this context meet
  in the feature fusion module (1x1 conv, then a squeeze-and-excitation gate added back).
  Classifier: 3x3 conv-BN-ReLU and a 1x1 conv at 1/8.

Training adds segmentation heads on the 1/8 and 1/16 context features (weight 1 each) and
the detail head (one channel) on the 1/8 backbone feature, trained against the label map's
class boundaries with binary cross-entropy plus Dice (train.boundary_loss; the paper's
detail targets are Laplacian responses at three strides fused by a learned 1x1 conv, not
reproduced here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.base import SegmentationModel
from edgeseg.models.bisenetv1 import AttentionRefinement, FeatureFusion
from edgeseg.models.layers import ConvBNAct, global_avg_pool
from edgeseg.models.registry import register_model


class STDCModule(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, blocks: int = 4) -> None:
        super().__init__()
        widths = [out_ch // 2] + [out_ch // 2 ** (i + 1) for i in range(1, blocks - 1)]
        widths.append(widths[-1])  # C/2, C/4, ..., and the last block repeats the smallest
        self.blocks = nn.ModuleList(
            [ConvBNAct(in_ch, widths[0], 1)]
            + [ConvBNAct(widths[i - 1], widths[i], 3) for i in range(1, blocks)])
        self.stride = stride
        if stride == 2:
            self.down = ConvBNAct(widths[0], widths[0], 3, 2, groups=widths[0], act=False)
            self.skip = nn.AvgPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.blocks[0](x)
        y = self.down(first) if self.stride == 2 else first
        outs = [self.skip(first) if self.stride == 2 else first]
        for block in self.blocks[1:]:
            y = block(y)
            outs.append(y)
        return torch.cat(outs, 1)


class STDC1(nn.Module):
    """Outputs the 1/8, 1/16 and 1/32 features (256, 512, 1024 channels)."""

    def __init__(self, in_ch: int, base: int = 64, layers: tuple[int, ...] = (2, 2, 2)) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(in_ch, base // 2, 3, 2),
                                  ConvBNAct(base // 2, base, 3, 2))
        stages, ch = [], base
        for i, n in enumerate(layers):
            out = base * 4 * 2 ** i
            stages.append(nn.Sequential(*[
                STDCModule(ch if j == 0 else out, out, 2 if j == 0 else 1) for j in range(n)]))
            ch = out
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats


class Head(nn.Sequential):
    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__(ConvBNAct(in_ch, mid_ch, 3), nn.Conv2d(mid_ch, out_ch, 1, bias=False))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=tuple(like.shape[-2:]), mode="nearest")


class STDCSeg(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm in the attention refinement gates
    def __init__(self, *, num_classes: int, in_channels: int, pad: str,
                 aux_heads: bool = True) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(1.0, 1.0, 1.0) if aux_heads else ())
        self.aux_kinds = ("seg", "seg", "boundary") if aux_heads else ()
        self.backbone = STDC1(in_channels)
        self.pool_conv = ConvBNAct(1024, 128, 1)
        self.arm32 = AttentionRefinement(1024, 128)
        self.arm16 = AttentionRefinement(512, 128)
        self.refine32 = ConvBNAct(128, 128, 3)
        self.refine16 = ConvBNAct(128, 128, 3)
        self.ffm = FeatureFusion(256 + 128, 256, attention="squeeze4")
        self.head = Head(256, 256, num_classes)
        self.aux_heads = nn.ModuleList(
            [Head(128, 64, num_classes), Head(128, 64, num_classes), Head(256, 64, 1)]
            if aux_heads else [])

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f8, f16, f32 = self.backbone(x)
        c32 = self.arm32(f32) + self.pool_conv(global_avg_pool(f32))
        c16 = self.refine32(_up(c32, f16))
        c8 = self.refine16(_up(self.arm16(f16) + c16, f8))
        main = self.head(self.ffm(f8, c8))
        aux = ([h(f) for h, f in zip(self.aux_heads, (c8, c16, f8))]
               if self.training else [])
        return main, aux


@register_model("stdc", summary="STDC1-Seg: short-term dense concatenate backbone, BiSeNet "
                "head, detail guidance", variants={"stdc1": {}})
def stdc(*, num_classes: int, in_channels: int = 3, pad: str = "pad",
         aux_heads: bool = True) -> STDCSeg:
    """STDC1-Seg. `aux_heads=False` builds neither the two auxiliary segmentation heads nor
    the detail head (all three are for training only)."""
    return STDCSeg(num_classes=num_classes, in_channels=in_channels, pad=pad,
                   aux_heads=bool(aux_heads))
