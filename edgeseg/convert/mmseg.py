"""open-mmlab/mmsegmentation's Cityscapes checkpoints: BiSeNetV2 (bisenetv2_fcn, 1024x1024
crops, 160k iterations), DeepLabV3+ R-50-D8 / R-101-D8 (512x1024 crops) and BiSeNetV1 R-18-D32
(1024x1024 crops, 160k iterations).

Their files are {"meta": ..., "state_dict": ...} with keys under "backbone.", "decode_head."
and "auxiliary_head."; the architecture is recognised from the tensor names. BiSeNetV2 maps
onto ours with these options (each changes what the weights compute or hold):

- `bga_pointwise_bias=True`: the guided aggregation's two depthwise-separable convs end in a
  1x1 conv without BatchNorm, which mmcv's ConvModule gives a bias.
- `aux_heads=False`: their four auxiliary FCN heads (two 3x3 convs each, widths 16/64/256/1024)
  are training-only and laid out otherwise than our booster heads, so they are dropped.

Everything else is ours as it stands: bilinear (align_corners=False) upsampling in the
aggregation and of the 1/8 logits, their FCN decode head (3x3 conv-BN-ReLU to 1024, dropout,
1x1 classifier) is our head.

DeepLabV3+ maps onto our deeplabv3plus (backbone resnet50, `resnet_depth` 50 or 101 from the
number of layer3 blocks, output stride 8) with these options:

- `deep_stem=True`: ResNetV1c's stem of three 3x3 convs (32, 32, 64 channels) and max-pool;
- `dilate_first_block=False`: their `contract_dilation` gives the first block of a dilated
  stage half the stage's rate (layer3: 1, layer4: 2), as torchvision does;
- `aspp_channels=512`, `aspp_project_kernel=3`: their ASPP, its 3x3 fusing conv
  ("bottleneck") and the decoder are 512 wide; ASPP and decoder convs are separable with
  BatchNorm and ReLU after the depthwise and the pointwise conv, as our default
  `head_conv="separable"`. Their fusing conv reads [image pool, 1x1, rate 12, 24, 36], ours
  [1x1, rates, image pool]: its input channels are permuted here. The decoder reads
  [ASPP, low-level 48] in both. Their auxiliary FCN head (on layer3) is dropped.

BiSeNetV1 R-18-D32 (a plain ResNet-18 context path: 7x7 stem) maps onto our bisenetv1 with
`context_upsample="nearest"` (their context path doubles the 1/32 and 1/16 maps by nearest
neighbour) and `ffm_attention="conv-bn-relu"` (their fusion attention: a 1x1 conv without
bias, BatchNorm and ReLU before the sigmoid). Their FCN decode head (3x3 conv to 256, 1x1
classifier) is our head, and their two auxiliary FCN heads (3x3 conv to 64, classifier, on
the 1/8 and 1/16 context maps) are laid out as our aux8 and aux16, so they are kept.

Their data preprocessor normalises RGB in 0..255 units with the
ImageNet mean and std below; their Cityscapes test pipeline evaluates the whole 1024x2048
image. The README's single-scale val mIoU goes into the checkpoint's metrics.
"""

from __future__ import annotations

from typing import Any

import torch

from edgeseg.convert import ConversionError, Converted, complete
from edgeseg.convert import recognise as recognise_by
from edgeseg.data.classes import CITYSCAPES
from edgeseg.data.transforms import Preprocess

UNWRAP = ("state_dict",)

# configs/_base_/models/*.py: SegDataPreProcessor (RGB, 0..255 units)
_MEAN, _STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
_EVAL_SIZE = (1024, 2048)  # configs/_base_/datasets/cityscapes.py: Resize to 2048x1024, whole

_NAMES = {"bisenetv2": "BiSeNetV2", "deeplabv3plus": "DeepLabV3+ (ResNetV1c-D8)",
          "bisenetv1": "BiSeNetV1 (ResNet-18)"}
