"""VainF/DeepLabV3Plus-Pytorch: DeepLabV3+ with MobileNetV2, ResNet-50 or ResNet-101,
output stride 16 or 8, plain or separable head (`--separable_conv`), Cityscapes (19 classes)
or PASCAL VOC (21).

Their checkpoints are {"model_state": state_dict, "optimizer_state": ..., ...}. Their layout
maps onto edgeseg's deeplabv3plus with these options (each one changes what the weights
compute, so none may be left out):

- MobileNetV2: `backbone_padding="block"` (their stem conv is unpadded and each inverted
  residual pads its input before the 1x1 expansion); low-level features after the 24-channel
  stage and high-level features before the final 1x1 conv, as ours.
- ResNet: `dilate_first_block=False` (torchvision's replace_stride_with_dilation, on which
  their ResNet is built); `resnet_depth` 50 or 101.
- Head: dense 3x3 convs (`head_conv="conv"`) or, with --separable_conv, a depthwise 3x3 straight
  into a pointwise conv with one BN after both (`"separable-nobn"`); one decoder conv
  (`decoder_convs=1`). They concatenate [low-level, ASPP], we [ASPP, low-level]: the decoder's
  input channels are permuted here instead of adding an option for the order.

The output stride is not in the weights (dilation changes no shape): `output_stride=` (hint)
picks it, 16 by default, the stride every published checkpoint was trained and evaluated at.
"""

from __future__ import annotations

import re
from typing import Any

from edgeseg.convert import ConversionError, Converted
from edgeseg.core.errors import UsageError
from edgeseg.data.classes import CITYSCAPES, VOC, ClassSet
from edgeseg.data.transforms import Preprocess

UNWRAP = ("model_state", "state_dict", "model")

_CLASSES = {CITYSCAPES.num_classes: CITYSCAPES, VOC.num_classes: VOC}
# Where their README figures were measured: Cityscapes val at full resolution, VOC val as
# 513x513 centre crops.
_MEASURED_AT = {"cityscapes": (1024, 2048), "voc": (513, 513)}
# Our input size. Not 513 for VOC: our model pads 513 to 544 (a multiple of 32) where theirs
# runs 513 as is, which moves every feature's sampling grid; at multiples of 32 both compute
# the same logits (1e-5), so VOC takes the nearest one.
_EVAL_SIZE = {"cityscapes": (1024, 2048), "voc": (512, 512)}
# README "Results" (output stride 16 for training and evaluation, no separable convs).
_PUBLISHED = {
    ("mobilenetv2", "voc"): 0.711, ("resnet50", "voc"): 0.772, ("resnet101", "voc"): 0.783,
    ("mobilenetv2", "cityscapes"): 0.721, ("resnet101", "cityscapes"): 0.762,
}
_CLASSIFIER = "classifier.classifier.3.weight"
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_LOW = 48  # their low-level projection's channels, first in their decoder's input
# our decoder weights that see the concatenation -> the dim that indexes its channels
_PERMUTED = {"decoder.0.conv.weight": 1, "decoder.0.depthwise.weight": 0,
             "decoder.0.pointwise.conv.weight": 1}


def _backbone(state: dict[str, Any]) -> str:
    if "backbone.low_level_features.0.0.weight" in state:
        return "mobilenetv2"
    if "backbone.conv1.weight" in state:
        blocks = {int(m.group(1)) for k in state
                  if (m := re.match(r"backbone\.layer3\.(\d+)\.", k))}
        depth = {6: "resnet50", 23: "resnet101"}.get(len(blocks))
        if depth and "backbone.layer3.0.conv3.weight" in state:
            return depth
        raise ConversionError(f"vainf-deeplabv3plus: a ResNet with {len(blocks)} blocks in layer3; "
                              "expected ResNet-50 (6) or ResNet-101 (23) bottlenecks")
    found = "HRNetV2" if any(k.startswith("backbone.stage4") for k in state) else \
        "Xception" if any(k.startswith("backbone.block1.") for k in state) else None
    raise ConversionError(
        "vainf-deeplabv3plus: expected a DeepLabV3+ state dict with a MobileNetV2 "
        "(backbone.low_level_features.*) or ResNet-50/101 (backbone.conv1, backbone.layer1..4) "
        f"backbone, found {found + ' (not converted)' if found else 'neither'}; first keys: "
        + ", ".join(list(state)[:4]))


