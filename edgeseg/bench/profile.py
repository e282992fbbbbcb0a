"""Where an artifact's time goes, from the engine's own profiler: per-node times grouped
(conv INT8, conv float, resize, Q/DQ, argmax, layout, other), the float convolutions of an
INT8 graph matched against what quantize recorded keeping in float, and the achieved
GOP/s against this host's measured INT8 matrix-multiply peak in the same engine."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import numpy as np

from edgeseg.backends import model_file
from edgeseg.core.artifact import read_meta
from edgeseg.core.errors import EngineUnavailable
from edgeseg.core.preprocess import graph_input, input_preprocess

GROUPS = ("conv int8", "conv float", "resize", "q/dq", "argmax", "layout", "other")
_INT8_OPS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger",
             "MatMulIntegerToFloat", "QGemm", "DynamicQuantizeMatMul"}
_FLOAT_CONV_OPS = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedMatMul"}
# OpenVINO's (and ONNX's MatMul): the kernel's exec type says the precision
_CONV_NODES = {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul"}
_QDQ = {"QuantizeLinear", "DequantizeLinear", "FakeQuantize", "DynamicQuantizeLinear"}
_LAYOUT = {"Reorder", "ReorderInput", "ReorderOutput", "Transpose"}


def group_of(op: str, exec_type: str) -> str:
    """A node's group from its op type and (for OpenVINO) the kernel that ran it."""
    ex = exec_type.lower()
    if op in _INT8_OPS:
        return "conv int8"
    if op in _FLOAT_CONV_OPS:
        return "conv float"
    if op in _CONV_NODES:
        return "conv int8" if ("i8" in ex or "u8" in ex) else "conv float"
    if op in _QDQ or op.startswith("QLinear"):  # QLinearAdd, QLinearConcat, ...: Q/DQ work
        return "q/dq"
    if op in ("Resize", "Interpolate"):
        return "resize"
    if op in ("ArgMax", "TopK"):
        return "argmax"
    if op in _LAYOUT:
        return "layout"
    return "other"


def summarize(rows: list[dict]) -> dict:
    """{groups: {group: {ms, share, nodes}}, total_ms, float_convs and qdq_nodes: [{node, op,
    exec, ms}] slowest first}. A Q/DQ node here is one the engine ran on its own; those it
    folded into a convolution or an element-wise kernel have no row of their own."""
    total = sum(r["ms"] for r in rows) or 1e-9
    groups = {g: {"ms": 0.0, "share": 0.0, "nodes": 0} for g in GROUPS}
    listed: dict[str, list[dict]] = {"conv float": [], "q/dq": []}
    for r in rows:
        g = group_of(r["op"], r.get("exec", ""))
        groups[g]["ms"] += r["ms"]
        groups[g]["nodes"] += 1
        if g in listed:
            listed[g].append({"node": r["node"], "op": r["op"], "exec": r.get("exec", ""),
                              "ms": r["ms"]})
    for g in groups.values():
        g["share"] = g["ms"] / total
    return {"groups": groups, "total_ms": total,
            "float_convs": sorted(listed["conv float"], key=lambda r: -r["ms"]),
            "qdq_nodes": sorted(listed["q/dq"], key=lambda r: -r["ms"])}


