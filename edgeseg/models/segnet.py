"""SegNet (Badrinarayanan et al., TPAMI 2017): VGG16-BN encoder, mirrored decoder.

The encoder is VGG16's 13 conv layers with BatchNorm; each 2x2 max-pool remembers where its
maximum was, and the decoder's max-unpooling puts every value back there (zeros elsewhere)
before the convs densify the map. No fully connected layers, no learnt upsampling. The
decoder mirrors the encoder; its last conv outputs the class scores.

Unpooling is written without indices or a scatter (`unpool2x`): it rebuilds the argmax mask
from the pooling's input, equals `F.max_unpool2d` exactly (ties included), is deterministic,
and exports to operators every backend has. The sides are always even here because inputs
are padded to multiples of 32.

SegNet has no auxiliary heads: the training forward returns an empty aux tuple.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.models.base import SegmentationModel
from edgeseg.models.layers import ConvBNAct
from edgeseg.models.registry import register_model

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class SegNet(SegmentationModel):
    def __init__(self, *, num_classes: int, in_channels: int, pad: str) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, pad=pad)
        self.encoder = nn.ModuleList()
        ch = in_channels
        for widths in VGG16_STAGES:
            convs = []
            for w in widths:
                convs.append(ConvBNAct(ch, w, 3))
                ch = w
            self.encoder.append(nn.Sequential(*convs))
        # Decoder stage i mirrors encoder stage i: same widths in reverse, ending at the
        # previous stage's width (the first stage ends at the class scores instead).
        self.decoder = nn.ModuleList()
        for i in reversed(range(len(VGG16_STAGES))):
            widths = VGG16_STAGES[i]
            out_last = VGG16_STAGES[i - 1][-1] if i > 0 else None
            convs = []
            for j in range(len(widths)):
                last = j == len(widths) - 1
                if last and out_last is None:
                    convs.append(nn.Conv2d(widths[j], num_classes, 3, padding=1))
                else:
                    convs.append(ConvBNAct(widths[j], out_last if last else widths[j], 3))
            self.decoder.append(nn.Sequential(*convs))

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, 2)
        for stage, before in zip(self.decoder, reversed(skips)):
            x = stage(unpool2x(x, before))
        return x, []


def unpool2x(pooled: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    """Max-unpooling of a 2x2/2 max-pool without indices or scatter.

    `before` is the pooling's input. Each pooled value is copied to its 2x2 window (nearest
    upsampling) and kept at the position of the window's maximum: the positions where
    `before` equals the upsampled window maximum. When several positions tie for the
    maximum, only the first in row-major order keeps it, which is the position PyTorch's
    max_pool2d records as the index; so this equals
    `F.max_unpool2d(*F.max_pool2d(before, 2, 2, return_indices=True), 2, 2)` exactly, ties
    included (tested). For `pooled` other than the pooling's own output (SegNet's decoder)
    the same mask is applied: that is what max-unpooling with indices does. In ONNX this is
    MaxPool (one output), Resize/Expand, Equal, SpaceToDepth-style reshapes and Where: no
    MaxUnpool, no indices output, which TensorRT and OpenVINO lack.
    """
    n, c, h2, w2 = before.shape
    h, w = h2 // 2, w2 // 2
    window_max = F.max_pool2d(before, 2, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    is_max = before == window_max
    # Windows as 4 ordered slots (row-major: a b / c d); keep only the first maximum.
    slots = is_max.view(n, c, h, 2, w, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, 4)
    a, b, cc, d = slots.unbind(-1)
    first = torch.stack([a, b & ~a, cc & ~(a | b), d & ~(a | b | cc)], dim=-1)
    keep = first.view(n, c, h, w, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h2, w2)
    up = pooled.repeat_interleave(2, 2).repeat_interleave(2, 3)
    return torch.where(keep, up, torch.zeros((), dtype=up.dtype, device=up.device))


@register_model(
    "segnet",
    summary="SegNet: VGG16-BN encoder, max-pool indices reused by max-unpooling in the decoder",
    variants={"vgg16bn": {}},
)
def segnet(*, num_classes: int, in_channels: int = 3, pad: str = "pad") -> SegNet:
    """SegNet with a VGG16-BN encoder (29.4 M parameters for 11 classes)."""
    return SegNet(num_classes=num_classes, in_channels=in_channels, pad=pad)
