"""CoinCheung/BiSeNet's released checkpoints: BiSeNetV1 (ResNet-18) and BiSeNetV2, trained on
Cityscapes (19 classes) or COCO-Stuff (171).

Their networks are ours with three differences, each an option of our family so that the
converted model computes what theirs does:

- V1: the context path doubles its 1/32 and 1/16 maps with nearest-neighbour upsampling
  (`context_upsample="nearest"`), and the fusion module's attention is one 1x1 conv with
  BatchNorm (`ffm_attention="conv-bn"`). Their two auxiliary heads are laid out as ours
  (3x3 conv-BN-ReLU, 1x1 classifier, on the same two context maps) and are kept.
- V2: the guided aggregation upsamples nearest-neighbour (`bga_upsample="nearest"`). Their
  four booster heads have another layout (an extra upsampled conv) and are training-only,
  so they are dropped and the model is built without ours (`aux_heads=False`).

Both upsample the 1/8 logits by 8 bilinearly (align_corners=False) as our models' output
resize does, which is the same arithmetic at sides that are multiples of 32 (theirs takes
no other size). The key layout is that of lib/models/ at commit 6b4b67a; their README's
single-scale mIoU goes into the checkpoint's metrics.
"""

from __future__ import annotations

from typing import Any

from edgeseg.convert import ConversionError, Converted, complete
from edgeseg.convert import recognise as recognise_by
from edgeseg.data.classes import CITYSCAPES, COCO_STUFF
from edgeseg.data.transforms import Preprocess

# Their to_tensor constants (RGB, 0..1 units), from lib/data/cityscapes_cv2.py and coco.py.
_MEAN_STD = {
    "cityscapes": ((0.3257, 0.3690, 0.3223), (0.2112, 0.2148, 0.2115)),
    "coco-stuff": ((0.46962251, 0.4464104, 0.40718787), (0.27469736, 0.27012361, 0.28515933)),
}
# Their single-scale evaluation runs Cityscapes at full resolution, and COCO-Stuff at each
# image's own size (at most 640 on the long side); a letterbox to 640 keeps that scale.
_EVAL = {"cityscapes": ((1024, 2048), "stretch"), "coco-stuff": ((640, 640), "letterbox")}
_CLASSES = {19: CITYSCAPES, 171: COCO_STUFF}

# README mIoU (%) on the val sets: ss, ssc (sliding crops), msf (multi-scale + flip), mscf.
_README = {
    ("bisenetv1", "cityscapes"): ("model_final_v1_city_new.pth", (75.44, 76.94, 77.45, 78.86)),
    ("bisenetv2", "cityscapes"): ("model_final_v2_city.pth", (74.95, 75.58, 76.53, 77.08)),
    ("bisenetv1", "coco-stuff"): ("model_final_v1_coco_new.pth", (31.49, 31.42, 32.46, 32.55)),
    ("bisenetv2", "coco-stuff"): ("model_final_v2_coco.pth", (30.49, 30.55, 31.81, 31.73)),
}
_DATASETS = {"cityscapes": "Cityscapes val", "coco-stuff": "COCO-Stuff val2017 (5k images)"}

# Tensors that tell the two apart; a checkpoint with neither set is another architecture.
_SIGNATURES = {
    "bisenetv1": ("cp.resnet.conv1.weight", "sp.conv1.conv.weight", "ffm.convblk.conv.weight",
                  "conv_out.conv_out.weight"),
    "bisenetv2": ("detail.S1.0.conv.weight", "segment.S1S2.conv.conv.weight",
                  "bga.left1.0.weight", "head.conv_out.1.weight"),
}
_CLASSIFIER = {"bisenetv1": "conv_out.conv_out.weight", "bisenetv2": "head.conv_out.1.weight"}
_OPTIONS = {
    "bisenetv1": {"backbone": "resnet18", "context_upsample": "nearest",
                  "ffm_attention": "conv-bn"},
    "bisenetv2": {"bga_upsample": "nearest", "aux_heads": False},
}
_AUX_V2 = ("aux2.", "aux3.", "aux4.", "aux5_4.")


