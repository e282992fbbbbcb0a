"""SegNet's index-free unpooling equals PyTorch's MaxUnpool2d, ties included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgeseg.models.segnet import unpool2x


def reference(before: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
    pooled, idx = F.max_pool2d(before, 2, 2, return_indices=True)
    return F.max_unpool2d(pooled if values is None else values, idx, 2, 2)


def test_equals_max_unpool_on_random_input():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 12, 18)
    assert torch.equal(unpool2x(F.max_pool2d(x, 2, 2), x), reference(x))


def test_equals_max_unpool_for_other_values():
    """SegNet's decoder unpools features other than the pooled ones with the encoder's mask."""
    torch.manual_seed(1)
    x = torch.randn(1, 3, 8, 8)
    v = torch.randn(1, 3, 4, 4)
    assert torch.equal(unpool2x(v, x), reference(x, v))


@pytest.mark.parametrize("pattern", [
    [[1, 1], [1, 1]], [[0, 1], [1, 0]], [[0, 0], [1, 1]], [[0, 0], [0, 1]], [[2, 1], [2, 2]],
])
def test_ties_keep_the_first_maximum_like_max_pool(pattern):
    x = torch.tensor(pattern, dtype=torch.float32).repeat(1, 2, 3, 3)  # 1x2x6x6, tied windows
    out = unpool2x(F.max_pool2d(x, 2, 2), x)
    assert torch.equal(out, reference(x))
    assert int((out != 0).sum()) <= 2 * 9  # at most one value kept per window


def test_quantised_input_with_many_ties():
    torch.manual_seed(2)
    x = torch.randint(0, 3, (2, 4, 16, 16)).float()
    v = torch.randn(2, 4, 8, 8)
    assert torch.equal(unpool2x(v, x), reference(x, v))


def test_gradient_matches_max_unpool():
    torch.manual_seed(3)
    x = torch.randn(1, 3, 6, 10)
    a = torch.randn(1, 3, 3, 5, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    w = torch.randn(1, 3, 6, 10)
    (unpool2x(a, x) * w).sum().backward()
    (reference(x, b) * w).sum().backward()
    assert torch.equal(a.grad, b.grad)
