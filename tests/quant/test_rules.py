"""The quantizer rules (quant/rules.py): where Q/DQ goes for each target, which layers stay
float and why (exact comparisons, image convolutions, attention products), each recorded in
meta.json."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeseg.quant import qdq
from tests.quant.helpers import run


@pytest.mark.parametrize("target", ["tensorrt", "onnxruntime"])
def test_comparisons_and_the_values_they_compare_stay_float(unpool_artifact, calib_set,
                                                             tmp_path, target):
    meta = run(unpool_artifact, calib_set, tmp_path / "u", target=target,
               min_fp32_agreement=0.0)
    q = onnx.load(str(tmp_path / "u" / "model.onnx"))
    producers = {o: n for n in q.graph.node for o in n.output}
    node = {n.name: n for n in q.graph.node}
    for name in ("eq", "up", "pool", "relu"):
        assert qdq.dequantized_inputs(q, name) == [], name
    # ONNX Runtime's quantizer drops a Relu after a quantized Conv; this one must stay.
    assert producers[node["eq"].input[0]].op_type == "Relu"
    fired = {r["rule"]: r for r in meta["calibration"]["rules"]}
    assert fired["exact-comparisons"]["nodes"] == ["relu", "pool", "up", "eq"]
    assert sorted(qdq.quantized_compute_nodes(q)) == ["conv1", "conv2"]
    # Without the rule, ONNX Runtime's placement hands the comparison rounded values.
    raw = run(unpool_artifact, calib_set, tmp_path / "raw", target=target, rules=False,
              min_fp32_agreement=0.0)
    assert "exact-comparisons" not in {r["rule"] for r in raw["calibration"]["rules"]}
    q = onnx.load(str(tmp_path / "raw" / "model.onnx"))
    assert qdq.dequantized_inputs(q, "eq") or qdq.dequantized_inputs(q, "pool")
    assert meta["acceptance"]["fp32_agreement"] >= raw["acceptance"]["fp32_agreement"]


def test_tensorrt_placement_quantizes_only_compute_inputs(fp32_artifact, calib_set, tmp_path):
    """compute-inputs: Q/DQ on the inputs of the convolutions, none after a convolution or
    on the Relu and the pool; ORT's own placement (--no-rules) quantizes those too."""
    run(fp32_artifact, calib_set, tmp_path / "t")
    q = onnx.load(str(tmp_path / "t" / "model.onnx"))
    for name in ("pool", "relu"):
        assert qdq.dequantized_inputs(q, name) == [], name
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized == {"image", "r"}  # conv1's and conv2's activations
    run(fp32_artifact, calib_set, tmp_path / "ort", rules=False)
    q = onnx.load(str(tmp_path / "ort" / "model.onnx"))
    assert len([n for n in q.graph.node if n.op_type == "QuantizeLinear"]) > 2


def test_onnxruntime_placement_quantizes_only_integer_kernels(residual_artifact, calib_set,
                                                             tmp_path):
    """integer-kernels: Q/DQ on the convolutions' inputs and outputs; the Add between them
    writes float, while ORT's own placement (--no-rules) rounds it too (QLinearAdd)."""
    meta = run(residual_artifact, calib_set, tmp_path / "o", target="onnxruntime",
               min_fp32_agreement=0.0)
    q = onnx.load(str(tmp_path / "o" / "model.onnx"))
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized == {"image", "c1", "c2", "cat"}
    assert sorted(qdq.quantized_compute_nodes(q)) == ["conv1", "conv2", "conv3"]
    fired = {r["rule"]: r for r in meta["calibration"]["rules"]}
    assert fired["integer-kernels"]["op_types"] == ["Conv"]
    run(residual_artifact, calib_set, tmp_path / "ort", target="onnxruntime", rules=False,
        min_fp32_agreement=0.0)
    q = onnx.load(str(tmp_path / "ort" / "model.onnx"))
    assert "s" in {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}


