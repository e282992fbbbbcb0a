"""The NNCF route: an INT8 OpenVINO IR from the same calibration set."""

from __future__ import annotations

import pytest

from edgeseg.cli.main import main
from edgeseg.core.artifact import read_meta

pytest.importorskip("nncf")
pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino


def test_nncf_writes_an_int8_ir(fp32_artifact, calib_set, synth, tmp_path, capfd):
    import openvino as ov

    out = tmp_path / "nncf"
    assert main(["quantize", str(fp32_artifact), "--calib", str(calib_set.root), "--route",
                 "nncf", "--target", "openvino", "--val", str(synth), "--out", str(out),
                 "--no-progress"]) == 0
    printed = capfd.readouterr()
    assert "Statistics collection" not in printed.out + printed.err  # NNCF's own bars
    meta = read_meta(out)
    assert meta["precision"] == "int8" and set(meta["files"]) == {"model.xml", "model.bin"}
    assert meta["calibration"]["route"] == "nncf" and meta["calibration"]["hash"] == \
        calib_set.hash
    ops = {op.get_type_name() for op in ov.Core().read_model(str(out / "model.xml")).get_ops()}
    assert "FakeQuantize" in ops
    acc = meta["accuracy"]
    assert set(acc["miou"]) == {"openvino"} and acc["images"] == 12
    assert acc["agreement"]["fp32|int8-openvino"] > 0.9
    assert acc["engine"] == "openvino"  # FP32 scored in the engine the IR is for
    a = meta["acceptance"]
    assert a["criterion"] == "miou_drop" and a["passed"] and a["engine"] == "openvino"
    assert meta["calibration"]["held_out_images"] == 4 and meta["calibration"]["images"] == 28


def test_nncf_refusal_names_the_figure_and_writes_nothing(fp32_artifact, calib_set, tmp_path,
                                                          capsys):
    out = tmp_path / "never"
    assert main(["quantize", str(fp32_artifact), "--calib", str(calib_set.root), "--route",
                 "nncf", "--target", "openvino", "--min-fp32-agreement", "1", "--decided-margin",
                 "0", "--out", str(out),
                 "--no-progress"]) == 1  # the check failed: nothing written
    err = capsys.readouterr().err
    assert "keeps the FP32 class on only" in err and "limit 100.0%" in err
    assert "--route qdq" in err and not out.exists()


def test_nncf_refuses_other_targets(fp32_artifact, calib_set, tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["quantize", str(fp32_artifact), "--calib", str(calib_set.root), "--route",
                 "nncf", "--out", str(out), "--no-progress"]) == 2
    assert "use --target openvino" in capsys.readouterr().err
    assert not out.exists()
