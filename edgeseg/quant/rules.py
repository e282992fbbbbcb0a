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
- float-tail and padded-pools: edits after quantization (qdq.float_tail, int8.quantize_graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeseg.quant.qdq import COMPUTE_OPS

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
    producers = {o: n for n in model.graph.node for o in n.output}
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


def plan(model, target: str) -> Plan:
    """The placement for `target` on `model` (the FP32 graph about to be quantized)."""
    p = Plan()
    exact = comparison_paths(model)
    if exact:
        p.exclude.update(exact)
        p.rules.append({"rule": "exact-comparisons", "nodes": exact,
                        "why": "comparisons and the values they compare stay float: rounding "
                               "makes near-equal values equal"})
    types = sorted({n.op_type for n in model.graph.node})
    if target in ("tensorrt", "openvino"):
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
    return p