# _README's keys: architecture, and for DeepLabV3+ its ResNet depth
_VARIANTS = {"bisenetv2": "BiSeNetV2", "deeplabv3plus-r50": "DeepLabV3+ R-50-D8",
             "deeplabv3plus-r101": "DeepLabV3+ R-101-D8", "bisenetv1": "BiSeNetV1 R-18-D32"}
# Tensors that identify each architecture; a checkpoint with none of these sets is refused.
_SIGNATURES = {
    "bisenetv2": ("backbone.detail.detail_branch.0.0.conv.weight",
                  "backbone.semantic.stage1.conv_first.conv.weight",
                  "backbone.bga.detail_dwconv.0.pointwise_conv.conv.weight",
                  "decode_head.conv_seg.weight"),
    "deeplabv3plus": ("backbone.stem.0.weight", "backbone.layer4.0.conv1.weight",
                      "decode_head.image_pool.1.conv.weight",
                      "decode_head.c1_bottleneck.conv.weight",
                      "decode_head.sep_bottleneck.0.depthwise_conv.conv.weight",
                      "decode_head.conv_seg.weight"),
    "bisenetv1": ("backbone.context_path.backbone.conv1.weight",
                  "backbone.spatial_path.layer1.conv.weight",
                  "backbone.ffm.conv_atten.0.conv.weight", "decode_head.conv_seg.weight"),
}
_CLASSIFIER = "decode_head.conv_seg.weight"
_OPTIONS = {
    "bisenetv2": {"bga_pointwise_bias": True, "aux_heads": False},
    "deeplabv3plus": {"backbone": "resnet50", "output_stride": 8, "dilate_first_block": False,
                      "deep_stem": True, "aspp_channels": 512, "aspp_project_kernel": 3},
    "bisenetv1": {"backbone": "resnet18", "context_upsample": "nearest",
                  "ffm_attention": "conv-bn-relu"},
}
_ASPP = 512  # their ASPP width: the fusing conv reads five blocks of it
# configs/<model>/README.md, Cityscapes: (config, released file, mIoU %, ms+flip mIoU %)
_README = {
    "bisenetv2": [
        ("bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024",
         "bisenetv2_fcn_4x4_1024x1024_160k_cityscapes_20210902_015551-bcf10f09.pth",
         73.21, 75.74),
        ("bisenetv2_fcn_4xb4-ohem-160k_cityscapes-1024x1024",
         "bisenetv2_fcn_ohem_4x4_1024x1024_160k_cityscapes_20210902_112947-5f8103b4.pth",
         73.57, 75.80),
        ("bisenetv2_fcn_4xb8-160k_cityscapes-1024x1024",
         "bisenetv2_fcn_4x8_1024x1024_160k_cityscapes_20210903_000032-e1a2eed6.pth",
         75.76, 77.79),
        ("bisenetv2_fcn_4xb4-amp-160k_cityscapes-1024x1024",
         "bisenetv2_fcn_fp16_4x4_1024x1024_160k_cityscapes_20210902_045942-b979777b.pth",
         73.07, 75.13),
    ],
    "deeplabv3plus-r50": [
        ("deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024",
         "deeplabv3plus_r50-d8_512x1024_40k_cityscapes_20200605_094610-d222ffcd.pth",
         79.61, 81.01),
        ("deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024",
         "deeplabv3plus_r50-d8_512x1024_80k_cityscapes_20200606_114049-f9fb496d.pth",
         80.09, 81.13),
    ],
    "deeplabv3plus-r101": [
        ("deeplabv3plus_r101-d8_4xb2-40k_cityscapes-512x1024",
         "deeplabv3plus_r101-d8_512x1024_40k_cityscapes_20200605_094614-3769eecf.pth",
         80.21, 81.82),
        ("deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024",
         "deeplabv3plus_r101-d8_512x1024_80k_cityscapes_20200606_114143-068fcfe9.pth",
         80.97, 82.03),
    ],
    "bisenetv1": [
        ("bisenetv1_r18-d32_4xb4-160k_cityscapes-1024x1024",
         "bisenetv1_r18-d32_4x4_1024x1024_160k_cityscapes_20210922_172239-c55e78e2.pth",
         74.44, 77.05),
        ("bisenetv1_r18-d32-in1k-pre_4xb4-160k_cityscapes-1024x1024",
         "bisenetv1_r18-d32_in1k-pre_4x4_1024x1024_160k_cityscapes_20210905_220251-8ba80eff.pth",
         74.37, 76.91),
        ("bisenetv1_r18-d32-in1k-pre_4xb8-160k_cityscapes-1024x1024",
         "bisenetv1_r18-d32_in1k-pre_4x8_1024x1024_160k_cityscapes_20210905_220322-bb8db75f.pth",
         75.16, 77.24),
    ],
}
_DATASET = "Cityscapes val"


