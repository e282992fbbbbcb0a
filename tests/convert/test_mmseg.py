"""mmseg: open-mmlab/mmsegmentation's Cityscapes BiSeNetV2 checkpoints.

The fixture lists the tensor names and shapes of their model's state dict, derived by hand
from their configs/_base_/models/bisenetv2.py, backbone and FCN head (mmcv, which their
modules need, was not installed): random tensors of those shapes stand in for the weights.
The piece that differs from our default, the aggregation's biased pointwise convs, is
checked on its own.
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


def published_state(name: str = "bisenetv2_cityscapes", seed: int = 0) -> dict[str, torch.Tensor]:
    shapes = json.loads((FIXTURES / f"mmseg_{name}.json").read_text())["tensors"]
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) if s else torch.tensor(7) for k, s in shapes.items()}


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
    coincheung = json.loads((FIXTURES / "coincheung_bisenetv1_city.json").read_text())["tensors"]
    with pytest.raises(conv.ConversionError, match=expected):
        mmseg.convert({k: torch.zeros(s) for k, s in coincheung.items()})
    with pytest.raises(conv.ConversionError,
                       match="expected an mmsegmentation bisenetv1 checkpoint, but its tensors "
                             "are BiSeNetV2's"):
        mmseg.convert(published_state(), model="bisenetv1")
    with pytest.raises(UsageError, match="mmseg takes the hints classes= and model=, not "
                                         "output_stride"):
        mmseg.convert(published_state(), output_stride=16)


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
    rows = mmseg.published()
    assert [r["miou"] for r in rows] == [0.7321, 0.7357, 0.7576, 0.7307]
    for row in rows:
        assert set(row) == {"model", "variant", "classes", "dataset", "input", "miou", "file"}
        assert row["model"] == "bisenetv2" and row["classes"] == "cityscapes"
        assert row["input"] == "1024x2048" and row["file"].endswith(".pth")
    assert rows[0]["variant"] == "BiSeNetV2 (bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024)"
    assert any(r["source"] == "mmseg" for r in conv.published())
