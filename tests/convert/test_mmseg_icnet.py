"""mmseg ICNet: open-mmlab/mmsegmentation's Cityscapes ICNet R-18/50/101-D8 checkpoints onto
our icnet with layout="mmseg".

The fixtures list their state dicts' tensor names and shapes (derived by hand from their
code, see each fixture's "source"); the converted model is run against a plain-torch
transcription of their forward (tests/convert/mmseg_icnet_reference.py), so every place
where their ICNet differs from the released one is checked by the numbers it computes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from edgeseg import convert as conv
from edgeseg.checkpoint import model_from_checkpoint, read_checkpoint
from edgeseg.cli.main import main
from edgeseg.convert import mmseg
from edgeseg.models import create_model
from tests.convert import mmseg_icnet_reference as reference
from tests.convert.fixture_states import fixture_state

RENAMES = (
    ("backbone.backbone.stem.4.running_var", "backbone.stem.1.bn.running_var"),
    ("backbone.backbone.layer2.0.downsample.0.weight", "backbone.layer2.0.downsample.conv.weight"),
    ("backbone.backbone.layer4.1.bn2.weight", "backbone.layer4.1.conv2.bn.weight"),
    ("backbone.psp_modules.3.1.conv.weight", "ppm.stages.3.conv.weight"),
    ("backbone.psp_bottleneck.bn.bias", "ppm.bottleneck.bn.bias"),
    ("backbone.conv_sub1.2.conv.weight", "sub1.2.conv.weight"),
    ("backbone.conv_sub2.bn.running_mean", "reduce2.bn.running_mean"),
    ("backbone.conv_sub4.conv.weight", "reduce4.conv.weight"),
    ("neck.cff_24.conv_low.conv.weight", "cff24.coarse.conv.weight"),
    ("neck.cff_12.conv_high.bn.weight", "cff12.fine.bn.weight"),
    ("decode_head.convs.0.conv.weight", "head_conv.conv.weight"),
    ("decode_head.conv_seg.bias", "classifier.bias"),
    ("auxiliary_head.0.convs.0.bn.bias", "cff24.aux_head.0.bn.bias"),
    ("auxiliary_head.1.conv_seg.weight", "cff12.aux_head.1.weight"),
)
FIRST_ROW = {18: 0.6814, 50: 0.6891, 101: 0.7028}


def published_state(depth: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return fixture_state(f"mmseg_icnet_r{depth}_cityscapes", seed)


def trained_like(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Random values at the scales a trained network has (positive variances, fan-in scaled
    convs), so that 100 layers deep the logits are still finite and far from zero."""
    g = torch.Generator().manual_seed(1)
    out = {}
    for k, v in state.items():
        if k.endswith("running_var"):
            v = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith(("running_mean", ".bias")):
            v = 0.1 * v
        elif v.dim() == 1 and k.endswith(".weight"):
            v = 1 + 0.1 * v
        elif v.dim() == 4:
            v = v / v[0].numel() ** 0.5
        out[k] = v
    return out


@pytest.mark.parametrize("depth", [18, 50, 101])
def test_icnet_converts_and_loads_strictly_with_its_guidance_heads(depth):
    state = published_state(depth)
    out = mmseg.convert(state)
    model = conv.check(out, state, f"icnet r{depth}")
    assert out.model == "icnet" and out.variant == f"ICNet R-{depth}-D8, cityscapes 19 classes"
    assert out.options == {"width": 64, "layout": "mmseg", "resnet_depth": depth}
    assert out.used == set(state) and not out.dropped  # their aux heads are our guidance heads
    for theirs, ours in RENAMES:
        assert torch.equal(model.state_dict()[ours], state[theirs])
    assert out.preprocess.size == (1024, 2048) and out.preprocess.color == "RGB"
    assert out.published["val_miou"] == FIRST_ROW[depth]
    assert out.published["released_as"].startswith(f"icnet_r{depth}-d8_832x832_80k_cityscapes")