def _bisenetv2_modules() -> dict[str, str]:
    """Their module path -> ours, for every module that owns tensors. A ConvModule of
    theirs (children conv, bn) maps onto a ConvBNAct of ours (children conv, bn)."""
    b = "backbone"
    m: dict[str, str] = {}
    i = 0
    for stage, n in enumerate((2, 3, 3)):
        for j in range(n):
            m[f"{b}.detail.detail_branch.{stage}.{j}"] = f"detail.{i}"
            i += 1
    s = f"{b}.semantic"
    m |= {f"{s}.stage1.conv_first": "semantic.stem.conv",
          f"{s}.stage1.convs.0": "semantic.stem.left.0",
          f"{s}.stage1.convs.1": "semantic.stem.left.1",
          f"{s}.stage1.fuse_last": "semantic.stem.fuse"}
    for stage, ours, n in ((2, "s3", 2), (3, "s4", 2), (4, "s5", 4)):
        for j in range(n):
            t, o = f"{s}.stage{stage}.{j}", f"semantic.{ours}.{j}"
            m[f"{t}.conv1"] = f"{o}.body.0"
            if j == 0:  # strided: two depthwise convs, a depthwise-separable shortcut
                m |= {f"{t}.dwconv.0": f"{o}.body.1", f"{t}.dwconv.1": f"{o}.body.2",
                      f"{t}.conv2.0": f"{o}.body.3",
                      f"{t}.shortcut.0.depthwise_conv": f"{o}.shortcut.0",
                      f"{t}.shortcut.0.pointwise_conv": f"{o}.shortcut.1"}
            else:
                m |= {f"{t}.dwconv.0": f"{o}.body.1", f"{t}.conv2.0": f"{o}.body.2"}
    g = f"{b}.bga"
    m |= {f"{s}.stage4_CEBlock.gap.1": "semantic.ce.bn",
          f"{s}.stage4_CEBlock.conv_gap": "semantic.ce.conv_gap",
          f"{s}.stage4_CEBlock.conv_last": "semantic.ce.conv_last",
          f"{g}.detail_dwconv.0.depthwise_conv": "bga.detail_keep.0",
          f"{g}.detail_dwconv.0.pointwise_conv.conv": "bga.detail_keep.1",
          f"{g}.detail_down.0": "bga.detail_down.0",
          f"{g}.semantic_conv.0": "bga.semantic_up",
          f"{g}.semantic_dwconv.0.depthwise_conv": "bga.semantic_keep.0",
          f"{g}.semantic_dwconv.0.pointwise_conv.conv": "bga.semantic_keep.1",
          f"{g}.conv": "bga.fuse",
          "decode_head.convs.0": "head.0", "decode_head.conv_seg": "head.2"}
    return m


