"""The deploy form: exact BatchNorm folding, output kinds, fused preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeseg.data.transforms import Preprocess
from edgeseg.models import create_model
from edgeseg.models.catalog import iter_variants
from edgeseg.models.deploy import DeployModel, fold_batchnorm
from edgeseg.models.layers import ConvBNAct


def trained_like(name, opts=None, classes=5):
    """A model whose BatchNorm statistics are not the identity (as after training)."""
    torch.manual_seed(0)
    m = create_model(name, num_classes=classes, **(opts or {}))
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


@pytest.mark.parametrize("name, variant, opts", list(iter_variants()),
                         ids=[f"{n}[{v}]" for n, v, _ in iter_variants()])
def test_batchnorm_folding_is_exact(name, variant, opts):
    m = trained_like(name, opts)
    folded = fold_batchnorm(m)
    assert not any(isinstance(x, ConvBNAct) and isinstance(x.bn, torch.nn.BatchNorm2d)
                   for x in folded.modules())
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), m(x), rtol=1e-4, atol=1e-4)


def test_output_kinds():
    m = trained_like("bisenetv2")
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        logits = m(x)
        probs = DeployModel(m, output="probs")(x)
        labels = DeployModel(m, output="labels")(x)
        low = DeployModel(m, output="labels_lowres")(x)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 64, 96))
    assert labels.dtype == torch.uint8 and labels.shape == (2, 64, 96)
    assert (labels.long() == logits.argmax(1)).float().mean() > 0.999
    assert low.dtype == torch.uint8 and low.shape == (2, 64, 96)
    # The shortcut equals "upsample the low-resolution argmax by nearest": check that
    # exactly, then that it is an approximation of the full-resolution argmax.
    with torch.inference_mode():
        net = fold_batchnorm(m)
        coarse = net._forward(x)[0].argmax(1, keepdim=True).float()
        expected = torch.nn.functional.interpolate(coarse, size=(64, 96), mode="nearest")
    assert torch.equal(low, expected[:, 0].to(torch.uint8))
    assert (low == labels).float().mean() > 0.5


def test_many_classes_give_int32_labels():
    m = trained_like("icnet", classes=300)
    with torch.inference_mode():
        assert DeployModel(m, output="labels")(torch.randn(1, 3, 64, 64)).dtype == torch.int32
        assert DeployModel(m, output="labels_lowres")(torch.randn(1, 3, 64, 64)).max() < 300


@pytest.mark.parametrize("net_color", ["RGB", "BGR"])
@pytest.mark.parametrize("frame_color", ["RGB", "BGR"])
def test_fused_preprocess_matches_the_shared_definition(net_color, frame_color):
    """Whatever order the app's frames come in, the network sees what Preprocess gives."""
    m = trained_like("icnet")
    img = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)  # RGB
    pre = Preprocess((64, 96), color=net_color)
    frame = img[..., ::-1].copy() if frame_color == "BGR" else img
    with torch.inference_mode():
        fused = DeployModel(m, fuse_preprocess=True, net_color=net_color,
                            frame_color=frame_color)(torch.from_numpy(frame)[None])
        plain = DeployModel(m, net_color=net_color)(torch.from_numpy(pre(img))[None])
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)


def test_unknown_output_kind():
    with pytest.raises(ValueError, match=r"unknown output kind 'mask'.*logits, probs, labels"):
        DeployModel(trained_like("icnet"), output="mask")
