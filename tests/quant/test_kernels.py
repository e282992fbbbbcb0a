"""The engine-faults rule (quant/kernels.py): each quantized layer cut out and run alone in the
target's engine against the reference Q/DQ arithmetic; a layer the engine miscomputes stays
float and meta.json says why."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeseg.quant import kernels, qdq
from edgeseg.quant.config import QuantConfig
from edgeseg.quant.int8 import quantize
from tests.quant.helpers import run

pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino


def test_layers_are_cut_out_with_their_qdq_and_grid(fp32_artifact, calib_set, tmp_path):
    run(fp32_artifact, calib_set, tmp_path / "u8", target="onnxruntime")
    q = onnx.load(str(tmp_path / "u8" / "model.onnx"))
    cut = {layer.node: layer for layer in kernels.layers(q)}
    assert sorted(cut) == sorted(qdq.quantized_compute_nodes(q)) == ["conv1", "conv2"]
    conv2 = cut["conv2"]
    ops = [n.op_type for n in conv2.model.graph.node]
    # the activation's Q/DQ, the weight's DQ, the layer (the integer-kernels placement also
    # quantizes its output: that Q/DQ comes along, so that ORT fuses the kernel as in the graph)
    assert ops.count("Conv") == 1 and ops.count("QuantizeLinear") >= 1
    onnx.checker.check_model(conv2.model)
    (name, (shape, lo, hi)), = conv2.inputs.items()
    assert shape == [1, 16, 48, 96]
    assert lo == 0 < hi  # it reads a Relu: the U8 grid of an asymmetric scheme starts at 0


def test_sound_kernels_are_within_a_rounding(fp32_artifact, calib_set, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "ov", target="openvino")
    check = meta["calibration"]["kernel_check"]
    assert check["faults"] == [] and check["layers"] == 2 and check["isa"]
    # both CPU engines: the artifact ships both formats (the C++ runtime runs OpenVINO)
    assert sorted(check["engines"]) == ["onnxruntime", "openvino"]
    assert all(e["version"] and e["faults"] == [] for e in check["engines"].values())
    assert "engine-faults" not in [r["rule"] for r in meta["calibration"]["rules"]]
    q = onnx.load(str(tmp_path / "ov" / "model.onnx"))
    # every layer measured: the errors are real figures, small but not all zero
    errors = kernels.faults(q, "openvino", tolerance=-1)
    assert len(errors) == 2 and all(0 <= e["error"] < kernels.FAULT_TOLERANCE for e in errors)


def test_no_kernel_check_where_the_target_is_judged_in_reference_arithmetic(
        fp32_artifact, calib_set, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "trt")
    assert meta["calibration"]["kernel_check"] is None


@pytest.mark.parametrize("target", ["openvino", "onnxruntime"])
def test_a_miscomputed_layer_stays_float(fp32_artifact, calib_set, tmp_path, monkeypatch,
                                         target):
    """OpenVINO's kernel gets conv2 wrong (as OpenVINO 2026.4.1 on AMX does for some
    convolution shapes): the layer is found, kept float and recorded, the rest stays INT8.
    For the onnxruntime target too: its artifact ships OpenVINO IR as well."""
    real = kernels._run

    def faulty(engine, path, feeds, threads, int8_kernels):
        out = real(engine, path, feeds, threads, int8_kernels)
        layer = [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
        if engine == "openvino" and int8_kernels and layer == ["conv2"]:
            return -out + np.abs(out).max()
        return out

    monkeypatch.setattr(kernels, "_run", faulty)
    logs = []
    cfg = QuantConfig(artifact=str(fp32_artifact), calib=str(calib_set.root),
                      out=str(tmp_path / "ov"), target=target)
    meta = quantize(cfg, log=logs.append, progress=False)
    check = meta["calibration"]["kernel_check"]
    assert [f["node"] for f in check["faults"]] == ["conv2"]
    assert check["faults"][0]["error"] > 1 and check["faults"][0]["engine"].startswith(
        "openvino ")
    assert check["engines"]["onnxruntime"]["faults"] == []
    rule = next(r for r in meta["calibration"]["rules"] if r["rule"] == "engine-faults")
    assert rule["nodes"] == ["conv2"]
    q = onnx.load(str(tmp_path / "ov" / "model.onnx"))
    assert qdq.quantized_compute_nodes(q) == ["conv1"]
    assert any("miscomputes 1 of 2 INT8 layers" in m and "conv2" in m for m in logs)


def test_no_kernel_check_turns_it_off(fp32_artifact, calib_set, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "ov", target="openvino",
               kernel_check=False)
    assert meta["calibration"]["kernel_check"] is None


def test_engine_disagreement_names_the_miscomputed_layer(fp32_artifact, calib_set, tmp_path,
                                                         monkeypatch):
    from edgeseg.quant.accept import _disagreement_cause

    run(fp32_artifact, calib_set, tmp_path / "u8", target="onnxruntime")
    path = tmp_path / "u8" / "model.onnx"
    assert _disagreement_cause(path, "kernels", None) == \
        "the two engines round near-ties differently"
    real = kernels._run

    def faulty(engine, p, feeds, threads, int8_kernels):
        out = real(engine, p, feeds, threads, int8_kernels)
        return out * -3 if engine == "openvino" and int8_kernels else out

    monkeypatch.setattr(kernels, "_run", faulty)
    cause = _disagreement_cause(path, "kernels", None)
    assert cause.startswith("OpenVINO's INT8 kernels miscompute conv1 (") and "conv2" in cause


def test_a_layer_that_cannot_run_alone_is_left_as_it_is(fp32_artifact, calib_set, tmp_path,
                                                        monkeypatch):
    """The check is a diagnostic: an engine that cannot load a cut layer does not fail the
    quantization, and the layer stays INT8."""
    real = kernels._run

    def broken(engine, path, feeds, threads, int8_kernels):
        if engine == "openvino":
            raise RuntimeError("cannot compile")
        return real(engine, path, feeds, threads, int8_kernels)

    monkeypatch.setattr(kernels, "_run", broken)
    meta = run(fp32_artifact, calib_set, tmp_path / "ov", target="openvino")
    assert meta["calibration"]["kernel_check"]["faults"] == []
    q = onnx.load(str(tmp_path / "ov" / "model.onnx"))
    assert sorted(qdq.quantized_compute_nodes(q)) == ["conv1", "conv2"]


def test_a_few_output_steps_are_a_rounding_not_a_fault(classes, calib_set, tmp_path,
                                                       tmp_path_factory, monkeypatch):
    """A layer whose outputs span only two steps of its grid: an engine off by one step is
    50% of that range, far over FAULT_TOLERANCE, yet a rounding; more than ROUNDING_STEPS
    steps off is a fault. conv1 -> Relu -> conv2: conv1's output is quantized."""
    from functools import partial

    from tests.quant.conftest import imported, seg_graph

    art = imported(tmp_path_factory, "chain", partial(seg_graph, padded_pool=False), classes)
    run(art, calib_set, tmp_path / "s8", target="openvino", kernel_check=False)
    q = onnx.load(str(tmp_path / "s8" / "model.onnx"))
    steps_of = {layer.node: layer.out_step for layer in kernels.layers(q)}
    assert steps_of["conv1"] > 0 and steps_of["conv2"] == 0  # conv2 writes float logits
    real = kernels._run

    for off_by, flagged in [(1, False), (kernels.ROUNDING_STEPS + 1, True)]:
        def engine_off(engine, path, feeds, threads, int8_kernels, off_by=off_by):
            out = real(engine, path, feeds, threads, int8_kernels)
            conv = next(n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv")
            step = steps_of[conv] or 1.0
            ref = np.zeros_like(out)
            ref.flat[0] = 2 * step  # outputs spanning two steps
            return ref + off_by * step if int8_kernels else ref

        monkeypatch.setattr(kernels, "_run", engine_off)
        found = [f["node"] for f in kernels.faults(q, "openvino")]
        # conv2 has no output grid: any error over the tolerance counts
        assert found == (["conv1", "conv2"] if flagged else ["conv2"]), (off_by, found)
