"""mmseg: open-mmlab/mmsegmentation's Cityscapes BiSeNetV2, DeepLabV3+ R-50/101-D8 and
BiSeNetV1 R-18-D32 checkpoints (ICNet: test_mmseg_icnet.py).

The fixtures list the tensor names and shapes of their models' state dicts, derived by hand
from their configs/_base_/models/*.py, backbones and heads (mmcv, which their modules need,
was not installed): random tensors of those shapes stand in for the weights. The pieces
that differ from our defaults (BiSeNetV2's biased pointwise convs; DeepLabV3+'s deep stem,
3x3 ASPP fusion and its branch order; BiSeNetV1's fusion attention) are checked on their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from edgeseg import convert as conv
from edgeseg.checkpoint import model_from_checkpoint, read_checkpoint
from edgeseg.cli.main import main
from edgeseg.convert import mmseg
from edgeseg.core.errors import UsageError
from edgeseg.models import create_model
from tests.convert.fixture_states import fixture_state

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_RENAMES = (
    ("backbone.detail.detail_branch.2.2.bn.running_mean", "detail.7.bn.running_mean"),
    ("backbone.semantic.stage4.0.shortcut.0.pointwise_conv.conv.weight",
     "semantic.s5.0.shortcut.1.conv.weight"),
    ("backbone.semantic.stage2.1.conv2.0.bn.weight", "semantic.s3.1.body.2.bn.weight"),
    ("backbone.semantic.stage4_CEBlock.gap.1.running_var", "semantic.ce.bn.running_var"),
    ("backbone.bga.semantic_dwconv.0.pointwise_conv.conv.bias", "bga.semantic_keep.1.bias"),
    ("backbone.bga.detail_down.0.conv.weight", "bga.detail_down.0.conv.weight"),
    ("decode_head.convs.0.bn.bias", "head.0.bn.bias"),
    ("decode_head.conv_seg.weight", "head.2.weight"),
)


DLV3P_RENAMES = (
    ("backbone.stem.3.weight", "backbone.stem.1.conv.weight"),
    ("backbone.stem.7.running_var", "backbone.stem.2.bn.running_var"),
    ("backbone.layer3.0.downsample.1.weight", "backbone.layer3.0.downsample.bn.weight"),
    ("backbone.layer4.2.bn2.bias", "backbone.layer4.2.conv2.bn.bias"),
    ("decode_head.image_pool.1.bn.running_mean", "aspp.image_pool.bn.running_mean"),
    ("decode_head.aspp_modules.0.conv.weight", "aspp.conv1x1.conv.weight"),
    ("decode_head.aspp_modules.3.pointwise_conv.bn.weight", "aspp.atrous.2.pointwise.bn.weight"),
    ("decode_head.bottleneck.bn.bias", "aspp.project.0.bn.bias"),
    ("decode_head.c1_bottleneck.conv.weight", "reduce_low.conv.weight"),
    ("decode_head.sep_bottleneck.1.depthwise_conv.conv.weight",
     "decoder.1.depthwise.conv.weight"),
    ("decode_head.conv_seg.bias", "classifier.bias"),
)


def published_state(name: str = "bisenetv2_cityscapes", seed: int = 0) -> dict[str, torch.Tensor]:
    return fixture_state(f"mmseg_{name}", seed)


def test_bisenetv2_converts_and_loads_strictly():
    state = published_state()
    out = mmseg.convert(state)
    model = conv.check(out, state, "bisenetv2")  # every tensor used or dropped; strict load
    assert out.model == "bisenetv2"
    assert out.options == {"bga_pointwise_bias": True, "aux_heads": False}
    assert out.classes.name == "cityscapes" and out.classes.num_classes == 19
    aux = {k for k in state if k.startswith("auxiliary_head.")}
    assert len(aux) == 4 * (2 * 6 + 2)  # four FCN heads: two ConvModules and a classifier
    assert set(out.dropped) == aux and out.used == set(state) - aux
    for theirs, ours in SAMPLE_RENAMES:
        assert torch.equal(model.state_dict()[ours], state[theirs])
    assert out.preprocess.size == (1024, 2048) and out.preprocess.color == "RGB"
    assert out.preprocess.mean == pytest.approx((123.675, 116.28, 103.53))
    assert out.preprocess.std == pytest.approx((58.395, 57.12, 57.375))
    assert out.published["val_miou"] == 0.7321
    assert out.published["released_as"].startswith("bisenetv2_fcn_4x4_1024x1024_160k_cityscapes")


def test_the_command_writes_an_edgeseg_checkpoint(tmp_path):
    src = tmp_path / "bisenetv2_fcn_4x4_1024x1024_160k_cityscapes.pth"
    state = published_state()
    torch.save({"meta": {"mmseg_version": "0.17.0"}, "state_dict": state}, src)  # as mmseg saves
    out = tmp_path / "model.pt"
    assert main(["convert", "--from", "mmseg", str(src), "--out", str(out)]) == 0
    ckpt = read_checkpoint(out)
    assert ckpt["model"] == {"name": "bisenetv2", "num_classes": 19,
                             "options": {"bga_pointwise_bias": True, "aux_heads": False}}
    assert ckpt["converted_from"]["variant"] == "BiSeNetV2, cityscapes 19 classes"
    model, classes, _ = model_from_checkpoint(out)
    assert classes.name == "cityscapes" and not model.aux_heads
    assert torch.equal(model.state_dict()["bga.detail_keep.1.bias"],
                       state["backbone.bga.detail_dwconv.0.pointwise_conv.conv.bias"])


def test_a_checkpoint_without_batchnorm_counters_converts():
    state = {k: v for k, v in published_state().items()
             if not k.endswith("num_batches_tracked")}
    conv.check(mmseg.convert(state), state, "no counters")


def test_wrong_class_count_is_a_named_error():
    state = published_state()
    state["decode_head.conv_seg.weight"] = torch.zeros(150, 1024, 1, 1)
    state["decode_head.conv_seg.bias"] = torch.zeros(150)
    with pytest.raises(conv.ConversionError,
                       match=r"has 150 output channels; expected 19 \(Cityscapes\)"):
        mmseg.convert(state)
    with pytest.raises(conv.ConversionError, match="--classes voc was given.*19 outputs"):
        mmseg.convert(published_state(), classes="voc")


def test_another_architecture_is_a_named_error():
    expected = ("not an mmsegmentation checkpoint of an architecture this source converts: "
                "expected the tensors of BiSeNetV2: backbone.detail.detail_branch.0.0")
    ours = create_model("bisenetv2", num_classes=19).state_dict()
    with pytest.raises(conv.ConversionError, match=expected):
        mmseg.convert(ours)
    for other in ("coincheung_bisenetv1_city", "vainf_resnet50_voc"):
        spec = json.loads((FIXTURES / f"{other}.json").read_text())
        shapes = spec.get("tensors") or spec["state_dict"]
        with pytest.raises(conv.ConversionError, match=expected + ".*DeepLabV3"):
            mmseg.convert({k: torch.zeros(s) for k, s in shapes.items()})
    with pytest.raises(conv.ConversionError, match="expected an mmsegmentation BiSeNetV2 "
                       "checkpoint, but its tensors are DeepLabV3.*'s"):
        mmseg.convert(published_state("deeplabv3plus_r50_cityscapes"), model="bisenetv2")
    with pytest.raises(conv.ConversionError,
                       match="expected an mmsegmentation BiSeNetV1 .ResNet-18. checkpoint, but "
                             "its tensors are BiSeNetV2's"):
        mmseg.convert(published_state(), model="bisenetv1")
    with pytest.raises(UsageError, match="mmseg takes the hints classes= and model=, not "
                                         "output_stride"):
        conv.check_hints("mmseg", {"output_stride": 16})


def test_a_missing_tensor_is_named_by_their_key():
    state = published_state()
    del state["backbone.bga.semantic_dwconv.0.pointwise_conv.conv.bias"]
    with pytest.raises(conv.ConversionError, match="1 expected tensor.*"
                       r"backbone\.bga\.semantic_dwconv\.0\.pointwise_conv\.conv\.bias"):
        mmseg.convert(state)


def test_bga_pointwise_bias_adds_a_bias_after_each_depthwise_conv():
    default = create_model("bisenetv2", num_classes=19)
    biased = create_model("bisenetv2", num_classes=19, bga_pointwise_bias=True).eval()
    extra = set(biased.state_dict()) - set(default.state_dict())
    assert extra == {"bga.detail_keep.1.bias", "bga.semantic_keep.1.bias"}
    assert (sum(p.numel() for p in biased.parameters())
            - sum(p.numel() for p in default.parameters())) == 2 * 128
    with torch.no_grad():
        for p in biased.bga.parameters():
            p.normal_(0, 0.1)
    x = torch.randn(1, 128, 8, 16)
    keep = biased.bga.detail_keep
    with torch.no_grad():
        bn = keep[0].bn
        dw = F.batch_norm(F.conv2d(x, keep[0].conv.weight, padding=1, groups=128),
                          bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps)
        assert torch.allclose(keep(x), F.conv2d(dw, keep[1].weight, keep[1].bias), atol=1e-6)


def test_published_rows():
    rows = [r for r in mmseg.published() if r["model"] != "icnet"]  # ICNet: its own tests
    assert [r["miou"] for r in rows] == [0.7321, 0.7357, 0.7576, 0.7307,
                                         0.7961, 0.8009, 0.8021, 0.8097,
                                         0.7444, 0.7437, 0.7516]
    assert [r["model"] for r in rows] == (["bisenetv2"] * 4 + ["deeplabv3plus"] * 4
                                          + ["bisenetv1"] * 3)
    for row in rows:
        assert set(row) == {"model", "variant", "classes", "dataset", "input", "miou", "file"}
        assert row["classes"] == "cityscapes"
        assert row["input"] == "1024x2048" and row["file"].endswith(".pth")
    assert rows[0]["variant"] == "BiSeNetV2 (bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024)"
    assert rows[6]["variant"] == ("DeepLabV3+ R-101-D8 "
                                  "(deeplabv3plus_r101-d8_4xb2-40k_cityscapes-512x1024)")
    assert any(r["source"] == "mmseg" for r in conv.published())


@pytest.mark.parametrize("depth, miou", [(50, 0.7961), (101, 0.8021)])
def test_deeplabv3plus_converts_and_loads_strictly(depth, miou):
    state = published_state(f"deeplabv3plus_r{depth}_cityscapes")
    out = mmseg.convert(state)
    model = conv.check(out, state, f"r{depth}")
    assert out.model == "deeplabv3plus" and out.variant == (
        f"DeepLabV3+ R-{depth}-D8, cityscapes 19 classes")
    assert out.options == {"backbone": "resnet50", "output_stride": 8, "resnet_depth": depth,
                           "dilate_first_block": False, "deep_stem": True,
                           "aspp_channels": 512, "aspp_project_kernel": 3}
    aux = {k for k in state if k.startswith("auxiliary_head.")}
    assert len(aux) == 8 and set(out.dropped) == aux and out.used == set(state) - aux
    for theirs, ours in DLV3P_RENAMES:
        assert torch.equal(model.state_dict()[ours], state[theirs])
    assert out.preprocess.size == (1024, 2048)
    assert out.preprocess.mean == pytest.approx((123.675, 116.28, 103.53))
    assert out.published["val_miou"] == miou
    assert out.published["released_as"].startswith(f"deeplabv3plus_r{depth}-d8_512x1024_40k")


def test_the_aspp_fusion_reads_the_image_pool_last_in_ours():
    """Theirs concatenates [pool, 1x1, r12, r24, r36] (512 channels each), ours [1x1, r12,
    r24, r36, pool]: the fusing conv's input channels move with them."""
    state = published_state("deeplabv3plus_r50_cityscapes")
    theirs = state["decode_head.bottleneck.conv.weight"]
    ours = mmseg.convert(state).state_dict["aspp.project.0.conv.weight"]
    assert ours.shape == theirs.shape == (512, 5 * 512, 3, 3)
    assert torch.equal(ours[:, 4 * 512:], theirs[:, :512])  # image pool
    assert torch.equal(ours[:, :4 * 512], theirs[:, 512:])  # 1x1 and the three rates


