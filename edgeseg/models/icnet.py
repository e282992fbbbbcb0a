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
`width=64` is the full-width ResNet-50 that mmsegmentation uses; `resnet_depth` 18 or 101
swaps the ResNet.

`layout="mmseg"` is the network mmsegmentation trains and publishes as ICNet (its ICNet
backbone, ICNeck and FCN heads), which differs from the released one in these places:
* the middle branch runs all of layer2 on the 1/2 input and a 1x1 conv-BN-ReLU projects it
  to 256 channels; the low branch starts from that output downsampled 2x;
* both 2x downsamplings are bilinear resizes by scale factor 0.5, i.e. exactly 2x2 average
  pooling (the sizes are odd here: see the next point);
* the stem's max-pool rounds its output size up (`ceil_mode`), so a 1024x2048 image gives a
  65x129 middle branch and a 32x64 low one;
* the first block of layer3 and layer4 runs at half the stage's rate (contract_dilation),
  and a ResNet-18's blocks dilate only their first 3x3 conv;
* pyramid pooling is PSPNet's: a 1x1 conv-BN-ReLU (512) per bin, concatenated with the
  features, fused by a 3x3 conv-BN-ReLU to 512, then a 1x1 conv-BN-ReLU to 256;
* the cascade fusion's two convs end in ReLU before the sum (and ReLU after it), and the
  cascade label guidance heads read the coarse conv's output through a 3x3 conv-BN-ReLU and a
  1x1 classifier (loss weights 0.4 and 0.4);