def _class_set(state: dict[str, Any], hint: str | ClassSet | None) -> ClassSet:
    if _CLASSIFIER not in state:
        v3 = any(k.startswith("classifier.classifier.0.convs.") for k in state)
        raise ConversionError(
            "vainf-deeplabv3plus: no DeepLabV3+ classifier (classifier.classifier.3.weight)"
            + ("; this is a DeepLabV3 checkpoint (no decoder), not DeepLabV3+" if v3 else ""))
    n = int(state[_CLASSIFIER].shape[0])
    if isinstance(hint, ClassSet):
        if hint.num_classes != n:
            raise ConversionError(f"vainf-deeplabv3plus: class set {hint.name!r} has "
                                  f"{hint.num_classes} classes, the classifier {n} outputs")
        return hint
    if n not in _CLASSES:
        raise ConversionError(f"vainf-deeplabv3plus: the classifier has {n} outputs; expected 19 "
                              "(Cityscapes) or 21 (PASCAL VOC), the class sets they publish")
    classes = _CLASSES[n]
    if hint is not None and hint != classes.name:
        raise ConversionError(f"vainf-deeplabv3plus: --classes {hint} was given, but the "
                              f"classifier has {n} outputs: {classes.name}")
    return classes


def _bn(theirs: str, ours: str) -> dict[str, str]:
    return {f"{theirs}.{p}": f"{ours}.{p}" for p in _BN}


def _conv_bn(theirs_conv: str, theirs_bn: str, ours: str) -> dict[str, str]:
    return {f"{theirs_conv}.weight": f"{ours}.conv.weight", **_bn(theirs_bn, f"{ours}.bn")}


def _mobilenet_names(state: dict[str, Any]) -> dict[str, str]:
    names = _conv_bn("backbone.low_level_features.0.0", "backbone.low_level_features.0.1",
                     "backbone.stem")
    blocks = [("low_level_features", i, f"low.{i - 1}") for i in range(1, 4)]
    # Slicing their nn.Sequential kept the indices: high-level blocks are features 4..17.
    blocks += [("high_level_features", i, f"high.{i - 4}") for i in range(4, 18)]
    for part, i, ours in blocks:
        theirs = f"backbone.{part}.{i}.conv"
        # conv.0 (and conv.1 with an expansion) are conv-BN-ReLU6; then the linear 1x1 and its BN
        n_act = 2 if f"{theirs}.3.weight" in state else 1
        for j in range(n_act):
            names |= _conv_bn(f"{theirs}.{j}.0", f"{theirs}.{j}.1", f"backbone.{ours}.block.{j}")
        names |= _conv_bn(f"{theirs}.{n_act}", f"{theirs}.{n_act + 1}",
                          f"backbone.{ours}.block.{n_act}")
    return names


def _resnet_names(depth: int) -> dict[str, str]:
    names = _conv_bn("backbone.conv1", "backbone.bn1", "backbone.stem.0")
    for stage, n in zip((1, 2, 3, 4), (3, 4, 23 if depth == 101 else 6, 3)):
        for b in range(n):
            theirs, ours = f"backbone.layer{stage}.{b}", f"backbone.layer{stage}.{b}"
            for c in (1, 2, 3):
                names |= _conv_bn(f"{theirs}.conv{c}", f"{theirs}.bn{c}", f"{ours}.conv{c}")
            if b == 0:
                names |= _conv_bn(f"{theirs}.downsample.0", f"{theirs}.downsample.1",
                                  f"{ours}.downsample")
    return names


def _head_names(separable: bool) -> dict[str, str]:
    aspp = "classifier.aspp"
    names = _conv_bn("classifier.project.0", "classifier.project.1", "reduce_low")
    names |= _conv_bn(f"{aspp}.convs.0.0", f"{aspp}.convs.0.1", "aspp.conv1x1")
    for k in (1, 2, 3):
        theirs, ours = f"{aspp}.convs.{k}", f"aspp.atrous.{k - 1}"
        if separable:
            names |= {f"{theirs}.0.body.0.weight": f"{ours}.depthwise.weight",
                      **_conv_bn(f"{theirs}.0.body.1", f"{theirs}.1", f"{ours}.pointwise")}
        else:
            names |= _conv_bn(f"{theirs}.0", f"{theirs}.1", ours)
    names |= _conv_bn(f"{aspp}.convs.4.1", f"{aspp}.convs.4.2", "aspp.image_pool")
    names |= _conv_bn(f"{aspp}.project.0", f"{aspp}.project.1", "aspp.project.0")
    head = "classifier.classifier"
    if separable:
        names |= {f"{head}.0.body.0.weight": "decoder.0.depthwise.weight",
                  **_conv_bn(f"{head}.0.body.1", f"{head}.1", "decoder.0.pointwise")}
    else:
        names |= _conv_bn(f"{head}.0", f"{head}.1", "decoder.0")
    names |= {f"{head}.3.weight": "classifier.weight", f"{head}.3.bias": "classifier.bias"}
    return names


