"""The engine-faults rule: every quantized layer is run alone in an engine with its INT8
kernels (int8.py checks both CPU engines for the targets judged in kernels) and compared with
the Q/DQ arithmetic as written (ONNX Runtime with its fused kernels off). A layer whose
kernel output strays from it by more than FAULT_TOLERANCE of the layer's output range is a
fault of that engine on this CPU, not a rounding: it stays float, and meta.json records the
layer, its error, the engine's version and the host's ISA.

Why a check and not a list: engines have kernel bugs that depend on the CPU and the layer's
shape. Found this way: OpenVINO 2026.4.1's CPU plugin on an AMX host (Sapphire Rapids:
avx512_vnni, avx512_bf16, amx_int8)
computes INT8 convolutions with 4x4 kernels at stride 4 and 32 or 48 input channels, or 8x8
kernels with 16 to 48, wrongly (output error above 100% of the output range); the same graph
is exact with oneDNN limited to AVX-512 VNNI or AVX2 (ONEDNN_MAX_CPU_ISA). SegFormer-B0's
first spatial-reduction convolutions (8x8, stride 8, 32 channels) are such layers: in
OpenVINO its INT8 graph lost 1.78 mIoU points on held-out images (0.09 in the reference
arithmetic); with them float, none. A sound kernel runs a layer within a rounding of the
reference: on the ten families' INT8 graphs for the two CPU-kernel targets (same
host) the largest error of any other layer was 1.35% of its range in OpenVINO and 0.78% in
ONNX Runtime; the faults were 105-219%.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner
from edgeseg.quant.qdq import (
    const_map,
    consumer_map,
    image_shapes,
    producer_map,
    quantized_compute_nodes,
)

# A layer is faulty when max|kernel - reference| exceeds this share of max|reference|.
FAULT_TOLERANCE = 0.1
# A difference of this many steps of a layer's output grid is a rounding, never a fault: on a
# layer whose outputs span only a few steps, one step is a large share of the range.
ROUNDING_STEPS = 3
# Activations ORT folds into the integer kernel before the output's QuantizeLinear.
_FOLDED = ("Relu", "Clip")


@dataclass(frozen=True)
class Layer:
    """One quantized layer as a graph of its own: the compute node, the Q/DQ around it, its
    weights; inputs are the float tensors its QuantizeLinear nodes read, each with the range
    its quantization grid spans."""
    node: str
    model: object  # onnx.ModelProto
    inputs: dict[str, tuple[list[int], float, float]]  # name -> (shape, low, high)
    out_step: float = 0.0  # the output grid's step when the output is quantized, else 0


def _grid(q_node, consts) -> tuple[float, float] | None:
    """The real-valued range a per-tensor QuantizeLinear's grid spans."""
    from onnx import numpy_helper

    if q_node.input[1] not in consts:
        return None
    scale = numpy_helper.to_array(consts[q_node.input[1]]).astype(np.float64)
    zp = (numpy_helper.to_array(consts[q_node.input[2]])
          if len(q_node.input) > 2 and q_node.input[2] in consts else np.uint8(0))
    if scale.size != 1:
        return None
    info = np.iinfo(zp.dtype)
    z = float(zp.reshape(-1)[0])
    s = float(scale.reshape(-1)[0])
    return (info.min - z) * s, (info.max - z) * s


def _step(q_node, consts) -> float:
    """The step of a per-tensor QuantizeLinear's grid (its scale), else 0."""
    from onnx import numpy_helper

    scale = consts.get(q_node.input[1])
    if scale is None:
        return 0.0
    values = numpy_helper.to_array(scale).reshape(-1)
    return float(values[0]) if values.size == 1 else 0.0