def test_the_deep_stem_is_three_3x3_convs_then_max_pool():
    """ResNetV1c's stem: 3x3/2 conv 3->32, 3x3 32->32, 3x3 32->64, each with BN and ReLU,
    then a 3x3/2 max-pool; and the D8 schedule's first blocks at the contracted rate."""
    model = create_model("deeplabv3plus", num_classes=19, backbone="resnet50",
                         output_stride=8, dilate_first_block=False, deep_stem=True,
                         aspp_channels=512, aspp_project_kernel=3).eval()
    stem = model.backbone.stem
    with torch.no_grad():
        for m in stem.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.normal_(1, 0.1), m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 32, 32)
    y = x
    for i, (cin, cout, stride) in enumerate(((3, 32, 2), (32, 32, 1), (32, 64, 1))):
        conv_, bn = stem[i].conv, stem[i].bn
        assert conv_.weight.shape == (cout, cin, 3, 3) and conv_.stride == (stride, stride)
        y = F.relu(F.batch_norm(F.conv2d(y, conv_.weight, stride=stride, padding=1),
                                bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                eps=bn.eps))
    with torch.no_grad():
        assert torch.allclose(stem(x), F.max_pool2d(y, 3, 2, 1), atol=1e-6)
    dil = [[b.conv2.conv.dilation[0] for b in layer]
           for layer in (model.backbone.layer3, model.backbone.layer4)]
    assert dil == [[1] + [2] * 5, [2, 4, 4]]  # mmseg's contract_dilation
    assert model.aspp.project[0].conv.kernel_size == (3, 3)
    assert model.classifier.in_channels == 512