def _low_level_last(tensor: Any, dim: int) -> Any:
    """Their decoder input is [low-level (48), ASPP (256)], ours [ASPP, low-level]."""
    import torch

    return torch.cat([tensor.narrow(dim, _LOW, tensor.shape[dim] - _LOW),
                      tensor.narrow(dim, 0, _LOW)], dim=dim)


def convert(state: dict[str, Any], *, classes: str | ClassSet | None = None,
            output_stride: int = 16) -> Converted:
    """`classes` (optional) must agree with the classifier's width; `output_stride` 16
    (their published checkpoints) or 8."""
    if output_stride not in (8, 16):
        raise UsageError(f"vainf-deeplabv3plus: output_stride must be 8 or 16, got "
                         f"{output_stride!r}")
    backbone = _backbone(state)
    class_set = _class_set(state, classes)
    separable = "classifier.classifier.0.body.0.weight" in state
    if backbone == "mobilenetv2":
        names = _mobilenet_names(state)
        options: dict[str, Any] = {"backbone": "mobilenetv2", "backbone_padding": "block"}
    else:
        depth = int(backbone.removeprefix("resnet"))
        names = _resnet_names(depth)
        options = {"backbone": "resnet50", "resnet_depth": depth, "dilate_first_block": False}
    names |= _head_names(separable)
    options |= {"output_stride": output_stride, "decoder_convs": 1,
                "head_conv": "separable-nobn" if separable else "conv"}

    default = " (the default: their checkpoints' stride)" if output_stride == 16 else ""
    variant = (f"{backbone} os{output_stride}{default}{' separable' if separable else ''}, "
               f"{class_set.name} {class_set.num_classes} classes")
    size = _EVAL_SIZE.get(class_set.name, (512, 512))
    out = Converted(model="deeplabv3plus", options=options, classes=class_set,
                    preprocess=Preprocess(size=size), state_dict={}, variant=variant)
    for theirs, ours in names.items():
        if theirs not in state:
            continue  # check() names what the model misses, by our key
        tensor = state[theirs]
        if ours in _PERMUTED:
            tensor = _low_level_last(tensor, _PERMUTED[ours])
        out.state_dict[ours] = tensor
        out.used.add(theirs)

    miou = _PUBLISHED.get((backbone, class_set.name))
    if miou is not None and not separable:
        out.published = {
            "val_miou": miou, "dataset": f"{class_set.name} val",
            "eval_size": list(_MEASURED_AT[class_set.name]), "output_stride": 16,
            "where": "VainF/DeepLabV3Plus-Pytorch README, Results"}
        if output_stride != 16:
            out.published["note"] = f"measured at output stride 16; converted for {output_stride}"
    return out


def published() -> list[dict[str, Any]]:
    """Their README's checkpoints and val mIoU (`edgeseg models --pretrained`)."""
    return [{"model": "deeplabv3plus", "variant": f"{backbone} os16", "classes": classes,
             "dataset": f"{'Cityscapes' if classes == 'cityscapes' else 'VOC 2012'} val",
             "input": "x".join(map(str, _MEASURED_AT[classes])), "miou": miou,
             "file": _RELEASED.get((backbone, classes), "(unnamed: a link in their README)")}
            for (backbone, classes), miou in _PUBLISHED.items()]


# The file names their README gives (their "mobilenet" is MobileNetV2); the Cityscapes
# ResNet-101 checkpoint is a bare download link.
_RELEASED = {(b, c): f"best_deeplabv3plus_{n}_{c}_os16.pth"
             for b, n in (("mobilenetv2", "mobilenet"), ("resnet50", "resnet50"),
                          ("resnet101", "resnet101"))
             for c in ("voc", "cityscapes") if (b, c) != ("resnet101", "cityscapes")}
