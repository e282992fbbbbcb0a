"""Backbone strides and atrous schedules (output stride is what DeepLab and ICNet rely on)."""

from __future__ import annotations

import pytest
import torch

from edgeseg.models.backbones.mobilenetv2 import MobileNetV2
from edgeseg.models.backbones.resnet import atrous_schedule, resnet18, resnet50
from edgeseg.models.backbones.xception import AlignedXception
from edgeseg.models.backbones.xception39 import Xception39

X = torch.zeros(1, 3, 128, 256)


def strides(feats):
    return [X.shape[-1] // f.shape[-1] for f in feats]


@pytest.mark.parametrize("os_, expected", [(32, [4, 8, 16, 32]), (16, [4, 8, 16, 16]),
                                           (8, [4, 8, 8, 8])])
def test_resnet_atrous_schedule(os_, expected):
    s, d = atrous_schedule(os_)
    with torch.inference_mode():
        feats = resnet50(strides=s, dilations=d).eval()(X)
    assert strides(feats) == expected
    assert [f.shape[1] for f in feats] == [256, 512, 1024, 2048]


def test_resnet18_and_half_width_resnet50_channels():
    assert resnet18().out_channels == [64, 128, 256, 512]
    assert resnet50(base_width=32, deep_stem=True).out_channels == [128, 256, 512, 1024]


@pytest.mark.parametrize("os_", [8, 16])
def test_mobilenetv2_output_stride(os_):
    m = MobileNetV2(output_stride=os_).eval()
    with torch.inference_mode():
        low, high = m(X)
    assert strides([low, high]) == [4, os_]
    assert (low.shape[1], high.shape[1]) == tuple(m.out_channels) == (24, 320)


@pytest.mark.parametrize("os_", [8, 16])
def test_aligned_xception_output_stride(os_):
    m = AlignedXception(output_stride=os_, middle_blocks=1).eval()
    with torch.inference_mode():
        low, high = m(X)
    assert strides([low, high]) == [4, os_]
    assert (low.shape[1], high.shape[1]) == tuple(m.out_channels) == (256, 2048)


def test_xception39_stages():
    m = Xception39().eval()
    with torch.inference_mode():
        feats = m(X)
    assert strides(feats) == [8, 16, 32]
    assert [f.shape[1] for f in feats] == m.out_channels == [64, 128, 256]


def test_invalid_output_stride():
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        AlignedXception(output_stride=32)
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        MobileNetV2(output_stride=4)


def conv_dilations(stage):
    return [m.dilation[0] for m in stage.modules()
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("os_, rates", [(16, (1, 2)), (8, (2, 4))])
def test_resnet_dilates_every_block_of_a_stage(os_, rates):
    """The released PSPNet/ICNet and TF DeepLab use the stage's rate in every block,
    the first one included."""
    s, d = atrous_schedule(os_)
    m = resnet50(strides=s, dilations=d)
    assert set(conv_dilations(m.layer3)) == {rates[0]}
    assert set(conv_dilations(m.layer4)) == {rates[1]}


def test_icnet_dilations_match_the_released_model():
    from edgeseg.models import create_model

    bb = create_model("icnet", num_classes=2).backbone
    assert set(conv_dilations(bb.layer3)) == {2} and set(conv_dilations(bb.layer4)) == {4}
    assert set(conv_dilations(bb.layer2)) == {1}


def test_aligned_xception_preactivation():
    """Entry/middle blocks: ReLU before each separable conv, no activation inside or before
    the residual add (so a block can subtract from its input)."""
    from edgeseg.models.backbones.xception import XceptionBlock

    blk = XceptionBlock(8, (8, 8, 8))
    kinds = [type(m).__name__ for m in blk.unit1.modules()]
    assert kinds.count("ReLU") == 1 and type(blk.unit1[0]).__name__ == "ReLU"
    torch.manual_seed(0)
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        assert (blk.eval()(x) - x).min() < 0