def _deeplabv3plus_modules(depth: int) -> dict[str, str]:
    m = {"backbone.stem.0": "backbone.stem.0.conv", "backbone.stem.1": "backbone.stem.0.bn",
         "backbone.stem.3": "backbone.stem.1.conv", "backbone.stem.4": "backbone.stem.1.bn",
         "backbone.stem.6": "backbone.stem.2.conv", "backbone.stem.7": "backbone.stem.2.bn"}
    for layer, n in enumerate(_BLOCKS[depth], 1):
        for block in range(n):
            p = f"backbone.layer{layer}.{block}"
            for i in (1, 2, 3):
                m |= {f"{p}.conv{i}": f"{p}.conv{i}.conv", f"{p}.bn{i}": f"{p}.conv{i}.bn"}
            if block == 0:  # every stage's first block changes the width
                m |= {f"{p}.downsample.0": f"{p}.downsample.conv",
                      f"{p}.downsample.1": f"{p}.downsample.bn"}
    d = "decode_head"
    m |= {f"{d}.image_pool.1": "aspp.image_pool", f"{d}.aspp_modules.0": "aspp.conv1x1",
          f"{d}.bottleneck": "aspp.project.0", f"{d}.c1_bottleneck": "reduce_low",
          f"{d}.conv_seg": "classifier"}
    for i in (1, 2, 3):
        m |= {f"{d}.aspp_modules.{i}.depthwise_conv": f"aspp.atrous.{i - 1}.depthwise",
              f"{d}.aspp_modules.{i}.pointwise_conv": f"aspp.atrous.{i - 1}.pointwise"}
    for i in (0, 1):
        m |= {f"{d}.sep_bottleneck.{i}.depthwise_conv": f"decoder.{i}.depthwise",
              f"{d}.sep_bottleneck.{i}.pointwise_conv": f"decoder.{i}.pointwise"}
    return m


_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _bisenetv1_modules() -> dict[str, str]:
    cp = "backbone.context_path"
    m = {f"{cp}.backbone.conv1": "context.backbone.stem.0.conv",
         f"{cp}.backbone.bn1": "context.backbone.stem.0.bn"}
    for layer in range(1, 5):
        for block in range(2):
            t, o = f"{cp}.backbone.layer{layer}.{block}", f"context.backbone.layer{layer}.{block}"
            m |= {f"{t}.conv1": f"{o}.conv1.conv", f"{t}.bn1": f"{o}.conv1.bn",
                  f"{t}.conv2": f"{o}.conv2.conv", f"{t}.bn2": f"{o}.conv2.bn"}
            if block == 0 and layer > 1:
                m |= {f"{t}.downsample.0": f"{o}.downsample.conv",
                      f"{t}.downsample.1": f"{o}.downsample.bn"}
    for arm in ("arm16", "arm32"):
        m |= {f"{cp}.{arm}.conv_layer": f"context.{arm}.conv",
              f"{cp}.{arm}.atten_conv_layer.1": f"context.{arm}.attention"}
    m |= {f"{cp}.conv_head32": "context.refine32", f"{cp}.conv_head16": "context.refine16",
          f"{cp}.gap_conv.1": "context.global_context",
          "backbone.ffm.conv1": "ffm.blend", "backbone.ffm.conv_atten.0": "ffm.attention.0",
          "decode_head.convs.0": "head.0", "decode_head.conv_seg": "head.1",
          # their first auxiliary head reads the 1/8 context map, the second the 1/16 one
          "auxiliary_head.0.convs.0": "aux8.0", "auxiliary_head.0.conv_seg": "aux8.1",
          "auxiliary_head.1.convs.0": "aux16.0", "auxiliary_head.1.conv_seg": "aux16.1"}
    for i in range(4):
        m[f"backbone.spatial_path.layer{i + 1}"] = f"spatial.{i}"
    return m


