"""mmsegmentation's ICNet forward written as plain torch functions over their state-dict
names, from the facts of their code (mmseg/models/backbones/icnet.py, resnet.py (ResNetV1c,
contract_dilation), necks/ic_neck.py, decode_heads/psp_head.py (PPM), fcn_head.py and the
EncoderDecoder's final resize); mmcv, which their modules need, is not installed here. The
tests run it against our icnet(layout="mmseg") with the converted weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeseg.convert.mmseg_layouts import BLOCKS


def _bn(state, p, x):
    return F.batch_norm(x, state[f"{p}.running_mean"], state[f"{p}.running_var"],
                        state[f"{p}.weight"], state[f"{p}.bias"], False, 0.0, 1e-5)


def _conv_module(state, p, x, stride=1, padding=0, dilation=1):
    """mmcv ConvModule with BN and ReLU: conv (no bias), bn, relu."""
    y = F.conv2d(x, state[f"{p}.conv.weight"], None, stride, padding, dilation)
    return F.relu(_bn(state, f"{p}.bn", y))


def _bilinear(x, size=None, scale=None):
    return F.interpolate(x, size=size, scale_factor=scale, mode="bilinear",
                         align_corners=False)


def _res_layer(state, p, x, depth, layer, stride, dilation):
    first = dilation // 2 if dilation > 1 else dilation  # contract_dilation=True
    for j in range(BLOCKS[depth][layer - 1]):
        b, s, d = f"{p}.layer{layer}.{j}", stride if j == 0 else 1, first if j == 0 else dilation
        if depth == 18:  # BasicBlock: only conv1 is dilated
            y = F.relu(_bn(state, f"{b}.bn1", F.conv2d(x, state[f"{b}.conv1.weight"], None,
                                                        s, d, d)))
            y = _bn(state, f"{b}.bn2", F.conv2d(y, state[f"{b}.conv2.weight"], None, 1, 1))
        else:  # Bottleneck, style "pytorch": the stride on the 3x3 conv
            y = F.relu(_bn(state, f"{b}.bn1", F.conv2d(x, state[f"{b}.conv1.weight"])))
            y = F.relu(_bn(state, f"{b}.bn2", F.conv2d(y, state[f"{b}.conv2.weight"], None,
                                                        s, d, d)))
            y = _bn(state, f"{b}.bn3", F.conv2d(y, state[f"{b}.conv3.weight"]))
        identity = x
        if f"{b}.downsample.0.weight" in state:
            identity = _bn(state, f"{b}.downsample.1",
                           F.conv2d(x, state[f"{b}.downsample.0.weight"], None, s))
        x = F.relu(y + identity)
    return x


def _cff(state, p, low, high):
    low = _conv_module(state, f"{p}.conv_low", _bilinear(low, high.shape[-2:]), 1, 2, 2)
    return F.relu(low + _conv_module(state, f"{p}.conv_high", high))


def forward(state: dict[str, torch.Tensor], x: torch.Tensor, depth: int) -> torch.Tensor:
    """Their EncoderDecoder in test mode ("whole"): logits at the input size."""
    b, r = "backbone", "backbone.backbone"
    sub1 = x
    for i in range(3):
        sub1 = _conv_module(state, f"{b}.conv_sub1.{i}", sub1, 2, 1)
    y = _bilinear(x, scale=0.5)
    for i in range(3):  # ResNetV1c stem: Sequential(conv, bn, relu) x 3
        y = F.conv2d(y, state[f"{r}.stem.{3 * i}.weight"], None, 2 if i == 0 else 1, 1)
        y = F.relu(_bn(state, f"{r}.stem.{3 * i + 1}", y))
    y = F.max_pool2d(y, 3, 2, 1, ceil_mode=True)  # ICNet replaces the ResNet's max-pool
    y = _res_layer(state, r, y, depth, 1, 1, 1)
    y = _res_layer(state, r, y, depth, 2, 2, 1)
    sub2 = _conv_module(state, f"{b}.conv_sub2", y)
    y = _bilinear(y, scale=0.5)
    y = _res_layer(state, r, y, depth, 3, 1, 2)
    y = _res_layer(state, r, y, depth, 4, 1, 4)
    pooled = [_bilinear(_conv_module(state, f"{b}.psp_modules.{i}.1",
                                     F.adaptive_avg_pool2d(y, scale)), y.shape[-2:])
              for i, scale in enumerate((1, 2, 3, 6))]
    y = _conv_module(state, f"{b}.psp_bottleneck", torch.cat([*pooled, y], 1), 1, 1)
    sub4 = _conv_module(state, f"{b}.conv_sub4", y)
    y = _cff(state, "neck.cff_12", _cff(state, "neck.cff_24", sub4, sub2), sub1)
    y = _conv_module(state, "decode_head.convs.0", y, 1, 1)
    y = F.conv2d(y, state["decode_head.conv_seg.weight"], state["decode_head.conv_seg.bias"])
    return _bilinear(y, x.shape[-2:])
