"""The deploy form of a model: one input, one output, ready for an exporter.

`DeployModel` wraps a trained SegmentationModel in eval mode, with BatchNorm folded into the
preceding convolutions, and chooses what the graph returns:

* `logits`: N x C x H x W float scores at the input resolution;
* `probs`: softmax over classes of the same;
* `labels`: the argmax in the graph, N x H x W, uint8 for up to 255 classes (int32 above);
  `labels_lowres` takes the argmax at the network's own output resolution and upsamples
  the label map by nearest neighbour: TensorRT runs ArgMax as a TopK that is slow on large
  maps, and this moves it to a map 16-64x smaller. It is not free: near class borders the
  labels differ from full-resolution argmax, and that difference is measured, not hidden.

With `fuse_preprocess`, the graph takes N x H x W x 3 uint8 frames in `frame_color` order
(RGB or BGR) and converts, reorders to the network's `net_color` when they differ,
normalises and transposes inside: an app hands its frame buffer over without a conversion
loop. The uint8 tensor is cast to float first, so no uint8 op sits inside the graph (TensorRT
accepts UINT8 only at the graph boundary).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.core.errors import UsageError
from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct

OUTPUT_KINDS = ("logits", "probs", "labels", "labels_lowres")


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval) with every ConvBNAct's BatchNorm folded into its conv."""
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, ConvBNAct) and isinstance(m.bn, nn.BatchNorm2d):
            conv, bn = m.conv, m.bn
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            bias = bn.bias.detach() - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias.detach() * scale
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                              conv.stride, conv.padding, conv.dilation, conv.groups, bias=True)
            fused.weight.data.copy_(conv.weight.detach() * scale.view(-1, 1, 1, 1))
            fused.bias.data.copy_(bias)
            m.conv, m.bn = fused, nn.Identity()
    return model


def label_dtype(num_classes: int) -> torch.dtype:
    return torch.uint8 if num_classes <= 255 else torch.int32


class DeployModel(nn.Module):
    def __init__(
        self,
        model: SegmentationModel,
        *,
        output: str = "logits",
        fuse_preprocess: bool = False,
        mean: tuple[float, float, float] = (123.675, 116.28, 103.53),
        std: tuple[float, float, float] = (58.395, 57.12, 57.375),
        net_color: str = "RGB",
        frame_color: str | None = None,
        fold_bn: bool = True,
    ) -> None:
        super().__init__()
        if output not in OUTPUT_KINDS:
            raise UsageError(f"unknown output kind {output!r}; choose one of "
                             f"{', '.join(OUTPUT_KINDS)}")
        frame_color = frame_color or net_color
        for c in (net_color, frame_color):
            if c not in ("RGB", "BGR"):
                raise UsageError(f"color must be RGB or BGR, got {c!r}")
        self.net = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
        self.output = output
        self.num_classes = model.num_classes
        self.fuse_preprocess = fuse_preprocess
        self.swap_channels = frame_color != net_color
        # Normalisation happens in the network's channel order; mean/std are given in RGB.
        order = [0, 1, 2] if net_color == "RGB" else [2, 1, 0]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[order].view(
            1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(std, dtype=torch.float32)[order].view(
            1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fuse_preprocess:
            # uint8 NHWC frame -> float (first: no uint8 op inside) -> NCHW -> network order
            x = x.float().permute(0, 3, 1, 2)
            if self.swap_channels:
                x = x.flip(1)
            x = (x - self.mean) * self.inv_std
        if self.output == "labels_lowres":
            return self._labels_lowres(x)
        logits = self.net(x)
        if self.output == "logits":
            return logits
        if self.output == "probs":
            return logits.softmax(1)
        return logits.argmax(1).to(label_dtype(self.num_classes))

    def _labels_lowres(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        h, w = x.shape[-2:]
        d = net.size_divisor
        if net.pad == "pad":
            x = F.pad(x, (0, (d - w % d) % d, 0, (d - h % d) % d))
        main, _ = net._forward(x)
        # Class ids as float are exact (far below 2^24) through a nearest Resize.
        labels = main.argmax(1, keepdim=True).float()
        if labels.shape[-2:] != x.shape[-2:]:
            labels = F.interpolate(labels, size=x.shape[-2:], mode="nearest")
        return labels[:, 0, :h, :w].to(label_dtype(self.num_classes))