def _v1_modules() -> dict[str, str]:
    """Their module path -> ours, for every module that owns tensors."""
    m = {"cp.resnet.conv1": "context.backbone.stem.0.conv",
         "cp.resnet.bn1": "context.backbone.stem.0.bn"}
    for layer in range(1, 5):
        for block in range(2):
            theirs = f"cp.resnet.layer{layer}.{block}"
            ours = f"context.backbone.layer{layer}.{block}"
            m |= {f"{theirs}.conv1": f"{ours}.conv1.conv", f"{theirs}.bn1": f"{ours}.conv1.bn",
                  f"{theirs}.conv2": f"{ours}.conv2.conv", f"{theirs}.bn2": f"{ours}.conv2.bn"}
            if block == 0 and layer > 1:  # the stage's first block changes width and stride
                m |= {f"{theirs}.downsample.0": f"{ours}.downsample.conv",
                      f"{theirs}.downsample.1": f"{ours}.downsample.bn"}
    for arm in ("arm16", "arm32"):
        m |= {f"cp.{arm}.conv": f"context.{arm}.conv",
              f"cp.{arm}.conv_atten": f"context.{arm}.attention.conv",
              f"cp.{arm}.bn_atten": f"context.{arm}.attention.bn"}
    m |= {"cp.conv_head32": "context.refine32", "cp.conv_head16": "context.refine16",
          "cp.conv_avg": "context.global_context",
          "sp.conv1": "spatial.0", "sp.conv2": "spatial.1", "sp.conv3": "spatial.2",
          "sp.conv_out": "spatial.3",
          "ffm.convblk": "ffm.blend", "ffm.conv": "ffm.attention.conv",
          "ffm.bn": "ffm.attention.bn"}
    # Their conv_out16 reads the 1/8 context map and conv_out32 the 1/16 one, as our aux8
    # and aux16 do: the names count the upsampling factor, ours the input stride.
    for theirs, ours in (("conv_out", "head"), ("conv_out16", "aux8"), ("conv_out32", "aux16")):
        m |= {f"{theirs}.conv": f"{ours}.0", f"{theirs}.conv_out": f"{ours}.1"}
    return m


def _v2_modules() -> dict[str, str]:
    m = {}
    detail = [("S1", 2), ("S2", 3), ("S3", 3)]
    i = 0
    for stage, n in detail:
        for j in range(n):
            m[f"detail.{stage}.{j}"] = f"detail.{i}"
            i += 1
    m |= {"segment.S1S2.conv": "semantic.stem.conv",
          "segment.S1S2.left.0": "semantic.stem.left.0",
          "segment.S1S2.left.1": "semantic.stem.left.1",
          "segment.S1S2.fuse": "semantic.stem.fuse"}
    for theirs, ours, n in (("S3", "s3", 2), ("S4", "s4", 2), ("S5_4", "s5", 4)):
        for j in range(n):
            t, o = f"segment.{theirs}.{j}", f"semantic.{ours}.{j}"
            if j == 0:  # GELayerS2: two depthwise convs and a separable shortcut
                m |= {f"{t}.conv1": f"{o}.body.0",
                      f"{t}.dwconv1.0": f"{o}.body.1.conv", f"{t}.dwconv1.1": f"{o}.body.1.bn",
                      f"{t}.dwconv2.0": f"{o}.body.2.conv", f"{t}.dwconv2.1": f"{o}.body.2.bn",
                      f"{t}.conv2.0": f"{o}.body.3.conv", f"{t}.conv2.1": f"{o}.body.3.bn",
                      f"{t}.shortcut.0": f"{o}.shortcut.0.conv",
                      f"{t}.shortcut.1": f"{o}.shortcut.0.bn",
                      f"{t}.shortcut.2": f"{o}.shortcut.1.conv",
                      f"{t}.shortcut.3": f"{o}.shortcut.1.bn"}
            else:
                m |= {f"{t}.conv1": f"{o}.body.0",
                      f"{t}.dwconv.0": f"{o}.body.1.conv", f"{t}.dwconv.1": f"{o}.body.1.bn",
                      f"{t}.conv2.0": f"{o}.body.2.conv", f"{t}.conv2.1": f"{o}.body.2.bn"}
    m |= {"segment.S5_5.bn": "semantic.ce.bn", "segment.S5_5.conv_gap": "semantic.ce.conv_gap",
          "segment.S5_5.conv_last": "semantic.ce.conv_last",
          "bga.left1.0": "bga.detail_keep.0.conv", "bga.left1.1": "bga.detail_keep.0.bn",
          "bga.left1.2": "bga.detail_keep.1",
          "bga.left2.0": "bga.detail_down.0.conv", "bga.left2.1": "bga.detail_down.0.bn",
          "bga.right1.0": "bga.semantic_up.conv", "bga.right1.1": "bga.semantic_up.bn",
          "bga.right2.0": "bga.semantic_keep.0.conv", "bga.right2.1": "bga.semantic_keep.0.bn",
          "bga.right2.2": "bga.semantic_keep.1",
          "bga.conv.0": "bga.fuse.conv", "bga.conv.1": "bga.fuse.bn",
          "head.conv": "head.0", "head.conv_out.1": "head.2"}
    return m


