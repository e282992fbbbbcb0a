"""open-mmlab/mmsegmentation's Cityscapes checkpoints: BiSeNetV2 (bisenetv2_fcn, 1024x1024
crops, 160k iterations), DeepLabV3+ R-50-D8 / R-101-D8 (512x1024 crops), BiSeNetV1 R-18-D32
(1024x1024 crops, 160k iterations) and ICNet R-18/50/101-D8 (832x832 crops).

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

ICNet maps onto our icnet with `layout="mmseg"` (their ICNet backbone, ICNeck and FCN heads:
see edgeseg/models/icnet.py for the ten places it differs from the released ICNet),
`width=64` and `resnet_depth` 18, 50 or 101 from the number of layer3 blocks. Their two
auxiliary FCN heads are the cascade label guidance heads of that layout, so they are kept.

Their data preprocessor normalises RGB in 0..255 units with the
ImageNet mean and std below; their Cityscapes test pipeline evaluates the whole 1024x2048
image. The README's single-scale val mIoU goes into the checkpoint's metrics.
"""

from __future__ import annotations

from typing import Any

import torch

from edgeseg.convert import ConversionError, Converted, complete
from edgeseg.convert import recognise as recognise_by
from edgeseg.convert.mmseg_layouts import (
    bisenetv1_modules,
    bisenetv2_modules,
    deeplabv3plus_modules,
    icnet_modules,
    resnet_depth,
)
from edgeseg.data.classes import CITYSCAPES
from edgeseg.data.transforms import Preprocess

UNWRAP = ("state_dict",)

# configs/_base_/models/*.py: SegDataPreProcessor (RGB, 0..255 units)
_MEAN, _STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
_EVAL_SIZE = (1024, 2048)  # configs/_base_/datasets/cityscapes.py: Resize to 2048x1024, whole

_NAMES = {"bisenetv2": "BiSeNetV2", "deeplabv3plus": "DeepLabV3+ (ResNetV1c-D8)",
          "bisenetv1": "BiSeNetV1 (ResNet-18)", "icnet": "ICNet (ResNetV1c-D8)"}
# _README's keys: architecture, and for DeepLabV3+ its ResNet depth
_VARIANTS = {"bisenetv2": "BiSeNetV2", "deeplabv3plus-r50": "DeepLabV3+ R-50-D8",
             "deeplabv3plus-r101": "DeepLabV3+ R-101-D8", "bisenetv1": "BiSeNetV1 R-18-D32",
             "icnet-r18": "ICNet R-18-D8", "icnet-r50": "ICNet R-50-D8",
             "icnet-r101": "ICNet R-101-D8"}
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
    "icnet": ("backbone.backbone.stem.0.weight", "backbone.psp_bottleneck.conv.weight",
              "neck.cff_24.conv_low.conv.weight", "decode_head.conv_seg.weight"),
}
_CLASSIFIER = "decode_head.conv_seg.weight"
_OPTIONS = {
    "bisenetv2": {"bga_pointwise_bias": True, "aux_heads": False},
    "deeplabv3plus": {"backbone": "resnet50", "output_stride": 8, "dilate_first_block": False,
                      "deep_stem": True, "aspp_channels": 512, "aspp_project_kernel": 3},
    "bisenetv1": {"backbone": "resnet18", "context_upsample": "nearest",
                  "ffm_attention": "conv-bn-relu"},
    "icnet": {"width": 64, "layout": "mmseg"},
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
    "icnet-r18": [
        ("icnet_r18-d8_4xb2-80k_cityscapes-832x832",
         "icnet_r18-d8_832x832_80k_cityscapes_20210925_225521-2e36638d.pth",
         68.14, 70.16),
        ("icnet_r18-d8_4xb2-160k_cityscapes-832x832",
         "icnet_r18-d8_832x832_160k_cityscapes_20210925_230153-2c6eb6e0.pth",
         71.64, 74.18),
        ("icnet_r18-d8-in1k-pre_4xb2-80k_cityscapes-832x832",
         "icnet_r18-d8_in1k-pre_832x832_80k_cityscapes_20210925_230354-1cbe3022.pth",
         72.51, 74.78),
        ("icnet_r18-d8-in1k-pre_4xb2-160k_cityscapes-832x832",
         "icnet_r18-d8_in1k-pre_832x832_160k_cityscapes_20210926_052702-619c8ae1.pth",
         74.43, 76.72),
    ],
    "icnet-r50": [
        ("icnet_r50-d8_4xb2-80k_cityscapes-832x832",
         "icnet_r50-d8_832x832_80k_cityscapes_20210926_044625-c6407341.pth",
         68.91, 69.72),
        ("icnet_r50-d8_4xb2-160k_cityscapes-832x832",
         "icnet_r50-d8_832x832_160k_cityscapes_20210925_232612-a95f0d4e.pth",
         73.82, 75.67),
        ("icnet_r50-d8-in1k-pre_4xb2-80k_cityscapes-832x832",
         "icnet_r50-d8_in1k-pre_832x832_80k_cityscapes_20210926_032943-1743dc7b.pth",
         74.58, 76.41),
        ("icnet_r50-d8-in1k-pre_4xb2-160k_cityscapes-832x832",
         "icnet_r50-d8_in1k-pre_832x832_160k_cityscapes_20210926_042715-ce310aea.pth",
         76.29, 78.09),
    ],
    "icnet-r101": [
        ("icnet_r101-d8_4xb2-80k_cityscapes-832x832",
         "icnet_r101-d8_832x832_80k_cityscapes_20210926_072447-b52f936e.pth",
         70.28, 71.95),
        ("icnet_r101-d8_4xb2-160k_cityscapes-832x832",
         "icnet_r101-d8_832x832_160k_cityscapes_20210926_092350-3a1ebf1a.pth",
         73.80, 76.10),
        ("icnet_r101-d8-in1k-pre_4xb2-80k_cityscapes-832x832",
         "icnet_r101-d8_in1k-pre_832x832_80k_cityscapes_20210926_020414-7ceb12c5.pth",
         75.57, 77.86),
        ("icnet_r101-d8-in1k-pre_4xb2-160k_cityscapes-832x832",
         "icnet_r101-d8_in1k-pre_832x832_160k_cityscapes_20210925_232612-9484ae8a.pth",
         76.15, 77.98),
    ],
}
_DATASET = "Cityscapes val"


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
    if arch in ("deeplabv3plus", "icnet"):
        icnet = arch == "icnet"
        depth = resnet_depth(state, "backbone.backbone.layer3." if icnet else "backbone.layer3.",
                             _NAMES[arch], (18, 50, 101) if icnet else (50, 101))
        options["resnet_depth"] = depth
        readme = f"{arch}-r{depth}"
        modules = (icnet_modules if icnet else deeplabv3plus_modules)(depth)
    elif arch == "bisenetv1":
        modules = bisenetv1_modules()
    else:
        modules = bisenetv2_modules()
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
        if key.startswith("auxiliary_head.") and arch not in ("bisenetv1", "icnet"):
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
