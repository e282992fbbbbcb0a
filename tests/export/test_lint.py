"""The readiness lint on hand-built graphs, each rule able to fail."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeseg.cli.main import main
from edgeseg.core.lint import lint, load_onnx, summarize
from edgeseg.export.exporter import topological_sort


def model_of(nodes, inputs=("x",), outputs=("y",), inits=(), opset=17, elem=TensorProto.FLOAT):
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(i, elem, [1, 3, 8, 8]) for i in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["n", "c", "h", "w"])
         for o in outputs],
        initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def errors(model, target="tensorrt-10"):
    return [f for f in lint(model, target) if f.severity == "error"]


def test_clean_graph_has_no_findings():
    m = model_of([helper.make_node("Relu", ["x"], ["y"], name="r")])
    assert lint(m, "tensorrt-10") == [] and lint(m, "openvino") == []


def test_maxpool_indices_and_maxunpool():
    m = model_of([
        helper.make_node("MaxPool", ["x"], ["p", "idx"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"),
        helper.make_node("MaxUnpool", ["p", "idx"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                         name="unpool"),
    ])
    found = {(f.node, f.op) for f in errors(m)}
    assert ("pool", "MaxPool") in found and ("unpool", "MaxUnpool") in found
    assert [f.op for f in errors(m, "openvino")] == ["MaxUnpool"]


def test_resize_modes():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    m = model_of([helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic",
                                   coordinate_transformation_mode="tf_crop_and_resize",
                                   name="rs")], inits=[scales])
    msgs = " ".join(f.message for f in errors(m))
    assert "mode 'cubic'" in msgs and "tf_crop_and_resize" in msgs
    dyn = model_of([helper.make_node("Shape", ["x"], ["sh"]),
                    helper.make_node("Resize", ["x", "", "", "sh"], ["y"], name="rd")])
    assert any(f.severity == "warning" and "run time" in f.message for f in lint(dyn,
                                                                                 "tensorrt-10"))


def test_asymmetric_qdq_is_an_error_for_tensorrt_only():
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "sc")
    zp = numpy_helper.from_array(np.array(128, np.uint8), "zp")
    m = model_of([helper.make_node("QuantizeLinear", ["x", "sc", "zp"], ["q"], name="q"),
                  helper.make_node("DequantizeLinear", ["q", "sc", "zp"], ["y"], name="dq")],
                 inits=[scale, zp])
    msgs = [f.message for f in errors(m)]
    assert sum("non-zero zero point" in x for x in msgs) == 2
    assert sum("UINT8 quantization" in x for x in msgs) == 2
    assert errors(m, "openvino") == []


def test_opset_range_and_custom_ops():
    m = model_of([helper.make_node("Relu", ["x"], ["y"])], opset=8)
    assert any("opset 8" in f.message for f in errors(m))
    c = model_of([helper.make_node("Foo", ["x"], ["y"], domain="com.example", name="f")])
    assert any("custom-domain" in f.message for f in errors(c))


def test_argmax_warning_and_unsorted_graph():
    m = model_of([helper.make_node("ArgMax", ["x"], ["y"], axis=1, name="am")])
    assert [f.severity for f in lint(m, "tensorrt-10")] == ["warning"]
    unsorted = model_of([helper.make_node("Relu", ["a"], ["y"], name="second"),
                         helper.make_node("Relu", ["x"], ["a"], name="first")])
    assert any(f.op == "checker" for f in errors(unsorted))
    topological_sort(unsorted.graph)
    assert [n.name for n in unsorted.graph.node] == ["first", "second"]
    assert errors(unsorted) == []


def test_unknown_target_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="unknown target"):
        lint(model_of([helper.make_node("Relu", ["x"], ["y"])]), "tensorrt-7")
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(ValueError, match="not an ONNX model"):
        load_onnx(tmp_path / "bad.onnx")
    with pytest.raises(FileNotFoundError):
        load_onnx(tmp_path / "missing.onnx")


def test_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.onnx"
    onnx.save(model_of([helper.make_node("Relu", ["x"], ["y"])]), good)
    bad = tmp_path / "unpool.onnx"
    onnx.save(model_of([helper.make_node("MaxUnpool", ["x", "x"], ["y"], kernel_shape=[2, 2])]),
              bad)
    assert main(["lint", str(good)]) == 0
    assert "0 errors" in capsys.readouterr().out
    assert main(["lint", str(bad), "--json"]) == 1
    assert '"error": 1' in capsys.readouterr().out
    assert main(["lint", str(tmp_path / "nope.onnx")]) == 2
    assert summarize([]) == {"error": 0, "warning": 0, "info": 0}
