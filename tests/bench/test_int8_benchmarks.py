"""The pure parts of benchmarks/int8_vs_modelopt.py: what a comparison marks, the verdict
against ModelOpt, where each graph is cached."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import int8_vs_modelopt as bench  # noqa: E402


def window_max_graph(path: Path) -> Path:
    """x -> MaxPool 2x2 -> Resize x2 (nearest) -> Equal(x, upsampled) -> Cast: the
    comparison that SegNet's unpooling uses to find each window's maximum."""
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["p", "", "scales"], ["u"], mode="nearest"),
        helper.make_node("Equal", ["x", "u"], ["is_max"], name="eq"),
        helper.make_node("Cast", ["is_max"], ["y"], to=TensorProto.FLOAT),
    ]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 4])],
        initializer=[numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_comparison_marks_share_of_positions_each_equal_marks(tmp_path):
    path = window_max_graph(tmp_path / "g.onnx")
    # window 1: 1 2 / 0 2 -> its maximum 2 twice; window 2: 5 5 / 5 1 -> three times
    tie = np.array([[[[1, 2, 5, 5], [0, 2, 5, 1]]]], np.float32)
    distinct = np.array([[[[1, 2, 5, 4], [0, 3, 6, 1]]]], np.float32)
    marks = bench.comparison_marks({"g": path}, [tie])
    assert marks == {"g": {"is_max": 5 / 8}}
    marks = bench.comparison_marks({"g": path}, [tie, distinct])
    assert np.isclose(marks["g"]["is_max"], (5 / 8 + 2 / 8) / 2)


def test_comparison_marks_leaves_out_graphs_without_a_comparison(tmp_path):
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "relu.onnx")
    assert bench.comparison_marks({"relu": tmp_path / "relu.onnx"},
                                  [np.ones((1, 4), np.float32)]) == {}


def result(modelopt: float, agreement: float = 0.99, refused=(), **edgeseg: float) -> dict:
    rows = [{"graph": "modelopt-fp32", "drop_points": modelopt,
             "agreement_with_fp32": agreement}]
    rows += [{"graph": f"edgeseg-{k.replace('_', '-')}", "drop_points": v}
             for k, v in edgeseg.items()]
    return {"model": "m", "rows": rows, "refused": {k: "why" for k in refused}}


def test_verdict_limit_is_modelopt_plus_015_at_most_05():
    met = bench.verdict([result(0.10, tensorrt=0.25, openvino=0.0, onnxruntime=0.1)])[1]
    assert met.endswith(": met") and "limit +0.25" in met
    assert bench.verdict([result(0.10, tensorrt=0.26)])[1].endswith("NOT met")
    # a ModelOpt that loses 0.45 does not lift the 0.5 ceiling
    assert bench.verdict([result(0.45, tensorrt=0.55)])[1].endswith("NOT met")
    assert "limit +0.50" in bench.verdict([result(0.45, tensorrt=0.4)])[1]


def test_verdict_counts_a_gain_over_fp32_as_no_loss_and_budget_rows_apart():
    line = bench.verdict([result(-1.69, agreement=0.9185, tensorrt=0.19,
                                 tensorrt_budget=0.9)])[1]
    assert "limit +0.15" in line and "91.85% agreement" in line and line.endswith("NOT met")
    assert bench.verdict([result(-1.69, tensorrt=0.1, tensorrt_budget=0.9)])[1].endswith(
        ": met")


def test_verdict_refused_default_graph_is_not_met():
    assert bench.verdict([result(0.1, refused=("edgeseg-openvino",),
                                 tensorrt=0.0)])[1].endswith("NOT met")
    assert bench.verdict([result(0.1, refused=("edgeseg-tensorrt-budget",),
                                 tensorrt=0.0)])[1].endswith(": met")


def test_cached_graph_names_match_the_quantize_cache():
    w = bench.WORK / "m"
    assert bench.cached_graph("m", "edgeseg-tensorrt") == w / "qdq-tensorrt" / "model.onnx"
    assert bench.cached_graph("m", "edgeseg-tensorrt-budget") == \
        w / f"qdq-tensorrt-budget{bench.BUDGET:g}" / "model.onnx"
    assert bench.cached_graph("m", "modelopt-fp16") == w / "modelopt-fp16.onnx"
    assert bench.cached_graph("m", "ort-defaults") == w / "ort-defaults.onnx"
