"""A toy convert source for the framework tests: "their" BiSeNetV2 is ours with every key
under `net.`, plus an auxiliary head they train with and we drop."""

from __future__ import annotations

import functools

import torch

from edgeseg.convert import Converted
from edgeseg.data.classes import VOC
from edgeseg.data.transforms import Preprocess
from edgeseg.models import create_model


@functools.cache
def _ours() -> dict:
    torch.manual_seed(0)
    model = create_model("bisenetv2", num_classes=VOC.num_classes)
    return {k: v.clone() for k, v in model.state_dict().items()}


RENAMES = {f"net.{k}": k for k in _ours()}


def published_state() -> dict:
    state = {theirs: _ours()[ours].clone() for theirs, ours in RENAMES.items()}
    state["aux_head.conv.weight"] = torch.zeros(21, 8, 1, 1)
    return state


def convert(state: dict) -> Converted:
    out = Converted(model="bisenetv2", options={}, classes=VOC,
                    preprocess=Preprocess(size=(64, 128)), state_dict={}, variant="toy")
    for key, tensor in state.items():
        if key in RENAMES:
            out.state_dict[RENAMES[key]] = tensor
            out.used.add(key)
        elif key.startswith("aux_head."):
            out.dropped[key] = "auxiliary head (training only)"
    return out
