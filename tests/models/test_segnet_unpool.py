"""SegNet's scatter-free unpooling equals PyTorch's MaxUnpool2d."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeseg.models.segnet import unpool2x


def test_equals_max_unpool_on_random_input():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 12, 18)
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(unpool2x(pooled, idx), F.max_unpool2d(pooled, idx, 2, 2))


def test_equals_max_unpool_with_ties():
    # Constant windows: every position ties; the index (PyTorch's first maximum) decides.
    x = torch.zeros(1, 2, 8, 8)
    x[..., 4:, 4:] = 3.0
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    out = unpool2x(pooled, idx)
    assert torch.equal(out, F.max_unpool2d(pooled, idx, 2, 2))
    assert int((out != 0).sum()) == 2 * 4  # one kept value per 3.0-window, 2 channels


def test_gradient_matches_max_unpool():
    torch.manual_seed(1)
    x = torch.randn(1, 3, 6, 10)
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    a = pooled.clone().requires_grad_()
    b = pooled.clone().requires_grad_()
    w = torch.randn(1, 3, 6, 10)
    (unpool2x(a, idx) * w).sum().backward()
    (F.max_unpool2d(b, idx, 2, 2) * w).sum().backward()
    assert torch.equal(a.grad, b.grad)