_MODULES = {"bisenetv1": _v1_modules, "bisenetv2": _v2_modules}
_NAMES = {"bisenetv1": "BiSeNetV1 (ResNet-18)", "bisenetv2": "BiSeNetV2"}


def recognise(state: dict[str, Any], model: str | None = None) -> str:
    """"bisenetv1" or "bisenetv2" from the tensor names (and `model`, when given), or a
    ConversionError."""
    return recognise_by(state, _SIGNATURES, _NAMES, "a CoinCheung/BiSeNet checkpoint",
                        model=model, one="a CoinCheung/BiSeNet {name} checkpoint")


def _class_set(arch: str, state: dict[str, Any], hint: str | None):
    n = int(state[_CLASSIFIER[arch]].shape[0])
    if n not in _CLASSES:
        raise ConversionError(
            f"CoinCheung/BiSeNet {_NAMES[arch]}: the classifier {_CLASSIFIER[arch]} has {n} "
            "output channels; expected 19 (Cityscapes) or 171 (COCO-Stuff), the class sets "
            "of its released checkpoints")
    classes = _CLASSES[n]
    if hint is not None and hint != classes.name:
        raise ConversionError(
            f"--classes {hint} was given, but the classifier has {n} outputs: {classes.name} "
            f"({', '.join(f'{k} = {c.name}' for k, c in _CLASSES.items())})")
    return classes


def convert(state: dict[str, Any], *, classes: str | None = None,
            model: str | None = None) -> Converted:
    """`classes` (optional) must agree with the classifier's width; `model` (optional,
    bisenetv1 or bisenetv2) must agree with the tensors."""
    arch = recognise(state, model)
    class_set = _class_set(arch, state, classes)
    mean, std = _MEAN_STD[class_set.name]
    size, resize = _EVAL[class_set.name]
    file, miou = _README[(arch, class_set.name)]
    out = Converted(
        model=arch, options=dict(_OPTIONS[arch]), classes=class_set,
        preprocess=Preprocess(size=size, resize=resize, color="RGB",
                              mean=tuple(round(v * 255, 6) for v in mean),
                              std=tuple(round(v * 255, 6) for v in std)),
        state_dict={}, variant=f"{_NAMES[arch]}, {class_set.name} {class_set.num_classes} "
                               "classes",
        published={"val_miou": round(miou[0] / 100, 6), "dataset": _DATASETS[class_set.name],
                   "miou_percent": dict(zip(("ss", "ssc", "msf", "mscf"), miou)),
                   "reported_by": "CoinCheung/BiSeNet README", "released_as": file})

    modules = _MODULES[arch]()
    for key, tensor in state.items():
        # A ConvBNReLU of theirs maps onto a ConvBNAct of ours with the same children.
        out.take(key, tensor, modules)
    complete(out, modules, f"CoinCheung/BiSeNet {_NAMES[arch]}")
    if arch == "bisenetv2":
        for key in state:
            if key.startswith(_AUX_V2):
                out.dropped[key] = ("booster head (training only; its layout is not ours, "
                                    "so the model is built with aux_heads=False)")
    return out



def published() -> list[dict[str, Any]]:
    """Their README's checkpoints and single-scale val mIoU (`edgeseg models --pretrained`)."""
    return [{"model": arch, "variant": _NAMES[arch], "classes": classes,
             "dataset": _DATASETS[classes], "input": "x".join(map(str, _EVAL[classes][0])),
             "miou": miou[0] / 100, "file": file}
            for (arch, classes), (file, miou) in _README.items()]
