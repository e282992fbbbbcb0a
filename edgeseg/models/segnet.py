"""SegNet (Badrinarayanan et al., TPAMI 2017): VGG16-BN encoder, mirrored decoder.

The encoder is VGG16's 13 conv layers with BatchNorm; each 2x2 max-pool keeps its argmax
indices, and the decoder's max-unpooling puts every value back where its maximum came from
(zeros elsewhere) before the convs densify the map. Unpooling is written without a scatter
(`unpool2x`), equal to `F.max_unpool2d` and deterministic; the sides are always even here
because inputs are padded to multiples of 32. No fully connected layers, no learnt
upsampling. The decoder mirrors the encoder; its last conv outputs the class scores.

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
        indices = []
        for stage in self.encoder:
            x, idx = F.max_pool2d(stage(x), 2, 2, return_indices=True)
            indices.append(idx)
        for stage, idx in zip(self.decoder, reversed(indices)):
            x = stage(unpool2x(x, idx))
        return x, []


def unpool2x(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """`F.max_unpool2d(x, indices, 2, 2)` for 2x2/2 pooling of an even-sized map, without
    a scatter: every value is copied to its 2x2 window (nearest upsampling) and kept only at
    the position its index names. Equal to max_unpool2d (ties included: the index picks one
    position), deterministic, and made of ops every exporter handles."""
    h, w = x.shape[-2:]
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    where = indices.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    grid = torch.arange(4 * h * w, device=x.device).view(1, 1, 2 * h, 2 * w)
    return torch.where(where == grid, up, torch.zeros((), dtype=x.dtype, device=x.device))


@register_model(
    "segnet",
    summary="SegNet: VGG16-BN encoder, max-pool indices reused by max-unpooling in the decoder",
    variants={"vgg16bn": {}},
)
def segnet(*, num_classes: int, in_channels: int = 3, pad: str = "pad") -> SegNet:
    """SegNet with a VGG16-BN encoder (29.4 M parameters for 11 classes)."""
    return SegNet(num_classes=num_classes, in_channels=in_channels, pad=pad)