@pytest.mark.parametrize("depth", [18, 50, 101])
def test_the_converted_icnet_computes_what_theirs_computes(depth):
    """Float64 against the transcription of their forward: equal to rounding, at a size whose
    middle branch is odd (ceil-mode pooling) and whose low branch comes from an odd map."""
    state = {k: v.double() if v.is_floating_point() else v
             for k, v in trained_like(published_state(depth)).items()}
    model = conv.check(mmseg.convert(state), state, "icnet").double()
    x = torch.randn(1, 3, 192, 256, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    with torch.no_grad():
        middle, _ = model._branches(x)
        ours, theirs = model(x), reference.forward(state, x, depth)
    assert middle.shape[-2:] == (13, 17)  # 1/2 input 96x128, stem 48x64, ceil pool 25x33
    assert theirs.shape == ours.shape == (1, 19, 192, 256)
    assert theirs.abs().max() > 0.5 and torch.isfinite(theirs).all()
    assert (ours - theirs).abs().max() < 1e-10


def test_float32_logits_within_the_conversion_tolerance():
    state = trained_like(published_state(50))
    model = conv.check(mmseg.convert(state), state, "icnet")
    x = torch.randn(1, 3, 256, 512, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (model(x) - reference.forward(state, x, 50)).abs().max() <= 1e-4


@pytest.mark.parametrize("h, w", [(65, 129), (96, 128), (5, 7)])
def test_half_scale_bilinear_is_2x2_average_pooling(h, w):
    """Their 0.5 scale-factor resizes (half-pixel centres) are the layout's avg_pool2d(2)."""
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    theirs = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    assert torch.allclose(F.avg_pool2d(x, 2), theirs, atol=1e-12, rtol=0)


def test_the_mmseg_layout_trains_with_two_guidance_heads():
    torch.manual_seed(0)
    model = create_model("icnet", num_classes=5, width=64, layout="mmseg",
                         resnet_depth=18).train()
    assert model.aux_weights == (0.4, 0.4)
    x, target = torch.randn(2, 3, 128, 128), torch.randint(0, 5, (2, 128, 128))
    out = model(x)
    assert out.main.shape == (2, 5, 128, 128)
    assert [a.shape[-2:] for a in out.aux] == [(9, 9), (16, 16)]  # 1/2, stem, ceil pool, /2
    loss = F.cross_entropy(out.main, target)
    for w, aux in zip(model.aux_weights, out.aux):
        small = F.interpolate(target[:, None].float(), size=aux.shape[-2:], mode="nearest")
        loss = loss + w * F.cross_entropy(aux, small[:, 0].long())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    default = create_model("icnet", num_classes=5)
    assert not hasattr(default.cff24.aux_head, "__getitem__")  # released: a 1x1 classifier
    assert default.aux_weights == (0.16, 0.4)


def test_a_resnet_of_another_depth_is_a_named_error():
    state = {k: v for k, v in published_state(50).items()
             if not k.startswith("backbone.backbone.layer3.5.")}
    with pytest.raises(conv.ConversionError, match=r"ICNet \(ResNetV1c-D8\): layer3 has 5 "
                       r"blocks; expected 2 \(ResNet-18\) or 6 \(ResNet-50\) or 23"):
        mmseg.convert(state)
    with pytest.raises(conv.ConversionError, match="expected an mmsegmentation DeepLabV3.* "
                       "checkpoint, but its tensors are ICNet"):
        mmseg.convert(published_state(18), model="deeplabv3plus")


def test_the_released_file_name_picks_its_own_figures(tmp_path):
    state = published_state(50)
    name = "icnet_r50-d8_in1k-pre_832x832_160k_cityscapes_20210926_042715-ce310aea.pth"
    for file, miou in ((name, 0.7629), ("renamed.pth", FIRST_ROW[50])):
        torch.save({"meta": {}, "state_dict": state}, tmp_path / file)
        out = tmp_path / f"{file}.pt"
        assert main(["convert", "--from", "mmseg", str(tmp_path / file), "--out", str(out)]) == 0
        ckpt = read_checkpoint(out)
        assert ckpt["metrics"]["val_miou"] == miou
        assert ckpt["model"]["options"] == {"width": 64, "layout": "mmseg", "resnet_depth": 50}
    assert read_checkpoint(tmp_path / f"{name}.pt")["metrics"]["matched_by"] == "file name"
    model, classes, _ = model_from_checkpoint(tmp_path / f"{name}.pt")
    assert classes.name == "cityscapes" and model.layout == "mmseg"


def test_published_rows_include_every_icnet_release():
    rows = [r for r in mmseg.published() if r["model"] == "icnet"]
    assert len(rows) == 12 and len({r["file"] for r in rows}) == 12
    assert [r["miou"] for r in rows[4:8]] == [0.6891, 0.7382, 0.7458, 0.7629]
    assert rows[7]["variant"] == ("ICNet R-50-D8 "
                                  "(icnet_r50-d8-in1k-pre_4xb2-160k_cityscapes-832x832)")


def test_the_converted_icnet_exports_with_parity(tmp_path):
    """Ceil-mode pooling, the average-pool downsamplings and the concatenating pyramid go
    through ONNX export; ONNX Runtime computes what PyTorch does (the export's own check)."""
    src = tmp_path / "icnet_r18.pth"
    torch.save({"state_dict": trained_like(published_state(18))}, src)
    assert main(["convert", "--from", "mmseg", str(src), "--out", str(tmp_path / "m.pt")]) == 0
    art = tmp_path / "art"
    assert main(["export", "--checkpoint", str(tmp_path / "m.pt"), "--size", "128x256",
                 "--out", str(art)]) == 0
    meta = json.loads((art / "meta.json").read_text())
    assert meta["model"]["options"] == {"width": 64, "layout": "mmseg", "resnet_depth": 18}
    checked = {r["backend"]: r for r in meta["parity"]["results"]}
    assert "onnxruntime" in checked
    for r in checked.values():
        assert r["argmax_agreement"] >= 0.999 and r["max_abs_diff"] < 1e-4