def _depth(state: dict[str, Any]) -> int:
    """ResNet depth from the number of layer3 blocks (6: 50, 23: 101)."""
    n = len({k.split(".")[2] for k in state if k.startswith("backbone.layer3.")})
    for depth, blocks in _BLOCKS.items():
        if blocks[2] == n:
            return depth
    raise ConversionError(f"mmsegmentation DeepLabV3+: layer3 has {n} blocks; expected 6 "
                          "(ResNet-50) or 23 (ResNet-101)")


def _project_to_ours(weight: Any) -> Any:
    """Their fusing conv's input blocks [pool, 1x1, r12, r24, r36] -> ours [1x1, r.., pool]."""
    return torch.cat([weight[:, _ASPP:], weight[:, :_ASPP]], dim=1)


def recognise(state: dict[str, Any], model: str | None = None) -> str:
    """The architecture from the tensor names (and `model`, when given), or a
    ConversionError naming what was expected."""
    return recognise_by(state, _SIGNATURES, _NAMES, "an mmsegmentation checkpoint of an "
                        "architecture this source converts", model=model,
                        one="an mmsegmentation {name} checkpoint")


def convert(state: dict[str, Any], *, classes: str | None = None,
            model: str | None = None) -> Converted:
    """`classes` (optional) must be cityscapes, the class set of every converted
    checkpoint; `model` (optional) must agree with the tensors."""
    arch = recognise(state, model)
    n = int(state[_CLASSIFIER].shape[0])
    if n != CITYSCAPES.num_classes:
        raise ConversionError(
            f"mmsegmentation {_NAMES[arch]}: the classifier {_CLASSIFIER} has {n} output "
            "channels; expected 19 (Cityscapes), the class set of the checkpoints this "
            "source converts")
    if classes is not None and classes != CITYSCAPES.name:
        raise ConversionError(f"--classes {classes} was given, but the classifier has {n} "
                              "outputs: cityscapes")
    options = dict(_OPTIONS[arch])
    readme = arch
    if arch == "deeplabv3plus":
        depth = _depth(state)
        options["resnet_depth"] = depth
        readme = f"{arch}-r{depth}"
        modules = _deeplabv3plus_modules(depth)
    elif arch == "bisenetv1":
        modules = _bisenetv1_modules()
    else:
        modules = _bisenetv2_modules()
    name = _VARIANTS[readme]
    config, file, miou, miou_msf = _README[readme][0]
    out = Converted(
        model=arch, options=options, classes=CITYSCAPES,
        preprocess=Preprocess(size=_EVAL_SIZE, resize="stretch", color="RGB",
                              mean=_MEAN, std=_STD),
        state_dict={}, variant=f"{name}, cityscapes 19 classes",
        published={"val_miou": round(miou / 100, 6), "dataset": _DATASET,
                   "miou_percent": {"ss": miou, "msf": miou_msf},
                   "reported_by": f"open-mmlab/mmsegmentation configs/{arch}/README.md "
                                  f"({config}; the other {name} rows share its layout)",
                   "released_as": file})
    for key, tensor in state.items():
        if key.startswith("auxiliary_head.") and arch != "bisenetv1":
            out.dropped[key] = (
                "auxiliary FCN head (training only; its layout is not ours, so the model is "
                "built with aux_heads=False)" if arch == "bisenetv2" else
                "auxiliary FCN head on layer3 (training only; our deeplabv3plus has none)")
            continue
        if key == "decode_head.bottleneck.conv.weight":
            tensor = _project_to_ours(tensor)
        out.take(key, tensor, modules)
    complete(out, modules, f"mmsegmentation {name}")
    return out


def published() -> list[dict[str, Any]]:
    """Their READMEs' Cityscapes checkpoints and single-scale val mIoU."""
    return [{"model": key.split("-")[0], "variant": f"{_VARIANTS[key]} ({config})",
             "classes": "cityscapes", "dataset": _DATASET,
             "input": "x".join(map(str, _EVAL_SIZE)), "miou": round(miou / 100, 6),
             "file": file}
            for key, rows in _README.items() for config, file, miou, _ in rows]
