"""Reading and editing explicit Q/DQ graphs (ONNX QuantizeLinear / DequantizeLinear).

The quantizer itself is ONNX Runtime's (see int8.py); these helpers inspect what it wrote
(zero points, which layers are quantized) and make the one edit it cannot: giving a single
consumer its float input back when the tensor it reads stays quantized for other consumers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# Ops that carry the arithmetic: the "layers" a sensitivity search keeps in float.
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def const_map(graph) -> dict:
    return {t.name: t for t in graph.initializer}


def producer_map(graph) -> dict:
    return {o: n for n in graph.node for o in n.output}


def consumer_map(graph) -> dict[str, list]:
    """{tensor: the nodes that read it}."""
    out: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


# metadata_props key: a dynamic-size graph's input shape at its nominal size (JSON list),
# set by the quantizer so that shape questions about it are answered at that size
NOMINAL_SHAPE = "edgeseg.nominal_input_shape"


def set_nominal_shape(model, shape: list[int]) -> None:
    import json

    for p in model.metadata_props:
        if p.key == NOMINAL_SHAPE:
            p.value = json.dumps(shape)
            return
    model.metadata_props.add(key=NOMINAL_SHAPE, value=json.dumps(shape))


def _at_nominal_size(model):
    """A dynamic-size graph (NOMINAL_SHAPE set) with its shape arithmetic folded at the
    nominal size (onnxsim; tensor names of the ops that remain are kept), else `model`: a
    computed Pad or Resize size has no static shape until its input size is fixed."""
    import json

    shape = next((json.loads(p.value) for p in model.metadata_props
                  if p.key == NOMINAL_SHAPE), None)
    if shape is None or len(model.graph.input) != 1:
        return model
    import onnxsim

    try:
        folded, ok = onnxsim.simplify(model, overwrite_input_shapes={
            model.graph.input[0].name: shape})
    except Exception:  # best effort: the unfolded graph still gives the shapes it can
        return model
    return folded if ok else model


def image_shapes(model) -> dict[str, list[int]]:
    """{tensor: its shape for one image} from shape inference, for the tensors whose every
    size after the (maybe symbolic) batch axis is known; the batch counts as 1 (a
    dynamic-size graph: at its nominal size). {} when inference fails."""
    import onnx

    try:
        g = onnx.shape_inference.infer_shapes(_at_nominal_size(model)).graph
    except Exception:  # best effort: callers treat unknown shapes as "cannot tell"
        return {}
    out = {}
    for v in (*g.input, *g.value_info, *g.output):
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
        if dims and all(d > 0 for d in dims[1:]):
            out[v.name] = [1] + dims[1:]
    return out


def is_quantized(model) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv",
                             "ConvInteger", "MatMulInteger") for n in model.graph.node)


def zero_points(model) -> list[tuple[str, str, np.ndarray]]:
    """(node name, zero point dtype, values) of every Q/DQ node with a zero point input."""
    from onnx import helper, numpy_helper

    consts = const_map(model.graph)
    out = []
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 \
                and n.input[2] in consts:
            zp = consts[n.input[2]]
            out.append((n.name, helper.tensor_dtype_to_np_dtype(zp.data_type).name,
                        numpy_helper.to_array(zp)))
    return out


def quantized_compute_nodes(model) -> list[str]:
    """Compute nodes whose weight arrives through a DequantizeLinear (quantized layers)."""
    producers = producer_map(model.graph)
    out = []
    for n in model.graph.node:
        if n.op_type in COMPUTE_OPS and len(n.input) > 1:
            p = producers.get(n.input[1])
            if p is not None and p.op_type == "DequantizeLinear":
                out.append(n.name)
    return out


def padded_average_pools(model) -> list[str]:
    """AveragePool nodes with non-zero padding. On an input quantized with a non-zero zero
    point, a backend that pools in the integer domain pads with integer 0, which is the
    real value -zero_point*scale, not 0: border pixels go wrong (seen with OpenVINO here)."""
    out = []
    for n in model.graph.node:
        if n.op_type == "AveragePool":
            pads = next((list(a.ints) for a in n.attribute if a.name == "pads"), [])
            auto = next((a.s.decode() for a in n.attribute if a.name == "auto_pad"), "NOTSET")
            if any(pads) or auto not in ("NOTSET", "VALID"):
                out.append(n.name)
    return out


def dequantized_inputs(model, node_name: str) -> list[tuple[int, str, bool]]:
    """(input index, DequantizeLinear output name, zero point is non-zero) for the inputs of
    `node_name` that come out of a DequantizeLinear."""
    from onnx import numpy_helper

    consts, producers = const_map(model.graph), producer_map(model.graph)
    node = next(n for n in model.graph.node if n.name == node_name)
    out = []
    for i, name in enumerate(node.input):
        p = producers.get(name)
        if p is not None and p.op_type == "DequantizeLinear":
            zp = consts.get(p.input[2]) if len(p.input) > 2 else None
            nonzero = zp is not None and bool(numpy_helper.to_array(zp).any())
            out.append((i, name, nonzero))
    return out


def keep_float(model, node_names: Iterable[str]) -> list[str]:
    """Give each named node float inputs: an activation read through Q->DQ is read before the
    QuantizeLinear; a weight stored quantized gets a float copy. Other consumers of the same
    tensors keep their Q/DQ. Returns the rewired input names. Unused nodes are then pruned."""
    from onnx import numpy_helper

    graph = model.graph
    consts, producers = const_map(graph), producer_map(graph)
    wanted = set(node_names)
    rewired = []
    for node in graph.node:
        if node.name not in wanted:
            continue
        for i, name in enumerate(node.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producers.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[i] = q.input[0]
            elif dq.input[0] in consts:
                w = numpy_helper.to_array(consts[dq.input[0]]).astype(np.float32)
                scale = numpy_helper.to_array(consts[dq.input[1]]).astype(np.float32)
                zp = (numpy_helper.to_array(consts[dq.input[2]]).astype(np.float32)
                      if len(dq.input) > 2 and dq.input[2] else np.zeros_like(scale))
                axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                if scale.ndim == 1 and scale.size > 1:
                    shape = [1] * w.ndim
                    shape[axis] = scale.size
                    scale, zp = scale.reshape(shape), zp.reshape(shape)
                fname = f"{dq.input[0]}_float_for_{node.name}"
                graph.initializer.append(numpy_helper.from_array((w - zp) * scale, fname))
                node.input[i] = fname
            else:
                continue
            rewired.append(name)
    prune(model)
    return rewired


def float_tail(model, float_ops: Iterable[str] = ()) -> list[str]:
    """Remove Q->DQ pairs whose output is only read as a graph output or by `float_ops`
    (the class decision: ArgMax, Softmax). The last layer then computes in INT8 and writes
    float logits, as TensorRT runs a final convolution with no QuantizeLinear after it;
    rounding the logits to 256 levels would only create ties for the argmax. Returns the
    tensors made float again."""
    graph = model.graph
    producers = producer_map(graph)
    outputs = {o.name for o in graph.output}
    consumers = consumer_map(graph)
    float_ops = set(float_ops)
    freed = []
    for dq in list(graph.node):
        if dq.op_type != "DequantizeLinear":
            continue
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or len(consumers.get(q.output[0], [])) != 1:
            continue
        readers = consumers.get(dq.output[0], [])
        if not (dq.output[0] in outputs or readers) or any(
                r.op_type not in float_ops for r in readers):
            continue
        src, dst = q.input[0], dq.output[0]
        if dst in outputs:
            # The producer writes the graph output's name directly; others read it there.
            for n in graph.node:
                n.output[:] = [dst if o == src else o for o in n.output]
                n.input[:] = [dst if i == src else i for i in n.input]
        else:
            for r in readers:
                r.input[:] = [src if i == dst else i for i in r.input]
        graph.node.remove(q)
        graph.node.remove(dq)
        freed.append(src)
    prune(model)
    return freed


def prune(model) -> None:
    """Drop nodes and initializers nothing reads any more."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = needed | {i.name for i in graph.input}
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
