"""Parameters and multiply-accumulates of a model at a given input size.

MACs come from `torch.utils.flop_counter.FlopCounterMode` (PyTorch's own counter, kept in
step with its operators): it counts convolutions and matrix products only, as fvcore, thop
and mmcv do; it reports FLOPs = 2 x MACs, which we halve. Models are profiled on the meta
device, so no weights are allocated and no arithmetic is done.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

COUNTER = "torch.utils.flop_counter.FlopCounterMode (conv + matmul; MACs = FLOPs / 2)"


@dataclass(frozen=True)
class Complexity:
    params: int  # parameters used by the deploy (eval) forward
    params_train: int  # all parameters, auxiliary heads included
    macs: int  # multiply-accumulates of one eval forward at `size`
    size: tuple[int, int]

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gflops(self) -> float:
        return 2 * self.macs / 1e9


def measure(model: nn.Module, size: tuple[int, int], in_channels: int = 3) -> Complexity:
    """Count the eval forward of `model` (on any device, meta included) at batch 1."""
    used: set[int] = set()

    def mark(module: nn.Module, args, out) -> None:
        used.update(id(p) for p in module.parameters(recurse=False))

    was_training = model.training
    model.eval()
    hooks = [m.register_forward_hook(mark) for m in model.modules()]
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, *size, device=device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    params = list(model.parameters())
    return Complexity(
        params=sum(p.numel() for p in params if id(p) in used),
        params_train=sum(p.numel() for p in params),
        macs=counter.get_total_flops() // 2,
        size=tuple(size),
    )