def test_a_resnet_of_another_depth_is_a_named_error():
    state = {k: v for k, v in published_state("deeplabv3plus_r50_cityscapes").items()
             if not k.startswith("backbone.layer3.5.")}
    with pytest.raises(conv.ConversionError,
                       match="layer3 has 5 blocks; expected 6 .ResNet-50. or 23 .ResNet-101."):
        mmseg.convert(state)


V1_RENAMES = (
    ("backbone.context_path.backbone.bn1.running_var", "context.backbone.stem.0.bn.running_var"),
    ("backbone.context_path.backbone.layer3.0.downsample.0.weight",
     "context.backbone.layer3.0.downsample.conv.weight"),
    ("backbone.context_path.arm32.atten_conv_layer.1.bn.weight",
     "context.arm32.attention.bn.weight"),
    ("backbone.context_path.gap_conv.1.conv.weight", "context.global_context.conv.weight"),
    ("backbone.spatial_path.layer4.bn.bias", "spatial.3.bn.bias"),
    ("backbone.ffm.conv_atten.0.conv.weight", "ffm.attention.0.conv.weight"),
    ("decode_head.conv_seg.weight", "head.1.weight"),
    ("auxiliary_head.0.convs.0.conv.weight", "aux8.0.conv.weight"),
    ("auxiliary_head.1.conv_seg.bias", "aux16.1.bias"),
)


