"""coincheung-bisenet: CoinCheung/BiSeNet's BiSeNetV1/V2 checkpoints (Cityscapes, COCO-Stuff).

The fixtures list the tensor names and shapes of their models' state dicts (generated once
from their lib/models at commit 6b4b67a, in training mode as the released files were saved);
random tensors of those shapes stand in for the weights. That the converted model computes
their logits was measured against their code outside this repository (bit-identical); here
the pieces that decide it are checked on their own: the nearest-neighbour upsampling of the
V1 context path and the V2 aggregation, and the V1 fusion attention's form.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from edgeseg import convert as conv
from edgeseg.checkpoint import model_from_checkpoint, read_checkpoint
from edgeseg.cli.main import main
from edgeseg.convert import coincheung_bisenet as cc
from edgeseg.models import create_model
from tests.convert.fixture_states import fixture_state

FIXTURES = Path(__file__).parent / "fixtures"
KINDS = ("bisenetv1_city", "bisenetv1_coco", "bisenetv2_city", "bisenetv2_coco")
SAMPLE_RENAMES = (
    ("cp.arm32.bn_atten.running_var", "context.arm32.attention.bn.running_var"),
    ("ffm.conv.weight", "ffm.attention.conv.weight"),
    ("conv_out16.conv_out.bias", "aux8.1.bias"),  # their 1/8 aux head is our aux8
    ("segment.S5_4.0.shortcut.2.weight", "semantic.s5.0.shortcut.1.conv.weight"),
    ("bga.right2.2.weight", "bga.semantic_keep.1.weight"),
    ("head.conv_out.1.bias", "head.2.bias"),
)


def published(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    return fixture_state(f"coincheung_{kind}", seed)


@pytest.mark.parametrize("kind", KINDS)
def test_each_released_layout_converts_and_loads_strictly(kind):
    state = published(kind)
    out = cc.convert(state)
    model = conv.check(out, state, kind)  # every tensor used or dropped; strict load
    arch, data = kind.split("_")
    assert out.model == arch
    assert out.classes.name == {"city": "cityscapes", "coco": "coco-stuff"}[data]
    assert out.classes.num_classes == {"city": 19, "coco": 171}[data]
    aux = {k for k in state if k.startswith(("aux2.", "aux3.", "aux4.", "aux5_4."))}
    assert set(out.dropped) == aux and out.used == set(state) - aux
    assert bool(aux) == (arch == "bisenetv2")
    for theirs, ours in SAMPLE_RENAMES:
        if theirs in state:
            assert torch.equal(model.state_dict()[ours], state[theirs])
    if data == "city":
        assert out.preprocess.size == (1024, 2048) and out.preprocess.color == "RGB"
        assert out.preprocess.mean == pytest.approx((0.3257 * 255, 0.3690 * 255, 0.3223 * 255))
        assert out.preprocess.std == pytest.approx((0.2112 * 255, 0.2148 * 255, 0.2115 * 255))
    else:
        assert out.preprocess.size == (640, 640) and out.preprocess.resize == "letterbox"
    assert out.published["val_miou"] == {"bisenetv1_city": 0.7544, "bisenetv2_city": 0.7495,
                                         "bisenetv1_coco": 0.3149,
                                         "bisenetv2_coco": 0.3049}[kind]


def test_the_command_writes_an_edgeseg_checkpoint(tmp_path):
    src = tmp_path / "model_final_v2_city.pth"
    state = published("bisenetv2_city")
    torch.save({f"module.{k}": v for k, v in state.items()}, src)  # as DDP saves them
    out = tmp_path / "model.pt"
    assert main(["convert", "--from", "coincheung-bisenet", str(src), "--out", str(out)]) == 0
    ckpt = read_checkpoint(out)
    assert ckpt["model"] == {"name": "bisenetv2", "num_classes": 19,
                             "options": {"bga_upsample": "nearest", "aux_heads": False}}
    assert ckpt["converted_from"]["variant"] == "BiSeNetV2, cityscapes 19 classes"
    model, classes, _ = model_from_checkpoint(out)
    assert classes.name == "cityscapes" and not model.aux_heads
    assert torch.equal(model.state_dict()["detail.7.bn.running_mean"],
                       state["detail.S3.2.bn.running_mean"])


def test_a_checkpoint_without_batchnorm_counters_converts():
    state = {k: v for k, v in published("bisenetv1_city").items()
             if not k.endswith("num_batches_tracked")}
    out = cc.convert(state)
    conv.check(out, state, "v1")


def test_an_unreleased_class_count_is_a_named_error():
    state = published("bisenetv2_city")
    state["head.conv_out.1.weight"] = torch.zeros(150, 1024, 1, 1)
    state["head.conv_out.1.bias"] = torch.zeros(150)
    with pytest.raises(conv.ConversionError,
                       match=r"has 150 output channels; expected 19 \(Cityscapes\) or 171"):
        cc.convert(state)
    with pytest.raises(conv.ConversionError, match="--classes voc was given.*19 outputs"):
        cc.convert(published("bisenetv1_city"), classes="voc")


def test_another_architecture_is_a_named_error():
    with pytest.raises(conv.ConversionError,
                       match="expected a CoinCheung/BiSeNet BiSeNetV1 .* are BiSeNetV2's"):
        cc.convert(published("bisenetv2_city"), model="bisenetv1")
    ours = create_model("bisenetv2", num_classes=19).state_dict()
    with pytest.raises(conv.ConversionError, match="not a CoinCheung/BiSeNet checkpoint: "
                       "expected the tensors of BiSeNetV1 .*cp.resnet.conv1.weight"):
        cc.convert(ours)


def test_a_missing_tensor_is_named_by_their_key():
    state = published("bisenetv1_city")
    del state["cp.resnet.layer3.0.downsample.1.running_var"]
    with pytest.raises(conv.ConversionError,
                       match="1 expected tensor.*cp.resnet.layer3.0.downsample.1.running_var"):
        cc.convert(state)


def test_nearest_options_upsample_as_nn_upsample_does():
    """Their nn.Upsample(scale_factor=2 or 4) copies each pixel into a 2x2 or 4x4 block."""
    x = torch.randn(1, 128, 4, 8)
    v1 = create_model("bisenetv1", num_classes=19, context_upsample="nearest").context
    v2 = create_model("bisenetv2", num_classes=19, bga_upsample="nearest").bga
    block2 = x.repeat_interleave(2, -2).repeat_interleave(2, -1)
    block4 = x.repeat_interleave(4, -2).repeat_interleave(4, -1)
    assert torch.equal(v1._up(x, (8, 16)), block2)
    assert torch.equal(v2._up(x, (16, 32)), block4)
    default = create_model("bisenetv2", num_classes=19).bga
    assert torch.equal(default._up(x, (16, 32)),
                       F.interpolate(x, size=(16, 32), mode="bilinear", align_corners=False))


def test_conv_bn_fusion_attention_is_one_conv_and_batchnorm():
    ffm = create_model("bisenetv1", num_classes=19, ffm_attention="conv-bn").ffm.eval()
    with torch.no_grad():
        for p in ffm.parameters():
            p.normal_(0, 0.1)
    sp, cp = torch.randn(1, 128, 8, 8), torch.randn(1, 128, 8, 8)
    with torch.no_grad():
        feat = ffm.blend(torch.cat([sp, cp], 1))
        bn = ffm.attention.bn
        att = torch.sigmoid(F.batch_norm(
            F.conv2d(feat.mean((2, 3), keepdim=True), ffm.attention.conv.weight),
            bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))
        assert torch.allclose(ffm(sp, cp), feat + feat * att, atol=1e-6)
