"""`edgeseg compare --val`: FP32 and INT8 artifacts side by side on a validation split."""

from __future__ import annotations

import json

import pytest

from edgeseg.cli.main import main
from edgeseg.quant.config import QuantConfig
from edgeseg.quant.int8 import quantize

pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino


def test_side_by_side_report(fp32_artifact, calib_set, synth, tmp_path, capsys):
    int8 = tmp_path / "int8"
    quantize(QuantConfig(artifact=str(fp32_artifact), calib=str(calib_set.root), out=str(int8),
                         target="onnxruntime"), log=lambda m: None, progress=False)
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["compare", str(fp32_artifact), str(int8), "--val", str(synth), "--json",
                 str(out_json), "--md", str(out_md)]) == 0
    rep = json.loads(out_json.read_text())
    rows = {(r["precision"], r["engine"]): r for r in rep["rows"]}
    assert set(rows) == {("fp32", "onnxruntime"), ("fp32", "openvino"),
                         ("int8", "onnxruntime"), ("int8", "openvino")}
    ref = rows["fp32", "onnxruntime"]
    assert rep["reference"]["engine"] == "onnxruntime" and ref["agreement"] == 1.0
    assert ref["delta_points"] == 0.0 and rep["images"] == 12
    assert rows["fp32", "openvino"]["agreement"] > 0.999  # same FP32 graph, two engines
    q = rows["int8", "onnxruntime"]
    assert q["delta_points"] == pytest.approx(100 * (q["miou"] - ref["miou"]))
    assert set(q["per_class_iou"]) == set(rep["classes"])
    assert all(x["points"] > 0 for x in q["lost_most"])
    md = out_md.read_text()
    assert md == capsys.readouterr().out and "| int8 | openvino |" in md


def test_report_refusals(fp32_artifact, synth, tmp_path, capsys):
    assert main(["compare", str(fp32_artifact), str(fp32_artifact)]) == 2
    assert "add --val" in capsys.readouterr().err
    assert main(["compare", str(fp32_artifact), "--val", str(tmp_path)]) == 2
    assert "--val" in capsys.readouterr().err