@pytest.mark.parametrize("target", ["tensorrt", "onnxruntime"])
def test_convolutions_reading_the_image_stay_float(fp32_artifact, calib_set, tmp_path, target,
                                                   monkeypatch):
    """image-convs: conv1 reads the 3-channel image and stays float, weights included, and
    the image gets no Q/DQ; --quantize-image-convs quantizes it too. conv1 is 77% of this
    graph's arithmetic, above the rule's bound, so the bound is lifted here."""
    from edgeseg.quant import rules

    monkeypatch.setattr(rules, "IMAGE_CONVS_MAX_SHARE", 1.0)
    meta = run(fp32_artifact, calib_set, tmp_path / "d", target=target,
               quantize_image_convs=False, min_fp32_agreement=0.0)
    q = onnx.load(str(tmp_path / "d" / "model.onnx"))
    assert qdq.quantized_compute_nodes(q) == ["conv2"]
    assert "image" not in {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    fired = {r["rule"]: r for r in meta["calibration"]["rules"]}
    assert fired["image-convs"]["nodes"] == ["conv1"]
    meta = run(fp32_artifact, calib_set, tmp_path / "q", target=target,
               quantize_image_convs=True, min_fp32_agreement=0.0)
    q = onnx.load(str(tmp_path / "q" / "model.onnx"))
    assert sorted(qdq.quantized_compute_nodes(q)) == ["conv1", "conv2"]
    assert "image-convs" not in {r["rule"] for r in meta["calibration"]["rules"]}


def test_image_convs_follow_resizes_count_channels_and_bound_the_cost():
    """A convolution reads the image through resizing or normalisation only; an input with
    more than IMAGE_CHANNELS channels is features, not an image; and the image convolutions
    stay float only while they carry at most IMAGE_CONVS_MAX_SHARE of the arithmetic."""
    from onnx import TensorProto, helper, numpy_helper

    from edgeseg.quant import rules

    def graph(width):  # `features` (8 -> width channels) sets the rest of the arithmetic
        def w(name, shape):
            return numpy_helper.from_array(np.zeros(shape, np.float32), name)

        nodes = [helper.make_node("Mul", ["x", "s"], ["n"], name="norm"),
                 helper.make_node("Resize", ["n", "", "scales"], ["half"], name="down"),
                 helper.make_node("Conv", ["half", "w3"], ["a"], name="branch"),
                 helper.make_node("Conv", ["n", "w3"], ["b"], name="stem"),
                 helper.make_node("Conv", ["b", "w16"], ["c"], name="next"),
                 helper.make_node("Conv", ["f", "w8"], ["d"], name="features")]
        g = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
                         helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 8, 8, 8])],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in "acd"],
            initializer=[numpy_helper.from_array(np.ones(1, np.float32), "s"),
                         numpy_helper.from_array(np.array([1, 1, .5, .5], np.float32),
                                                 "scales"),
                         w("w3", (16, 3, 3, 3)), w("w16", (16, 16, 3, 3)),
                         w("w8", (width, 8, 3, 3))])
        return helper.make_model(g)

    # MACs per image (outputs x kernel): branch 2x2 and stem 6x6 outputs of a 3x3x3 kernel,
    # next 4x4 of 16x3x3, features 6x6 of 8x3x3.
    image = 16 * 4 * 27 + 16 * 36 * 27
    for width, float_convs in ((16, []), (4096, ["branch", "stem"])):
        model = graph(width)
        found, share = rules.image_convs(model)
        assert found == ["branch", "stem"]
        assert share == pytest.approx(image / (image + 16 * 16 * 144 + width * 36 * 72))
        p = rules.plan(model, "tensorrt")
        assert sorted(p.exclude) == float_convs  # 16: 20% of the arithmetic, 4096: 0.2%
        assert ("image-convs" in {r["rule"] for r in p.rules}) == bool(float_convs)
    assert rules.plan(model, "tensorrt", image_convs_float=False).exclude == set()


def test_attention_matmuls_stay_float_and_weight_matmuls_do_not():
    """A MatMul of two activations (attention) is left in float for every target; one with a
    weight operand (an initializer, possibly through a Transpose) is quantized as usual."""
    from onnx import TensorProto, helper, numpy_helper

    from edgeseg.quant import rules

    nodes = [helper.make_node("MatMul", ["x", "w"], ["q"], name="proj"),
             helper.make_node("Transpose", ["w2"], ["w2t"], name="t"),
             helper.make_node("MatMul", ["x", "w2t"], ["k"], name="proj_t"),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="kt"),
             helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
             helper.make_node("Softmax", ["s"], ["p"], name="softmax"),
             helper.make_node("MatMul", ["p", "q"], ["y"], name="mix")]
    w = numpy_helper.from_array(np.zeros((4, 4), np.float32), "w")
    w2 = numpy_helper.from_array(np.zeros((4, 4), np.float32), "w2")
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[w, w2])
    model = helper.make_model(g)
    assert rules.activation_matmuls(model) == ["scores", "mix"]
    for target in ("onnxruntime", "tensorrt", "openvino"):
        p = rules.plan(model, target)
        assert p.exclude >= {"scores", "mix"} and not p.exclude & {"proj", "proj_t"}
        assert "attention-matmuls" in {r["rule"] for r in p.rules}
