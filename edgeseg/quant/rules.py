"""The quantizer's rules: where Q/DQ goes. Each rule is a graph pattern that applies to any
model with it, never a model name, and every rule that fires is recorded in meta.json
(`calibration.rules`: the rule, why, and the nodes it touched).

- exact-comparisons: a comparison (Equal, Less, ...) and the ops that only move, select or
  repeat values on the way into it read float. Quantized, near-equal values become equal:
  SegNet's max-unpooling finds each window's maximum by comparing a tensor with its
  max-pooled copy, and rounding both to 256 levels makes ties that move values to the wrong
  positions.
- compute-inputs (TensorRT and OpenVINO targets): Q/DQ on the inputs of the layers that carry
  the arithmetic (convolutions, matrix products) and of max-pooling, none on outputs or on
  element-wise ops. That is where TensorRT's and OpenVINO's INT8 kernels quantize anyway;
  every extra Q/DQ pair (before a Relu, on an Add, a Concat or a broadcast) is one more
  rounding the FP32 model never had.
- integer-kernels (ONNX Runtime target): Q/DQ on the inputs and outputs of the layers ONNX
  Runtime runs as integer kernels (convolutions, matrix products, max-pooling) and of the
  activations it folds into them (Relu, Clip): ORT fuses a convolution into its integer
  kernel only between a DequantizeLinear and a QuantizeLinear. Element-wise ops,
  concatenations, resizes and average pools read and write float: quantized, each adds a
  rounding for little speed (ORT's own placement quantizes them all: ICNet lost 0.38 mIoU
  point on held-out images with it, 0.13 with this rule, at 1.51x and 1.49x FP32 speed, on
  an avx512_vnni/avx512_bf16 host).
- image-convs: the convolutions that read the image (the graph input, through normalisation,
  resizing or padding only; at most IMAGE_CHANNELS input channels) stay float when together
  they carry at most IMAGE_CONVS_MAX_SHARE of the graph's multiply-accumulates. The image is
  8-bit data already: normalised and rounded again to 256 levels of one per-tensor scale, it
  lands on a grid that aliases with its own, and a 3-channel kernel has few weights to
  average its weights' rounding over; keeping them float removes one rounding at the start
  of every path (the training data's val split, avx512_vnni/avx512_bf16 host: agreement
  with FP32 up on 17 of the 18 baseline-target pairs, unchanged on one; SegNet tensorrt
  target drop 0.14 -> 0.08 mIoU point). The bound is for speed: BiSeNetV1's two 7x7 image
  convolutions are 8% of its arithmetic, and in float they cost a third of its INT8 speed
  (512x1024, same host: OpenVINO 6.55x -> 4.36x FP32, ONNX Runtime 2.30x -> 1.56x).
  `--quantize-image-convs` turns the rule off.
- attention-matmuls: a matrix product of two activations (attention's queries x keys and
  probabilities x values; no weight operand) stays float, as do the Softmax and
  LayerNormalization around it (no rule quantizes those). Per-tensor INT8 cannot hold both
  a softmax's many near-zero probabilities and its few large ones, nor the outlier channels
  of queries and keys; these products carry a small share of an efficient-attention
  model's arithmetic (SegFormer-B0: its reduced keys and values), the projections around
  them (MatMul/Gemm with weights) are quantized as usual.
- float-tail and padded-pools: edits after quantization (qdq.float_tail, int8.quantize_graph).
- engine-faults: layers the target's engine miscomputes on this CPU stay float (kernels.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeseg.core.capabilities import TARGETS
from edgeseg.quant.qdq import COMPUTE_OPS, const_map, image_shapes, producer_map

COMPARISON_OPS = ("Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual")
# Ops whose outputs are values of their first input, moved, selected or repeated.
SELECTING_OPS = ("MaxPool", "Tile", "Expand", "Reshape", "Unsqueeze", "Squeeze", "Flatten",
                 "Transpose", "Identity", "Slice", "Split", "Gather", "Concat",
                 "DepthToSpace", "SpaceToDepth", "Resize", "Upsample")
# Activations that ONNX Runtime's quantizer drops when the tensor before them is quantized
# (the quantized range clips instead): a comparison reading one must read the real thing.
CLIPPING_OPS = ("Relu", "Clip")
# The compute-inputs placement: ops whose inputs get Q/DQ.
INPUT_QUANTIZED_OPS = (*COMPUTE_OPS, "MaxPool")
# The integer-kernels placement: ops quantized on inputs and outputs.
INTEGER_KERNEL_OPS = (*INPUT_QUANTIZED_OPS, *CLIPPING_OPS)
# The image-convs rule: a convolution reading the graph input with at most this many input
# channels reads an image (gray, RGB, RGBA).
IMAGE_CHANNELS = 4
# ... and stays float when the image convolutions carry at most this share of the MACs.
IMAGE_CONVS_MAX_SHARE = 0.01


@dataclass
class Plan:
    """What quantize_static is told: the op types it may quantize (None: all it knows),
    nodes it must leave in float, its extra options, and the rules that fired."""

    op_types: list[str] | None = None
    exclude: set[str] = field(default_factory=set)
    extra_options: dict = field(default_factory=dict)
    rules: list[dict] = field(default_factory=list)


def comparison_paths(model) -> list[str]:
    """Comparison nodes, the selecting ops on the way into them and the clipping activation
    (if any) that starts that way, in graph order."""
    producers = producer_map(model.graph)
    found: set[str] = set()
    for node in model.graph.node:
        if node.op_type not in COMPARISON_OPS:
            continue
        found.add(node.name)
        stack = list(node.input)
        while stack:
            p = producers.get(stack.pop())
            if p is None or p.name in found:
                continue
            if p.op_type in SELECTING_OPS:
                found.add(p.name)
                stack.append(p.input[0])
            elif p.op_type in CLIPPING_OPS:
                found.add(p.name)
    return [n.name for n in model.graph.node if n.name in found]


def macs(model) -> dict[str, int] | None:
    """Multiply-accumulates of each compute node per image, from the shapes that shape
    inference gives; None when one of them is unknown."""
    # The batch axis (maybe symbolic) counts as 1: it cancels in a share. Unknown shapes
    # keep the rule from firing.
    shapes = image_shapes(model)
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    out = {}
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        a, b, y = (shapes.get(node.input[0]), shapes.get(node.input[1]),
                   shapes.get(node.output[0]))
        if not a or not b or not y or not all(a + b + y):
            return None
        per = int(np.prod(b[1:])) if node.op_type.startswith("Conv") else a[-1]
        out[node.name] = int(np.prod(a if node.op_type == "ConvTranspose" else y)) * per
    return out


def image_convs(model) -> tuple[list[str], float]:
    """(the convolutions whose data input comes from a graph input through non-compute ops
    only, with at most IMAGE_CHANNELS input channels, in graph order; their share of the
    graph's MACs, 1.0 when shapes are unknown)."""
    producers, weights = producer_map(model.graph), const_map(model.graph)
    inputs = {i.name for i in model.graph.input}
    found = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose") or len(node.input) < 2:
            continue
        shape = list(weights[node.input[1]].dims) if node.input[1] in weights else None
        if shape is None or len(shape) < 2:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        channels = shape[0] if node.op_type == "ConvTranspose" else shape[1] * group
        if channels > IMAGE_CHANNELS:
            continue
        tensor = node.input[0]
        while tensor in producers and producers[tensor].op_type not in COMPUTE_OPS:
            tensor = producers[tensor].input[0]
        if tensor in inputs:
            found.append(node.name)
    if not found:
        return [], 0.0
    counts = macs(model)
    if not counts:
        return found, 1.0
    return found, sum(counts[n] for n in found) / sum(counts.values())


def activation_matmuls(model) -> list[str]:
    """MatMul nodes neither of whose operands is a weight (an initializer, or a constant
    reached through DequantizeLinear/Cast/Transpose/Reshape)."""
    consts = const_map(model.graph)
    prods = producer_map(model.graph)
    consts.update({o: None for n in model.graph.node if n.op_type == "Constant"
                   for o in n.output})

    def is_weight(name: str, depth: int = 0) -> bool:
        if name in consts:
            return True
        node = prods.get(name)
        if node is None or depth > 4 or node.op_type not in (
                "DequantizeLinear", "Cast", "Transpose", "Reshape", "Identity"):
            return False
        return is_weight(node.input[0], depth + 1)

    return [n.name for n in model.graph.node if n.op_type == "MatMul"
            and not any(is_weight(i) for i in n.input[:2])]


def plan(model, target: str, *, image_convs_float: bool = True) -> Plan:
    """The placement for `target` on `model` (the FP32 graph about to be quantized);
    `image_convs_float=False` quantizes the convolutions that read the image too."""
    p = Plan()
    exact = comparison_paths(model)
    if exact:
        p.exclude.update(exact)
        p.rules.append({"rule": "exact-comparisons", "nodes": exact,
                        "why": "comparisons and the values they compare stay float: rounding "
                               "makes near-equal values equal"})
    types = sorted({n.op_type for n in model.graph.node})
    if TARGETS[target].placement == "compute-inputs":
        p.op_types = [t for t in INPUT_QUANTIZED_OPS if t in types]
        p.extra_options["OpTypesToExcludeOutputQuantization"] = types
        p.rules.append({"rule": "compute-inputs", "op_types": p.op_types,
                        "why": "Q/DQ only where the INT8 kernels quantize: inputs of "
                               "convolutions, matrix products and max-pooling"})
    else:
        p.op_types = [t for t in INTEGER_KERNEL_OPS if t in types]
        p.rules.append({"rule": "integer-kernels", "op_types": p.op_types,
                        "why": "Q/DQ on inputs and outputs of the layers ONNX Runtime runs "
                               "as integer kernels (it fuses one only between "
                               "DequantizeLinear and QuantizeLinear); element-wise ops, "
                               "concatenations and resizes stay float"})
    attention = activation_matmuls(model)
    if attention:
        p.exclude.update(attention)
        p.rules.append({"rule": "attention-matmuls", "nodes": attention,
                        "why": "matrix products of two activations (attention scores and "
                               "their weighted sums) stay float: per-tensor INT8 loses the "
                               "small softmax probabilities and the outlier channels"})
    first, share = image_convs(model) if image_convs_float else ([], 0.0)
    if first and share <= IMAGE_CONVS_MAX_SHARE:
        p.exclude.update(first)
        p.rules.append({"rule": "image-convs", "nodes": first, "mac_share": round(share, 5),
                        "why": "the convolutions that read the image stay float: it is 8-bit "
                               "data already, rounding it again to another grid aliases, "
                               f"and they carry at most {IMAGE_CONVS_MAX_SHARE:.0%} of the "
                               "arithmetic"})
    return p