def test_bisenetv1_converts_and_loads_strictly_with_its_auxiliary_heads():
    state = published_state("bisenetv1_r18_cityscapes")
    out = mmseg.convert(state)
    model = conv.check(out, state, "bisenetv1")
    assert out.model == "bisenetv1" and out.variant == "BiSeNetV1 R-18-D32, cityscapes 19 classes"
    assert out.options == {"backbone": "resnet18", "context_upsample": "nearest",
                           "ffm_attention": "conv-bn-relu"}
    assert out.used == set(state) and not out.dropped  # their aux heads are our aux8/aux16
    for theirs, ours in V1_RENAMES:
        assert torch.equal(model.state_dict()[ours], state[theirs])
    assert out.preprocess.size == (1024, 2048)
    assert out.preprocess.std == pytest.approx((58.395, 57.12, 57.375))
    assert out.published["val_miou"] == 0.7444
    with pytest.raises(conv.ConversionError, match="tensors are BiSeNetV1 .ResNet-18.'s"):
        mmseg.convert(state, model="bisenetv2")


def test_conv_bn_relu_fusion_attention_has_a_relu_before_the_sigmoid():
    ffm = create_model("bisenetv1", num_classes=19, ffm_attention="conv-bn-relu").ffm.eval()
    with torch.no_grad():
        for p in ffm.parameters():
            p.normal_(0, 0.1)
    sp, cp = torch.randn(1, 128, 8, 8), torch.randn(1, 128, 8, 8)
    with torch.no_grad():
        feat = ffm.blend(torch.cat([sp, cp], 1))
        conv_, bn = ffm.attention[0].conv, ffm.attention[0].bn
        assert conv_.bias is None
        att = torch.sigmoid(F.relu(F.batch_norm(
            F.conv2d(feat.mean((2, 3), keepdim=True), conv_.weight),
            bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps)))
        assert torch.allclose(ffm(sp, cp), feat + feat * att, atol=1e-6)
