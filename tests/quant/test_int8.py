"""INT8 Q/DQ artifacts: targets, zero points, the padded-pool regression, exclusions and
range methods, the TensorRT cache, cached ranges and calibration chunks, and refusals that
write nothing (the quantizer rules: test_rules.py; acceptance and the budget:
test_accept.py)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgeseg.cli.main import main
from edgeseg.core import trtcache
from edgeseg.core.artifact import read_meta
from edgeseg.core.errors import InputError
from edgeseg.quant import qdq
from edgeseg.quant.config import QuantConfig
from edgeseg.quant.int8 import quantize
from tests.quant.helpers import run

pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino


def test_tensorrt_target_is_symmetric_and_lints_clean(fp32_artifact, calib_set, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "int8")
    assert read_meta(tmp_path / "int8")["precision"] == "int8"
    q = onnx.load(str(tmp_path / "int8" / "model.onnx"))
    zps = qdq.zero_points(q)
    assert zps and all(dtype == "int8" and not v.any() for _, dtype, v in zps)
    assert sorted(qdq.quantized_compute_nodes(q)) == ["conv1", "conv2"]
    assert main(["lint", str(tmp_path / "int8"), "--target", "tensorrt-10"]) == 0
    c = meta["calibration"]
    assert c["target"] == "tensorrt" and c["hash"] == calib_set.hash
    # 32 images: 1/8 (4) held out of the ranges for the label-free check
    assert (c["set_images"], c["images"], c["held_out_images"]) == (32, 28, 4)
    assert c["activations"] == "int8 symmetric per-tensor" and c["weight_bits"] == 8
    assert [r["rule"] for r in c["rules"]][:1] == ["compute-inputs"]
    # Accepted without labels, on the held-out images, in the arithmetic TensorRT runs.
    a = meta["acceptance"]
    assert a["criterion"] == "fp32_agreement" and a["passed"] and a["images"] == 4
    assert (a["engine"], a["mode"]) == ("onnxruntime", "reference")
    assert a["figure"] >= a["limit"] == 0.98
    # ONNX Runtime vs OpenVINO is recorded as a diagnostic, in both modes.
    agree = meta["parity"]["backend_agreement"]
    assert agree["gate"] == "diagnostic"
    assert agree["onnxruntime_vs_openvino"]["reference"]["held_out_calibration_images"] >= 0.99
    # The implicit-INT8 cache covers the FP32 graph it ships with, input included.
    header, scales = trtcache.read(tmp_path / "int8" / "calib.cache")
    assert header == "TRT-100300-EntropyCalibration2"
    fp32 = onnx.load(str(tmp_path / "int8" / "model.fp32.onnx"))
    assert {"image", "c1", "pooled", "r"} <= set(scales)
    assert set(scales) <= {v for n in fp32.graph.node for v in [*n.input, *n.output]}
    assert all(s > 0 for s in scales.values())


def test_onnxruntime_target_keeps_padded_pool_input_float(fp32_artifact, calib_set, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "u8", target="onnxruntime")
    q = onnx.load(str(tmp_path / "u8" / "model.onnx"))
    zps = qdq.zero_points(q)
    assert any(dtype == "uint8" and v.any() for _, dtype, v in zps)  # asymmetric indeed
    assert qdq.padded_average_pools(q) == ["pool"]
    assert qdq.dequantized_inputs(q, "pool") == []  # the pool reads the float tensor
    assert meta["calibration"]["activations"] == "uint8 asymmetric per-tensor"
    assert meta["calibration"]["weight_bits"] == 7
    fired = {r["rule"]: r for r in meta["calibration"]["rules"]}
    assert "integer-kernels" in fired and fired["padded-pools"]["nodes"] == ["pool"]
    assert not (tmp_path / "u8" / "calib.cache").exists()
    assert (meta["acceptance"]["engine"], meta["acceptance"]["mode"]) == ("onnxruntime",
                                                                          "kernels")
    agree = meta["parity"]["backend_agreement"]
    assert agree["onnxruntime_vs_openvino"]["kernels"]["held_out_calibration_images"] >= 0.995


def test_padded_pool_on_a_nonzero_zero_point_is_what_breaks(fp32_artifact, calib_set, tmp_path):
    """The regression the fix is for: the same UINT8 graph with the pool reading Q/DQ input.
    OpenVINO pads the integer tensor with 0, which is -zero_point*scale in real terms, so the
    border pixels of the pool's output differ from ONNX Runtime's (float-domain) padding."""
    from edgeseg.quant.engines import backend_agreement
    from edgeseg.quant.int8 import calibrate, calibration_inputs

    meta = read_meta(fp32_artifact)
    inputs = calibration_inputs(calib_set, meta["input"])
    cfg = QuantConfig(artifact="", calib="", out="", target="onnxruntime", method="minmax")
    ranges = tmp_path / "ranges.json"
    calibrate(fp32_artifact / "model.onnx", "image", inputs, cfg, ranges)
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(str(fp32_artifact / "model.onnx"), str(tmp_path / "raw.onnx"), None,
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibration_cache_path=str(ranges))
    raw = onnx.load(str(tmp_path / "raw.onnx"))
    assert any(nz for _, _, nz in qdq.dequantized_inputs(raw, "pool"))
    from edgeseg.export.parity import run_backend

    a = run_backend("onnxruntime", tmp_path / "raw.onnx", inputs[:4], "image")
    b = run_backend("openvino", tmp_path / "raw.onnx", inputs[:4], "image")
    border = np.zeros(a[0].shape[-2:], bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    gap_border = np.mean([np.abs(x - y)[..., border].mean() for x, y in zip(a, b)])
    gap_inner = np.mean([np.abs(x - y)[..., ~border].mean() for x, y in zip(a, b)])
    unfixed = backend_agreement(tmp_path / "raw.onnx", meta, inputs, mode="kernels")
    run(fp32_artifact, calib_set, tmp_path / "fixed", target="onnxruntime", holdout=1)
    fixed = backend_agreement(tmp_path / "fixed" / "model.onnx", meta, inputs, mode="kernels")
    print(f"unfixed: mean |ORT-OV| border {gap_border:.4f} vs inner {gap_inner:.4f}, label "
          f"agreement {unfixed:.4f}; fixed: {fixed:.4f}")
    assert fixed >= 0.995 and fixed > unfixed
    # If OpenVINO pooled this pattern like ONNX Runtime, the fix would be moot: say so loudly.
    assert gap_border > 3 * gap_inner, "OpenVINO no longer mis-pads; the pool fix may go"


def test_exclusions_and_methods(fp32_artifact, calib_set, tmp_path):
    meta = run(fp32_artifact, calib_set, tmp_path / "e", method="minmax",
               exclude_nodes=("conv2",))
    q = onnx.load(str(tmp_path / "e" / "model.onnx"))
    assert qdq.quantized_compute_nodes(q) == ["conv1"]
    assert meta["calibration"]["method"] == "minmax"
    assert run(fp32_artifact, calib_set, tmp_path / "d")["calibration"]["method"] == \
        "percentile"  # the default
    run(fp32_artifact, calib_set, tmp_path / "ent", method="entropy")
    assert read_meta(tmp_path / "ent")["calibration"]["method"] == "entropy"


def test_refusals_write_nothing(fp32_artifact, calib_set, synth, tmp_path, capsys):
    from edgeseg.data.calibration import build

    int8 = tmp_path / "int8"
    run(fp32_artifact, calib_set, int8)
    other = build(tmp_path / "big", size=(64, 128), data=str(synth), num=32, progress=False,
                  log=lambda m: None)
    # A val set with other classes: same layout, a class file with other names.
    import shutil

    odd = tmp_path / "odd"
    shutil.copytree(synth, odd)
    cj = json.loads((odd / "classes.json").read_text())
    cj["names"] = [f"thing{i}" for i in range(len(cj["names"]))]
    (odd / "classes.json").write_text(json.dumps(cj))
    # A val set labelled with fewer classes; one whose masks are missing; one with no val.
    fewer = tmp_path / "fewer"
    shutil.copytree(synth, fewer)
    cj = json.loads((fewer / "classes.json").read_text())
    for key in ("names", "palette"):
        if key in cj:
            cj[key] = cj[key][:3]
    (fewer / "classes.json").write_text(json.dumps(cj))
    unlabeled = tmp_path / "unlabeled"
    shutil.copytree(synth, unlabeled)
    shutil.rmtree(unlabeled / "gtFine" / "val")
    empty = tmp_path / "empty"
    shutil.copytree(synth, empty)
    for sub in ("gtFine", "leftImg8bit"):
        shutil.rmtree(empty / sub / "val")
        (empty / sub / "val").mkdir()
    cases = [
        ([str(int8), "--calib", str(calib_set.root)], "is a int8 artifact"),
        ([str(fp32_artifact), "--calib", str(other.root)], "was built for 64x128"),
        ([str(fp32_artifact), "--calib", str(tmp_path)], "not a calibration set"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--val", str(odd)],
         "are not the artifact's"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--max-drop", "0.5"],
         "--max-drop needs --val"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--val", str(synth), "--test",
          str(synth)], "--test reports the drop of a --max-drop search"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--keep-best"],
         "--keep-best keeps the best graph of a --max-drop search"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--val", str(fewer),
          "--max-drop", "0.5"], "classes, but the artifact predicts"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--val", str(unlabeled),
          "--max-drop", "0.5"], "it needs a val split of images with label masks"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--val", str(empty),
          "--max-drop", "0.5"], "--val:"),
        ([str(fp32_artifact), "--calib", str(calib_set.root), "--exclude-node", "nope"],
         "no such node"),
    ]
    for args, pattern in cases:
        out = tmp_path / "never"
        assert main(["quantize", *args, "--out", str(out), "--no-progress"]) == 2, pattern
        assert pattern in capsys.readouterr().err
        assert not out.exists()
    # An existing good artifact is not overwritten without --force.
    before = (int8 / "meta.json").read_text()
    assert main(["quantize", str(fp32_artifact), "--calib", str(calib_set.root), "--out",
                 str(int8), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (int8 / "meta.json").read_text() == before


def test_already_quantized_graph_is_refused(fp32_artifact, calib_set, tmp_path, capsys):
    """A Q/DQ ONNX imported as if it were FP32 (precision says fp32, graph says otherwise)."""
    from edgeseg.export.importer import import_onnx

    run(fp32_artifact, calib_set, tmp_path / "q", target="onnxruntime")
    meta = read_meta(fp32_artifact)
    from edgeseg.data.classes import ClassSet

    classes = ClassSet.from_dict(meta["classes"])
    import_onnx(str(tmp_path / "q" / "model.onnx"), str(tmp_path / "imp"), classes=classes,
                mean=meta["input"]["mean"], std=meta["input"]["std"], log=lambda m: None)
    with pytest.raises(InputError, match="already quantized"):
        run(tmp_path / "imp", calib_set, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_ranges_are_cached_across_targets(fp32_artifact, calib_set, tmp_path, capsys):
    logs = []

    def q(out, **kw):
        quantize(QuantConfig(artifact=str(fp32_artifact), calib=str(calib_set.root),
                             out=str(tmp_path / out), range_cache=str(tmp_path / "rc"), **kw),
                 log=logs.append, progress=False)

    for target in ("tensorrt", "onnxruntime"):
        q(f"mm-{target}", target=target, method="minmax")
    assert len(list((tmp_path / "rc").glob("*.json"))) == 1  # min/max serve both targets
    assert any(m.startswith("calibrating") for m in logs)
    assert any("from " + str(tmp_path / "rc") in m for m in logs)
    # Percentile thresholds (the default) are computed for the target's symmetry: the two
    # symmetric targets share theirs, the asymmetric one has its own.
    for target in ("tensorrt", "openvino", "onnxruntime"):
        q(f"pc-{target}", target=target)
    assert len(list((tmp_path / "rc").glob("*.json"))) == 3
    assert read_meta(tmp_path / "pc-openvino")["calibration"]["method"] == "percentile"
    # ONNX Runtime's histogram calibrators print progress; none of it reaches stdout.
    assert capsys.readouterr().out == ""


def test_minmax_calibration_in_chunks_gives_the_one_pass_ranges(fp32_artifact, calib_set,
                                                                 tmp_path, monkeypatch):
    """Calibration feeds as many images per pass as fit CALIB_CHUNK_BYTES of float tensors
    (ONNX Runtime holds every tensor of every image until it reduces them: gigabytes per image
    for SegNet at 512x1024); min/max ranges must not depend on the chunking.
    (Histogram methods take their bin width from the first pass, so theirs do: measured
    here, entropy's threshold of one tensor moved from 13.0 to 10.7 with 5-image chunks.)"""
    from edgeseg.backends.onnxruntime import quantizer
    from edgeseg.backends.onnxruntime.quantizer import activation_bytes
    from edgeseg.quant.int8 import calibrate, calibration_inputs

    meta = read_meta(fp32_artifact)
    inputs = calibration_inputs(calib_set, meta["input"])
    cfg = QuantConfig(artifact="", calib="", out="", target="tensorrt", method="minmax")
    per_image = activation_bytes(fp32_artifact / "model.onnx")
    # conv1 16ch, pool 16ch, relu 16ch, logits 8ch at 48x96, float32
    assert per_image == 4 * 48 * 96 * (16 * 3 + meta["classes"]["names"].__len__())
    # a dynamic batch counts as one image (it once counted as nothing, and every image of a
    # calibration set went into one pass: 24 GB for DeepLabV3+ at 512x1024)
    dyn = onnx.load(str(fp32_artifact / "model.onnx"))
    for vi in [*dyn.graph.input, *dyn.graph.output]:
        vi.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(dyn, str(tmp_path / "dynamic.onnx"))
    assert activation_bytes(tmp_path / "dynamic.onnx") == per_image
    monkeypatch.setattr(quantizer, "CALIB_CHUNK_BYTES", per_image * len(inputs))
    whole = calibrate(fp32_artifact / "model.onnx", "image", inputs, cfg, tmp_path / "a.json")
    monkeypatch.setattr(quantizer, "CALIB_CHUNK_BYTES", per_image * 5)  # 7 passes over 32 images
    chunked = calibrate(fp32_artifact / "model.onnx", "image", inputs, cfg, tmp_path / "b.json")
    assert whole.keys() == chunked.keys() and len(whole) >= 4
    for name, (lo, hi) in whole.items():
        assert chunked[name] == pytest.approx((lo, hi), rel=1e-6, abs=1e-7), name
