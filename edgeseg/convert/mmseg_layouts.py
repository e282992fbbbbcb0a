"""Module maps of open-mmlab/mmsegmentation's models: their module path -> ours, for every
module that owns tensors (edgeseg/convert/mmseg.py converts with them). A ConvModule of
theirs (children conv, bn) maps onto a ConvBNAct of ours (children conv, bn) through its
parent's name (convert.map_key)."""

from __future__ import annotations

from typing import Any

from edgeseg.convert import ConversionError

# ResNet blocks per stage, by depth (BasicBlocks for 18, Bottlenecks otherwise)
BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def resnet_depth(state: dict[str, Any], prefix: str, what: str,
                 depths: tuple[int, ...] = (50, 101)) -> int:
    """ResNet depth from the number of blocks under `prefix` (their layer3), one of
    `depths`; else a ConversionError naming what was expected."""
    n = len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})
    for depth in depths:
        if BLOCKS[depth][2] == n:
            return depth
    expected = " or ".join(f"{BLOCKS[d][2]} (ResNet-{d})" for d in depths)
    raise ConversionError(f"mmsegmentation {what}: layer3 has {n} blocks; expected {expected}")


def resnet_v1c_modules(theirs: str, ours: str, depth: int) -> dict[str, str]:
    """ResNetV1c (three 3x3 stem convs as a Sequential of conv, bn, relu) onto our ResNet
    with deep_stem=True."""
    m = {f"{theirs}.stem.{3 * i}": f"{ours}.stem.{i}.conv" for i in range(3)}
    m |= {f"{theirs}.stem.{3 * i + 1}": f"{ours}.stem.{i}.bn" for i in range(3)}
    convs = (1, 2) if depth == 18 else (1, 2, 3)
    for layer, n in enumerate(BLOCKS[depth], 1):
        for block in range(n):
            t, o = f"{theirs}.layer{layer}.{block}", f"{ours}.layer{layer}.{block}"
            for i in convs:
                m |= {f"{t}.conv{i}": f"{o}.conv{i}.conv", f"{t}.bn{i}": f"{o}.conv{i}.bn"}
            # the first block changes the width, except a ResNet-18's layer1 (64 -> 64)
            if block == 0 and (layer > 1 or depth != 18):
                m |= {f"{t}.downsample.0": f"{o}.downsample.conv",
                      f"{t}.downsample.1": f"{o}.downsample.bn"}
    return m


def bisenetv2_modules() -> dict[str, str]:
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


def deeplabv3plus_modules(depth: int) -> dict[str, str]:
    m = resnet_v1c_modules("backbone", "backbone", depth)
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


def bisenetv1_modules() -> dict[str, str]:
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


def icnet_modules(depth: int) -> dict[str, str]:
    """Their ICNet backbone (a ResNetV1c under backbone.backbone), ICNeck and FCN heads onto
    our icnet with layout="mmseg"."""
    b = "backbone"
    m = resnet_v1c_modules(f"{b}.backbone", "backbone", depth)
    m |= {f"{b}.psp_modules.{i}.1": f"ppm.stages.{i}" for i in range(4)}  # (pool, ConvModule)
    m |= {f"{b}.conv_sub1.{i}": f"sub1.{i}" for i in range(3)}
    m |= {f"{b}.psp_bottleneck": "ppm.bottleneck", f"{b}.conv_sub2": "reduce2",
          f"{b}.conv_sub4": "reduce4",
          "decode_head.convs.0": "head_conv", "decode_head.conv_seg": "classifier"}
    # their first auxiliary head reads cff_24's coarse conv, the second cff_12's
    for i, (theirs, ours) in enumerate((("cff_24", "cff24"), ("cff_12", "cff12"))):
        m |= {f"neck.{theirs}.conv_low": f"{ours}.coarse",
              f"neck.{theirs}.conv_high": f"{ours}.fine",
              f"auxiliary_head.{i}.convs.0": f"{ours}.aux_head.0",
              f"auxiliary_head.{i}.conv_seg": f"{ours}.aux_head.1"}
    return m