* the classifier is a 3x3 conv-BN-ReLU and a 1x1 conv on the fused 1/8 map (not 1/4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.backbones.resnet import resnet18, resnet50, resnet101
from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct, resize
from edgeseg.models.registry import check_choice, register_model

PYRAMID_BINS = (1, 2, 3, 6)
LAYOUTS = ("released", "mmseg")
# mmsegmentation's ICNet widths: psp_out_channels, out_channels[1:], its heads' channels
MMSEG_PYRAMID, MMSEG_BRANCH, MMSEG_HEAD = 512, 256, 128
_RESNETS = {18: resnet18, 50: resnet50, 101: resnet101}


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


class PyramidPoolingConcat(nn.Module):
    """PSPNet's pyramid pooling: per bin, average-pool, 1x1 conv-BN-ReLU and upsample back;
    concatenate [bins..., features] and fuse them with a conv-BN-ReLU (3x3, or
    `fuse_kernel`) to `ch` channels (each bin's conv has `branch_ch`, default `ch`)."""

    def __init__(self, in_ch: int, ch: int, bins: tuple[int, ...] = PYRAMID_BINS,
                 branch_ch: int | None = None, fuse_kernel: int = 3) -> None:
        super().__init__()
        self.bins = bins
        branch_ch = branch_ch or ch
        self.stages = nn.ModuleList(ConvBNAct(in_ch, branch_ch, 1) for _ in bins)
        self.bottleneck = ConvBNAct(in_ch + len(bins) * branch_ch, ch, fuse_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [resize(stage(adaptive_avg_pool_static(x, b)), x.shape[-2:])
                  for b, stage in zip(self.bins, self.stages)]
        return self.bottleneck(torch.cat([*pooled, x], 1))


class CascadeFeatureFusion(nn.Module):
    """Released: conv-BN on both inputs, sum, ReLU; the guidance head is a 1x1 classifier on
    the upsampled coarse input. `mmseg=True`: conv-BN-ReLU on both, and the guidance head (a
    3x3 conv-BN-ReLU and a 1x1 classifier) reads the coarse conv's output."""

    def __init__(self, coarse_ch: int, fine_ch: int, out_ch: int, num_classes: int,
                 mmseg: bool = False) -> None:
        super().__init__()
        self.coarse = ConvBNAct(coarse_ch, out_ch, 3, dilation=2, act=mmseg)
        self.fine = ConvBNAct(fine_ch, out_ch, 1, act=mmseg)
        self.relu = nn.ReLU(inplace=True)
        self.mmseg = mmseg
        self.aux_head = (  # cascade label guidance
            nn.Sequential(ConvBNAct(out_ch, MMSEG_HEAD, 3), nn.Conv2d(MMSEG_HEAD, num_classes, 1))
            if mmseg else nn.Conv2d(coarse_ch, num_classes, 1))

    def forward(
        self, coarse: torch.Tensor, fine: torch.Tensor, with_aux: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        up = resize(coarse, fine.shape[-2:])
        low = self.coarse(up)
        out = self.relu(low + self.fine(fine))
        return out, (self.aux_head(low if self.mmseg else up) if with_aux else None)


#: why a model with this pyramid pooling refuses a dynamic-size export (models/base.py)
STATIC_POOLING = ("computes its pyramid pooling windows from the input size at export "
                  "(adaptive_avg_pool_static), so a graph exported at one size is wrong at "
                  "another, or fails to run")


class ICNet(SegmentationModel):
    static_size_reason = STATIC_POOLING

    def __init__(self, *, num_classes: int, width: int, in_channels: int, pad: str,
                 resnet_depth: int = 50, layout: str = "released") -> None:
        mmseg = layout == "mmseg"
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad,
                         aux_weights=(0.4, 0.4) if mmseg else (0.16, 0.4))
        self.layout = layout
        self.needs_batch_stats_on_pooled = mmseg  # BatchNorm after each pyramid bin's pooling
        self.backbone = _RESNETS[resnet_depth](
            in_channels=in_channels, base_width=width, strides=(1, 2, 1, 1),
            dilations=(1, 1, 2, 4), deep_stem=True, dilate_first_block=not mmseg,
            ceil_pool=mmseg, basic_dilate_conv2=not mmseg)
        c3, c5 = self.backbone.out_channels[1], self.backbone.out_channels[3]
        self.sub1 = nn.Sequential(
            ConvBNAct(in_channels, 32, 3, 2), ConvBNAct(32, 32, 3, 2), ConvBNAct(32, 64, 3, 2)
        )
        if mmseg:
            self.ppm: nn.Module = PyramidPoolingConcat(c5, MMSEG_PYRAMID)
            self.reduce2: nn.Module = ConvBNAct(c3, MMSEG_BRANCH, 1)
            self.reduce4 = ConvBNAct(MMSEG_PYRAMID, MMSEG_BRANCH, 1)
            middle, low = MMSEG_BRANCH, MMSEG_BRANCH
            self.head_conv: nn.Module = ConvBNAct(128, MMSEG_HEAD, 3)
        else:
            self.ppm = PyramidPoolingSum()
            self.reduce2 = nn.Identity()
            self.reduce4 = ConvBNAct(c5, c5 // 4, 1)
            middle, low = c3, c5 // 4
            self.head_conv = nn.Identity()
        self.cff24 = CascadeFeatureFusion(low, middle, 128, num_classes, mmseg)
        self.cff12 = CascadeFeatureFusion(128, 64, 128, num_classes, mmseg)
        self.classifier = nn.Conv2d(MMSEG_HEAD if mmseg else 128, num_classes, 1)

    def _branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The middle (1/16) and low (1/32, before pyramid pooling) branches."""
        bb = self.backbone
        h, w = x.shape[-2:]
        if self.layout == "mmseg":
            # theirs: bilinear resizes by scale factor 0.5 (half-pixel centres), which read
            # pixels 2i and 2i+1 with equal weights: 2x2 average pooling, exactly
            f2 = bb.layer2(bb.layer1(bb.stem(F.avg_pool2d(x, 2))))
            return self.reduce2(f2), bb.layer4(bb.layer3(F.avg_pool2d(f2, 2)))
        # Middle branch: 1/2 input through stem, layer1, layer2's strided block -> 1/16.
        f2 = bb.layer2[0](bb.layer1(bb.stem(resize(x, (h // 2, w // 2)))))
        # Low branch: downsample those features once more (1/32) and run the rest, dilated.
        f4 = resize(f2, (h // 32, w // 32))
        return f2, bb.layer4(bb.layer3(bb.layer2[1:](f4)))

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, w = x.shape[-2:]
        f2, f4 = self._branches(x)
        f4 = self.reduce4(self.ppm(f4))
        f24, aux4 = self.cff24(f4, f2, self.training)
        f124, aux24 = self.cff12(f24, self.sub1(x), self.training)
        if self.layout == "mmseg":
            main = self.classifier(self.head_conv(f124))
        else:
            main = self.classifier(resize(f124, (h // 4, w // 4)))
        return main, ([aux4, aux24] if self.training else [])


@register_model(
    "icnet",
    summary="ICNet: 3-resolution cascade, pyramid pooling on a ResNet-50, cascade fusion",
    variants={"resnet50-half": {"width": 32}},
)
def icnet(
    *, num_classes: int, width: int = 32, in_channels: int = 3, pad: str = "pad",
    resnet_depth: int = 50, layout: str = "released",
) -> ICNet:
    """ICNet; `width` 32 (default: the paper's half-width ResNet) or 64 (full width);
    `resnet_depth` 50 (default), 18 or 101; `layout` "released" (default: hszhao/ICNet's
    network) or "mmseg" (mmsegmentation's ICNet, whose published weights `edgeseg convert`
    reads; see the module docstring for what differs)."""
    check_choice("icnet", "width", width, (32, 64))
    check_choice("icnet", "resnet_depth", resnet_depth, tuple(_RESNETS))
    check_choice("icnet", "layout", layout, LAYOUTS)
    return ICNet(num_classes=num_classes, width=width, in_channels=in_channels, pad=pad,
                 resnet_depth=resnet_depth, layout=layout)