def explain_float_convs(summary: dict, meta: dict, engine: str = "") -> list[dict]:
    """Each float convolution of an INT8 graph with why it is float: a layer quantize kept in
    float (the budget's fallback, --exclude-node, a rule such as image-convs: matched by node
    name, exactly or as the node's prefix); else, in ONNX Runtime with signed activations, its
    CPU kernels (they fuse Q/DQ convolutions into integer ones only with U8 activations);
    else a fusion the engine did not make."""
    cal = meta.get("calibration") or {}
    kept: dict[str, str] = {}
    for x in cal.get("float_layers") or ():
        kept[str(x.get("name", x)) if isinstance(x, dict) else str(x)] = (
            "kept in float by quantize (budget fallback)")
    for n in cal.get("excluded_nodes") or ():
        kept[str(n)] = "excluded from quantization (--exclude-node)"
    for rule in cal.get("rules") or ():
        for n in rule.get("nodes") or ():
            kept[str(n)] = f"kept in float by quantize's {rule.get('rule')} rule: {rule.get('why')}"
    signed = str(cal.get("activations", "")).startswith("int8")

    def why(node: str) -> str:
        for name, reason in kept.items():
            if node == name or node.startswith(name + "/") or node.startswith(name + "_"):
                return reason
        if engine == "onnxruntime" and signed:
            return (f"ONNX Runtime's CPU kernels fuse Q/DQ convolutions only with U8 "
                    f"activations; this graph (target {cal.get('target')}) has "
                    f"{cal.get('activations')} ones, so it runs them in float between Q/DQ "
                    "pairs: run it in OpenVINO, or quantize for the onnxruntime target")
        return ("no float layer recorded: the engine ran its Q/DQ pattern in float (a fusion "
                "the engine did not make)")

    return [{**c, "why": why(c["node"])} for c in summary["float_convs"]]


def profile_artifact(artifact: str | Path, engine: str, *, hint: str | None = None,
                     threads: int | None = None, runs: int = 5) -> dict:
    """Per-node rows of the engine's profiler on one noise frame, and their summary."""
    artifact = Path(artifact)
    meta = read_meta(artifact)
    h, w = meta["input"]["size"]
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    x = graph_input(meta["input"], input_preprocess(meta["input"]).resize_image(frame))
    inputs = {meta["input"]["name"]: x}
    package = importlib.import_module(f"edgeseg.backends.{engine}.profile")
    options = {"precision": hint} if hint else {}
    rows = package.profile(artifact / model_file(meta, engine), inputs, runs=runs,
                           threads=threads, **options)
    summary = summarize(rows)
    return {"engine": engine, "hint": hint, "precision": meta["precision"], "rows": rows,
            **summary,
            "float_convs": explain_float_convs(summary, meta, engine)
            if meta["precision"] == "int8" else summary["float_convs"]}


def int8_matmul_peak(engine: str, *, threads: int | None = None, n: int = 2048,
                     runs: int = 3, repeats: int = 7) -> float:
    """GOP/s of an n x n x n INT8 matrix product (a Q/DQ MatMul graph: U8 activations, S8
    weights) in `engine` here, timed by the engine's own profiler on the integer kernel's
    node alone (quantizing the input and the layout work around it excluded, as they are
    in the profiled model's conv time): the best of `repeats` profiles of `runs` runs, as a
    peak is what the host can do, not what it did while other tenants were busy. The
    ceiling the convolutions are measured against."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (n, n), dtype=np.int8)
    inits = [numpy_helper.from_array(w, "w_q"), numpy_helper.from_array(np.float32(0.01), "ws"),
             numpy_helper.from_array(np.int8(0), "wz"),
             numpy_helper.from_array(np.float32(0.02), "xs"),
             numpy_helper.from_array(np.uint8(128), "xz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "xs", "xz"], ["x_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["w_dq"]),
             helper.make_node("MatMul", ["x_dq", "w_dq"], ["y"])]
    graph = helper.make_graph(nodes, "int8_peak",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(n, n)).astype(np.float32)
    package = importlib.import_module(f"edgeseg.backends.{engine}.profile")
    with tempfile.TemporaryDirectory(prefix="edgeseg-peak-") as tmp:
        path = Path(tmp) / "peak.onnx"
        onnx.save(model, str(path))
        best, ops = float("inf"), set()
        for _ in range(repeats):
            rows = package.profile(path, {"x": x}, runs=runs, threads=threads)
            ops |= {r["op"] for r in rows}
            best = min(best, sum(r["ms"] for r in rows
                                 if group_of(r["op"], r.get("exec", "")) == "conv int8"))
    kernel_ms = best
    if kernel_ms <= 0:
        raise EngineUnavailable(f"{engine} ran the INT8 peak graph without an integer kernel "
                                f"({', '.join(sorted(ops))})")
    return 2.0 * n * n * n / (kernel_ms / 1000.0) / 1e9
