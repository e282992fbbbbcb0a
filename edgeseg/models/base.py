"""The contract every edgeseg model keeps.

* `model.train()`: `forward(x)` returns `TrainOutput(main, aux)`: main logits at the input
  resolution and the auxiliary outputs at their own (lower) stride s, in the order of
  `model.aux_weights` and `model.aux_kinds` (class logits, or one boundary channel),
  cropped to ceil(H/s) x ceil(W/s) so that they cover the input and not its padding;
  resizing them (or the labels) to match is the loss's job.
* `model.eval()`: `forward(x)` returns one tensor, N x num_classes x H x W logits at the input
  resolution. That is the form every exporter and runtime consumes.
* Input is float NCHW with `in_channels` channels. Sides that are not a multiple of
  `size_divisor` (32 for every model here) are zero-padded at the bottom/right and the logits
  cropped back (`pad="pad"`, the default), or refused with an error (`pad="error"`). After
  mean/std normalisation a zero pad is the mean colour, the least surprising border.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.core.errors import UsageError
from edgeseg.models.layers import resize

PAD_POLICIES = ("pad", "error")


class TrainOutput(NamedTuple):
    main: torch.Tensor
    aux: tuple[torch.Tensor, ...]


class SegmentationModel(nn.Module):
    """Base class: input checks, padding to the size divisor, and the train/eval outputs.

    Subclasses implement `_forward(x) -> (main_logits, aux_logits)`; they compute the
    auxiliary heads only when `self.training` is true, and may return main logits at any
    stride (they are resized to the input here).
    """

    size_divisor: int = 32
    #: Models with BatchNorm after a global pooling cannot train on batch 1 (one value per
    #: channel); they set this so the error is ours, not BatchNorm's.
    needs_batch_stats_on_pooled: bool = False
    #: None, or why this model cannot be exported with a dynamic height/width (a sentence
    #: after the class name): its graph would be right at the export size only.
    static_size_reason: str | None = None

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, pad: str = "pad",
        aux_weights: tuple[float, ...] = (),
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise UsageError(f"in_channels must be a positive integer, got {in_channels!r}")
        if pad not in PAD_POLICIES:
            raise UsageError(f"pad must be one of {PAD_POLICIES}, got {pad!r}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.pad = pad
        self.aux_weights = tuple(aux_weights)
        #: what each auxiliary output is, in the same order: "seg" (class logits) or
        #: "boundary" (one channel, trained against the labels' class boundaries)
        self.aux_kinds: tuple[str, ...] = ("seg",) * len(self.aux_weights)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor | TrainOutput:
        self.check_input(x)
        h, w = x.shape[-2:]
        d = self.size_divisor
        if self.pad == "pad":
            # Always pad (by zero when the size divides) so that traced graphs do not
            # depend on whether this particular example needed padding.
            x = F.pad(x, (0, (d - w % d) % d, 0, (d - h % d) % d))
        main, aux = self._forward(x)
        main = resize(main, x.shape[-2:])[..., :h, :w]
        if self.training:
            return TrainOutput(main, tuple(_crop_to_input(a, x.shape[-2:], (h, w)) for a in aux))
        return main
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError/TypeError that names what is wrong with `x` and how to fix it."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            hint = " (add a batch dimension: x.unsqueeze(0))" if x.dim() == 3 else ""
            raise UsageError(
                f"{name} expects a 4-D NCHW tensor, got {x.dim()}-D shape {tuple(x.shape)}{hint}"
            )
        if not x.is_floating_point():
            raise TypeError(
                f"{name} expects a floating-point tensor, got {x.dtype}; "
                "convert and normalise first (x.float(), then mean/std)"
            )
        c = x.shape[1]
        if c != self.in_channels:
            hint = ""
            if x.shape[-1] == self.in_channels:
                hint = " (this looks like NHWC: use x.permute(0, 3, 1, 2))"
            raise UsageError(
                f"{name} expects {self.in_channels} input channels (NCHW), got {c} in shape "
                f"{tuple(x.shape)}{hint}"
            )
        h, w = x.shape[2], x.shape[3]
        d = self.size_divisor
        if h < d or w < d:
            raise UsageError(f"{name} needs an input of at least {d}x{d}, got {h}x{w}")
        if self.pad == "error" and (h % d or w % d):
            up = (-(-h // d) * d, -(-w // d) * d)
            raise UsageError(
                f"{name} was built with pad='error' and needs sides that are multiples of {d}, "
                f"got {h}x{w}; resize to e.g. {up[0]}x{up[1]} or build with pad='pad'"
            )
        param = next(self.parameters(), None)
        if param is not None and x.dtype != param.dtype:
            raise TypeError(
                f"{name} has {param.dtype} weights but the input is {x.dtype}; convert one "
                f"to match (x.to({param.dtype}) or model.to({x.dtype}))"
            )
        if param is not None and x.device != param.device:
            raise UsageError(
                f"{name} is on {param.device} but the input is on {x.device}; move one "
                f"(x.to('{param.device}'))"
            )
        if self.training:
            # BatchNorm needs two values per channel: after global pooling that takes a
            # batch of 2; elsewhere the smallest (1/32) map times the batch must reach 2.
            n = x.shape[0]
            cells = n if self.needs_batch_stats_on_pooled else n * -(-h // d) * -(-w // d)
            if cells < 2:
                raise UsageError(
                    f"{name} cannot train on a batch of {n} at {h}x{w}: BatchNorm needs more "
                    "than one value per channel; use a batch of 2 or more (or a larger "
                    "input), or call model.eval() for inference"
                )


def _crop_to_input(aux: torch.Tensor, padded: torch.Size, orig: tuple) -> torch.Tensor:
    """Drop the part of a low-resolution map that only covers the bottom/right padding."""
    sh, sw = padded[0] // aux.shape[-2], padded[1] // aux.shape[-1]
    return aux[..., : -(-orig[0] // sh), : -(-orig[1] // sw)]
