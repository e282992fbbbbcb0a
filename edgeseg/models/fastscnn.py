"""Fast-SCNN (Poudel et al., BMVC 2019): a fast segmentation network for high-resolution
inputs, about 1.1 M parameters.

* Learning to downsample (1/8): a 3x3 conv (32 ch) and two depthwise separable convs (48,
  64 ch), each with stride 2. Its output is also the skip connection.
* Global feature extractor (1/32): MobileNetV2 bottlenecks (expansion 6) of 64, 96 and 128
  channels, three of each, the first two groups strided, then pyramid pooling (bins 1, 2, 3,
  6) that concatenates the pooled maps with the input and fuses them to 128 channels.
* Feature fusion (1/8): the skip through a 1x1 conv; the global features upsampled 4x,
  through a depthwise 3x3 conv and a 1x1, both without activation; summed, ReLU. The
  paper's table gives that depthwise conv a dilation of 4; the public reimplementations
  (mmsegmentation's among them) use none, and so does the default here
  (`fusion_dilation=4` builds the table's).
* Classifier: two depthwise separable convs (128 ch) and a 1x1 conv to the classes, then
  bilinear upsampling to the input.

Pyramid pooling: a 1x1 conv of 32 channels per bin, concatenated with the 128-channel input
and fused by a 1x1 conv (1.13 M parameters in all with 19 classes, the paper's 1.11 M;
mmsegmentation's 3x3 fusion would add 0.26 M). Training adds auxiliary
heads on the learning-to-downsample output and on the global features (weight 0.4 each).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.backbones.mobilenetv2 import InvertedResidual
from edgeseg.models.base import SegmentationModel
from edgeseg.models.icnet import STATIC_POOLING, PyramidPoolingConcat
from edgeseg.models.layers import ConvBNAct, resize
from edgeseg.models.registry import check_choice, register_model


class DSConv(nn.Sequential):
    """Depthwise separable conv: depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(in_ch, in_ch, 3, stride, groups=in_ch)
        self.pointwise = ConvBNAct(in_ch, out_ch, 1)


class LearningToDownsample(nn.Sequential):
    def __init__(self, in_ch: int) -> None:
        super().__init__(ConvBNAct(in_ch, 32, 3, 2), DSConv(32, 48, 2), DSConv(48, 64, 2))


def _bottlenecks(in_ch: int, out_ch: int, n: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*[InvertedResidual(in_ch if i == 0 else out_ch, out_ch,
                                            stride if i == 0 else 1, 1, 6) for i in range(n)])


class GlobalFeatureExtractor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.Sequential(_bottlenecks(64, 64, 3, 2), _bottlenecks(64, 96, 3, 2),
                                    _bottlenecks(96, 128, 3, 1))
        self.ppm = PyramidPoolingConcat(128, 128, (1, 2, 3, 6), branch_ch=32, fuse_kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ppm(self.stages(x))


class FeatureFusion(nn.Module):
    def __init__(self, high_ch: int = 64, low_ch: int = 128, out_ch: int = 128,
                 dilation: int = 1) -> None:
        super().__init__()
        self.low_dw = ConvBNAct(low_ch, low_ch, 3, dilation=dilation, groups=low_ch)
        self.low_proj = ConvBNAct(low_ch, out_ch, 1, act=False)
        self.high_proj = ConvBNAct(high_ch, out_ch, 1, act=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        low = self.low_proj(self.low_dw(resize(low, high.shape[-2:])))
        return self.relu(low + self.high_proj(high))


class AuxHead(nn.Sequential):
    def __init__(self, in_ch: int, num_classes: int) -> None:
        super().__init__(ConvBNAct(in_ch, 32, 3), nn.Dropout(0.1), nn.Conv2d(32, num_classes, 1))


class FastSCNN(SegmentationModel):
    needs_batch_stats_on_pooled = True  # BatchNorm after the 1x1 pyramid bin's pooling
    static_size_reason = STATIC_POOLING

    def __init__(self, *, num_classes: int, in_channels: int, pad: str,
                 aux_heads: bool = True, fusion_dilation: int = 1) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(0.4, 0.4) if aux_heads else ())
        self.downsample = LearningToDownsample(in_channels)
        self.global_features = GlobalFeatureExtractor()
        self.fusion = FeatureFusion(dilation=fusion_dilation)
        self.classifier = nn.Sequential(DSConv(128, 128), DSConv(128, 128), nn.Dropout(0.1),
                                        nn.Conv2d(128, num_classes, 1))
        self.aux_heads = nn.ModuleList(
            [AuxHead(64, num_classes), AuxHead(128, num_classes)] if aux_heads else [])

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        high = self.downsample(x)
        low = self.global_features(high)
        main = self.classifier(self.fusion(high, low))
        aux = [h(f) for h, f in zip(self.aux_heads, (high, low))] if self.training else []
        return main, aux


@register_model("fastscnn", summary="Fast-SCNN: learning to downsample, global features, "
                "two-branch fusion (1.1 M parameters)", variants={"default": {}})
def fastscnn(*, num_classes: int, in_channels: int = 3, pad: str = "pad",
             aux_heads: bool = True, fusion_dilation: int = 1) -> FastSCNN:
    """Fast-SCNN (1/8 skip, 1/32 global features with pyramid pooling). `aux_heads=False`
    builds no auxiliary heads (inference, fine-tuning without them); `fusion_dilation`: the
    feature fusion's depthwise conv (1, or 4 as the paper's table prints it)."""
    check_choice("fastscnn", "fusion_dilation", fusion_dilation, (1, 4))
    return FastSCNN(num_classes=num_classes, in_channels=in_channels, pad=pad,
                    aux_heads=bool(aux_heads), fusion_dilation=fusion_dilation)
