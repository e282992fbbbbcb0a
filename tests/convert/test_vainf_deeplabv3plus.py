"""vainf-deeplabv3plus: their state-dict layouts (tests/convert/fixtures/vainf_*.json, key
names and shapes read from VainF/DeepLabV3Plus-Pytorch's model definitions) with random
tensors convert, load strictly, and carry their classes, preprocessing and published mIoU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgeseg import convert as conv
from edgeseg.checkpoint import model_from_checkpoint
from edgeseg.convert import vainf_deeplabv3plus as vainf
from edgeseg.core.errors import UsageError
from edgeseg.models import create_model
from edgeseg.models.backbones.mobilenetv2 import MobileNetV2
from edgeseg.models.backbones.resnet import atrous_schedule, resnet101
from tests.convert.fixture_states import fixture_state

FIXTURES = Path(__file__).parent / "fixtures"


def published_state(name: str, num_classes: int | None = None) -> dict[str, torch.Tensor]:
    state = fixture_state(f"vainf_{name}", section="state_dict", counter=1000)
    if num_classes is not None:  # the classifier of a checkpoint with another class count
        for key in [k for k in state if k.startswith("classifier.classifier.3.")]:
            state[key] = torch.randn(num_classes, *state[key].shape[1:])
    return state


@pytest.mark.parametrize("name, classes, options", [
    ("mobilenet_cityscapes", "cityscapes",
     {"backbone": "mobilenetv2", "backbone_padding": "block", "head_conv": "conv"}),
    ("resnet50_voc", "voc",
     {"backbone": "resnet50", "resnet_depth": 50, "dilate_first_block": False}),
    ("resnet101_voc", "voc", {"backbone": "resnet50", "resnet_depth": 101, "head_conv": "conv"}),
    ("mobilenet_separable_voc", "voc", {"head_conv": "separable-nobn", "decoder_convs": 1}),
    ("resnet50_separable_cityscapes", "cityscapes", {"head_conv": "separable-nobn"}),
])
def test_each_layout_converts_and_loads_strictly(name, classes, options):
    state = published_state(name)
    out = vainf.convert(state)
    conv.check(out, state, name)  # every tensor used, strict load
    assert out.classes.name == classes and not out.dropped
    assert out.options.items() >= options.items() and out.options["output_stride"] == 16
    assert "os16 (the default" in out.variant


def test_a_published_file_becomes_an_edgeseg_checkpoint(tmp_path):
    state = published_state("mobilenet_cityscapes")
    path = tmp_path / "best_deeplabv3plus_mobilenet_cityscapes_os16.pth"
    torch.save({"cur_itrs": 30000, "model_state": state, "best_score": 0.72,
                "optimizer_state": {"state": {}, "param_groups": []}}, path)
    out = conv.convert("vainf-deeplabv3plus", path, tmp_path / "c.pt", log=lambda m: None)
    model, classes, preprocess = model_from_checkpoint(out)
    assert classes.num_classes == 19 and tuple(preprocess.size) == (1024, 2048)
    assert preprocess.mean == pytest.approx((123.675, 116.28, 103.53))
    assert preprocess.std == pytest.approx((58.395, 57.12, 57.375))
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["metrics"]["val_miou"] == 0.721
    assert torch.equal(model.state_dict()["backbone.high.0.block.1.conv.weight"],
                       state["backbone.high_level_features.4.conv.1.0.weight"])


def test_decoder_input_channels_are_reordered_to_ours():
    state = published_state("mobilenet_separable_voc")
    out = vainf.convert(state).state_dict
    dw = state["classifier.classifier.0.body.0.weight"]  # [low 48 | ASPP 256] x 1 x 3 x 3
    pw = state["classifier.classifier.0.body.1.weight"]
    assert torch.equal(out["decoder.0.depthwise.weight"], torch.cat([dw[48:], dw[:48]]))
    assert torch.equal(out["decoder.0.pointwise.conv.weight"],
                       torch.cat([pw[:, 48:], pw[:, :48]], dim=1))


def test_output_stride_comes_from_the_hint():
    state = published_state("mobilenet_cityscapes")
    out = vainf.convert(state, output_stride=8)
    assert out.options["output_stride"] == 8 and "os8" in out.variant
    assert "output stride 16" in out.published["note"]
    conv.check(out, state, "os8")
    with pytest.raises(UsageError, match="output_stride must be 8 or 16, got 32"):
        vainf.convert(state, output_stride=32)
    with pytest.raises(UsageError, match="hints classes= and output_stride=, not crop"):
        conv.check_hints("vainf-deeplabv3plus", {"crop": 513})


def test_wrong_class_count_is_a_named_error():
    with pytest.raises(conv.ConversionError, match=r"10 outputs; expected 19 \(Cityscapes\) "
                                                   r"or 21 \(PASCAL VOC\)"):
        vainf.convert(published_state("mobilenet_cityscapes", num_classes=10))
    with pytest.raises(conv.ConversionError, match="--classes cityscapes was given.*21 outputs"):
        vainf.convert(published_state("resnet50_voc"), classes="cityscapes")
    assert vainf.convert(published_state("resnet50_voc", 19)).classes.name == "cityscapes"


def test_other_architectures_are_named_errors():
    bisenet = create_model("bisenetv2", num_classes=19).state_dict()
    with pytest.raises(conv.ConversionError, match="expected a DeepLabV3\\+ state dict with a "
                                                   "MobileNetV2.*found neither"):
        vainf.convert(bisenet)
    state = published_state("resnet50_voc")
    state = {k: v for k, v in state.items() if not k.startswith("backbone.layer3.5.")}
    with pytest.raises(conv.ConversionError, match="5 blocks in layer3"):
        vainf.convert(state)


def test_layout_options_keep_shapes_and_change_what_they_say():
    x = torch.randn(1, 3, 64, 96)
    for padding in ("conv", "block"):
        low, high = MobileNetV2(padding=padding).eval()(x)
        assert low.shape[-2:] == (16, 24) and high.shape[-2:] == (4, 6)
    s, d = atrous_schedule(8)
    m = resnet101(strides=s, dilations=d, dilate_first_block=False)
    rates = [[b.conv2.conv.dilation[0] for b in stage] for stage in (m.layer3, m.layer4)]
    assert rates == [[1] + [2] * 22, [2, 4, 4]]  # torchvision's replace_stride_with_dilation
    with pytest.raises(ValueError, match="backbone_padding='block'.*'conv'"):
        create_model("deeplabv3plus", num_classes=2, backbone="xception",
                     backbone_padding="block")
