"""ICNet (Zhao et al., ECCV 2018): image cascade network for real-time high-resolution input.

Three branches see three resolutions of the same image:
* low (1/4 input): a ResNet-50 (deep stem) whose stem, layer1 and the first (strided) block
  of layer2 run on the 1/2 input, shared with the middle branch; that 1/16 output is
  downsampled again and the rest of layer2 and the dilated layer3/layer4 run at 1/32 of the
  original, followed by PSP-style pyramid pooling (bins 1, 2, 3, 6, summed onto the features
  as in the released ICNet) and a 1x1 reduction;
* middle (1/2 input): the shared layers' 1/16 output;
* high (full input): three light stride-2 convs to 1/8.
Cascade feature fusion (CFF) merges a coarse and a fine branch: upsample the coarse one 2x,
dilated 3x3 conv; 1x1 conv on the fine one; sum and ReLU. Cascade label guidance trains the
upsampled coarse features of each CFF and the final 1/4 map against the labels
(weights 0.16 and 0.4 for the 1/16 and 1/8 auxiliary outputs, 1.0 for the main one, as in
the released ICNet's training definition).

The released ICNet halves ResNet-50's widths (`width=32`, the default: 6.7 M parameters);
`width=64` is the full-width ResNet-50 that mmsegmentation uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.backbones.resnet import resnet50
from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, resize
from edgeseg.models.registry import check_choice, register_model

PYRAMID_BINS = (1, 2, 3, 6)


def adaptive_windows(size: int, bins: int) -> list[tuple[int, int]]:
    """[start, end) of each output cell of adaptive average pooling (PyTorch's rule)."""
    return [((i * size) // bins, -(-((i + 1) * size) // bins)) for i in range(bins)]


def adaptive_avg_pool_static(x: torch.Tensor, bins: int) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, bins)` written with static operators.

    Where every window has the same size and stride (the size divides evenly) this is one
    AveragePool. Otherwise the windows differ, and the pooling is done separably: means over
    each row window, then over each column window (a mean of equal-length row means is the
    window mean), i.e. Slice/ReduceMean/Concat with constant bounds: exact, and free of the
    Gather chains that exporters emit for adaptive pooling. Needs a static size (no dynamic
    H/W export)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % bins == 0 and w % bins == 0:
        return F.avg_pool2d(x, (h // bins, w // bins))
    rows = torch.cat([x[:, :, a:b].mean(2, keepdim=True) for a, b in adaptive_windows(h, bins)], 2)
    return torch.cat([rows[..., a:b].mean(3, keepdim=True) for a, b in adaptive_windows(w, bins)],
                     3)


class PyramidPoolingSum(nn.Module):
    """Average-pool to each bin grid, upsample back and add to the input (no convs)."""

    def __init__(self, bins: tuple[int, ...] = PYRAMID_BINS) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for b in self.bins:
            out = out + resize(adaptive_avg_pool_static(x, b), x.shape[-2:])
        return out


class CascadeFeatureFusion(nn.Module):
    def __init__(self, coarse_ch: int, fine_ch: int, out_ch: int, num_classes: int) -> None:
        super().__init__()
        self.coarse = ConvBNAct(coarse_ch, out_ch, 3, dilation=2, act=False)
        self.fine = ConvBNAct(fine_ch, out_ch, 1, act=False)
        self.relu = nn.ReLU(inplace=True)
        self.aux_head = nn.Conv2d(coarse_ch, num_classes, 1)  # cascade label guidance

    def forward(
        self, coarse: torch.Tensor, fine: torch.Tensor, with_aux: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        up = resize(coarse, fine.shape[-2:])
        out = self.relu(self.coarse(up) + self.fine(fine))
        return out, (self.aux_head(up) if with_aux else None)


class ICNet(SegmentationModel):
    def __init__(self, *, num_classes: int, width: int, in_channels: int, pad: str) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(0.16, 0.4))
        self.backbone = resnet50(in_channels=in_channels, base_width=width,
                                 strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), deep_stem=True)
        c3, c5 = self.backbone.out_channels[1], self.backbone.out_channels[3]
        self.sub1 = nn.Sequential(
            ConvBNAct(in_channels, 32, 3, 2), ConvBNAct(32, 32, 3, 2), ConvBNAct(32, 64, 3, 2)
        )
        self.ppm = PyramidPoolingSum()
        self.reduce4 = ConvBNAct(c5, c5 // 4, 1)
        self.cff24 = CascadeFeatureFusion(c5 // 4, c3, 128, num_classes)
        self.cff12 = CascadeFeatureFusion(128, 64, 128, num_classes)
        self.classifier = nn.Conv2d(128, num_classes, 1)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, w = x.shape[-2:]
        bb = self.backbone
        # Middle branch: 1/2 input through stem, layer1, layer2's strided block -> 1/16.
        x2 = resize(x, (h // 2, w // 2))
        f2 = bb.layer2[0](bb.layer1(bb.stem(x2)))
        # Low branch: downsample those features once more (1/32) and run the rest, dilated.
        f4 = resize(f2, (h // 32, w // 32))
        f4 = self.reduce4(self.ppm(bb.layer4(bb.layer3(bb.layer2[1:](f4)))))
        f24, aux4 = self.cff24(f4, f2, self.training)
        f124, aux24 = self.cff12(f24, self.sub1(x), self.training)
        main = self.classifier(resize(f124, (h // 4, w // 4)))
        return main, ([aux4, aux24] if self.training else [])


@register_model(
    "icnet",
    summary="ICNet: 3-resolution cascade, pyramid pooling on a ResNet-50, cascade fusion",
    variants={"resnet50-half": {"width": 32}},
)
def icnet(
    *, num_classes: int, width: int = 32, in_channels: int = 3, pad: str = "pad"
) -> ICNet:
    """ICNet; `width` 32 (default: the paper's half-width ResNet-50) or 64 (full width)."""
    check_choice("icnet", "width", width, (32, 64))
    return ICNet(num_classes=num_classes, width=width, in_channels=in_channels, pad=pad)