def layers(model) -> list[Layer]:
    """Every quantized compute node of the Q/DQ `model` that can be cut out on its own
    (shapes known, activations quantized per tensor), in graph order."""
    from onnx import helper

    graph = model.graph
    consts, producers = const_map(graph), producer_map(graph)
    readers, shapes = consumer_map(graph), image_shapes(model)
    out = []
    for name in quantized_compute_nodes(model):
        node = next(n for n in graph.node if n.name == name)
        nodes, inputs, ok = [node], {}, True
        for t in dict.fromkeys(node.input):  # MatMul(x, x) reads one tensor twice
            if not t or t in consts or getattr(producers.get(t), "op_type", "") == "Constant":
                continue
            dq = producers.get(t)
            if dq is None or dq.op_type != "DequantizeLinear":
                ok = ok and t in shapes
                if ok:
                    inputs[t] = (shapes[t], -1.0, 1.0)
                continue
            nodes.insert(0, dq)
            if dq.input[0] in consts:
                continue
            qn = producers.get(dq.input[0])
            grid = _grid(qn, consts) if qn is not None and qn.op_type == "QuantizeLinear" \
                else None
            if grid is None or qn.input[0] not in shapes:
                ok = False
                break
            nodes.insert(0, qn)
            inputs[qn.input[0]] = (shapes[qn.input[0]], *grid)
        if not ok or not inputs:
            continue
        last = node
        nxt = readers.get(last.output[0], [])
        if len(nxt) == 1 and nxt[0].op_type in _FOLDED:
            after = readers.get(nxt[0].output[0], [])
            if len(after) == 1 and after[0].op_type == "QuantizeLinear":
                nodes.append(nxt[0])
                last, nxt = nxt[0], after
        out_step = 0.0
        if len(nxt) == 1 and nxt[0].op_type == "QuantizeLinear":
            dq_out = readers.get(nxt[0].output[0], [])
            if len(dq_out) == 1 and dq_out[0].op_type == "DequantizeLinear":
                nodes += [nxt[0], dq_out[0]]
                last = dq_out[0]
                out_step = _step(nxt[0], consts)
        used = {i for n in nodes for i in n.input}
        nodes = [producers[i] for i in sorted(used) if i in producers
                 and producers[i].op_type == "Constant"] + nodes  # Clip's bounds, shapes
        g = helper.make_graph(
            nodes, f"layer-{name}",
            [helper.make_tensor_value_info(t, 1, s) for t, (s, _, _) in inputs.items()],
            [helper.make_tensor_value_info(last.output[0], 1, shapes.get(last.output[0]))],
            [c for c in graph.initializer if c.name in used])
        m = helper.make_model(g, opset_imports=list(model.opset_import))
        m.ir_version = model.ir_version
        out.append(Layer(name, m, inputs, out_step))
    return out


def _run(engine: str, path: Path, feeds: dict, threads: int | None, int8_kernels: bool):
    with get_runner(engine, path, threads=threads, int8_kernels=int8_kernels) as r:
        return next(iter(r.infer(feeds).values()))


def faults(model, engine: str, *, threads: int | None = None, seed: int = 0,
           tolerance: float = FAULT_TOLERANCE, progress=None) -> list[dict]:
    """[{"node", "error"}] for each quantized layer of `model` that `engine`'s INT8 kernels
    compute more than `tolerance` (share of the output range) and more than ROUNDING_STEPS
    steps of its output grid away from the reference Q/DQ arithmetic, on inputs spread over
    each quantization grid. A layer that cannot be run alone is left as it is (the check is
    a diagnostic, never a reason to fail). `progress(i, n)` is called per layer."""
    import onnx

    found = []
    rng = np.random.default_rng(seed)
    cut = layers(model)
    with tempfile.TemporaryDirectory(prefix="edgeseg-kernels-") as tmp:
        for i, layer in enumerate(cut):
            path = Path(tmp) / f"{i}.onnx"
            onnx.save(layer.model, str(path))
            feeds = {t: rng.uniform(lo, hi, shape).astype(np.float32)
                     for t, (shape, lo, hi) in layer.inputs.items()}
            try:
                ref = _run("onnxruntime", path, feeds, threads, int8_kernels=False)
                got = _run(engine, path, feeds, threads, int8_kernels=True)
            except Exception:  # an engine that cannot load the cut layer: not checked
                continue
            if ref.size == 0 or ref.shape != got.shape:
                continue
            scale = float(np.abs(ref).max()) or 1.0
            worst = float(np.abs(got.astype(np.float64) - ref).max())
            error = worst / scale
            if error > tolerance and worst > ROUNDING_STEPS * layer.out_step * (1 + 1e-6):
                found.append({"node": layer.node, "error": round(error, 4)})
            if progress is not None:
                progress(i + 1, len(cut))
    return found
