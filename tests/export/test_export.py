"""Export to an artifact directory, parity in ONNX Runtime and OpenVINO, and bad input."""

from __future__ import annotations

import json

import onnx
import pytest

from edgeseg.cli.main import main
from edgeseg.core.artifact import ArtifactError, read_meta
from edgeseg.export.exporter import ExportConfig, ParityError, compare, export
from edgeseg.export.onnx import graph_opset

FAMILIES = ["bisenetv1", "bisenetv2", "icnet", "segnet", "deeplabv3plus", "fastscnn", "ddrnet",
            "pidnet", "stdc", "segformer"]
# BatchNorms no conv precedes, left in the graph: BiSeNet V2's context embedding; DDRNet's
# and PIDNet's pre-activation (BN-ReLU-conv) pyramid pooling and heads.
UNFOLDED_BN = {"bisenetv2": 1, "ddrnet": 11, "pidnet": 8}
QUIET = {"log": lambda s: None}


def cfg(tmp_path, model="bisenetv2", **kw):
    return ExportConfig(out=str(tmp_path / "art"), model=model, size=(64, 128),
                        parity_inputs=2, num_classes=5, **kw)


@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_exports_with_parity(tmp_path, model):
    out = export(cfg(tmp_path, model), **QUIET)
    meta = read_meta(out)
    assert meta["input"]["shape"] == [1, 3, 64, 128] and meta["output"]["kind"] == "logits"
    results = {r["backend"]: r for r in meta["parity"]["results"]}
    assert set(results) == {"onnxruntime", "openvino"}
    for r in results.values():
        assert r["argmax_agreement"] >= 0.999 and r["mean_rel_diff"] <= 1e-3
    graph = onnx.load(out / "model.onnx").graph
    assert len(graph.input) == 1 and len(graph.output) == 1
    ops = {n.op_type for n in graph.node}
    # Folded into the convs, but for the BatchNorms that no conv precedes.
    n_bn = sum(n.op_type == "BatchNormalization" for n in graph.node)
    assert n_bn == UNFOLDED_BN.get(model, 0)
    assert "MaxUnpool" not in ops
    assert meta["export"]["opset"] == 17 == graph_opset(onnx.load(out / "model.onnx"))
    assert all(len(n.output) == 1 for n in graph.node if n.op_type == "MaxPool")  # no indices
    assert not {"ScatterND", "ScatterElements", "GatherND"} & ops
    assert meta["export"]["ops_after"] and meta["export"]["simplifier"].startswith("onnx")
    assert compare(str(out), inputs=1, **QUIET)[0]["argmax_agreement"] >= 0.999
    from edgeseg.core.lint import lint, load_onnx

    for target in ("tensorrt-10", "tensorrt-11", "openvino"):
        findings = lint(load_onnx(out), target)
        assert [f for f in findings if f.severity == "error"] == [], (target, findings)


@pytest.mark.parametrize("output, dtype", [("labels", "uint8"), ("probs", "float32"),
                                           ("labels_lowres", "uint8")])
def test_output_kinds(tmp_path, output, dtype):
    meta = read_meta(export(cfg(tmp_path, "icnet", output=output), **QUIET))
    assert meta["output"]["kind"] == output and meta["output"]["dtype"] == dtype
    graph = onnx.load(tmp_path / "art" / "model.onnx").graph
    assert ("ArgMax" in {n.op_type for n in graph.node}) == output.startswith("labels")
    if output == "labels_lowres":
        cost = meta["parity"]["lowres_shortcut"]
        assert 0.0 < cost["argmax_agreement"] <= 1.0


def test_fused_preprocess_takes_uint8_frames(tmp_path):
    from edgeseg.core.lint import lint, load_onnx

    meta = read_meta(export(cfg(tmp_path, "icnet", fuse_preprocess=True, color="BGR",
                                dynamic="batch"), **QUIET))
    assert meta["input"]["dtype"] == "uint8" and meta["input"]["shape"] == ["batch", 64, 128, 3]
    assert meta["input"]["layout"] == "NHWC" and meta["input"]["color"] == "BGR"
    assert meta["input"]["network_color"] == "RGB"
    model = load_onnx(tmp_path / "art")
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # uint8 only at the boundary: TensorRT would reject a uint8 Transpose inside
    assert [f for f in lint(model, "tensorrt-10") if f.severity == "error"] == []
    # the batch of two was checked too
    assert meta["parity"]["results"][0]["inputs"] == 3


def test_dynamic_batch_and_opset_18(tmp_path):
    meta = read_meta(export(cfg(tmp_path, "bisenetv2", dynamic="batch", opset=18), **QUIET))
    assert meta["export"]["opset"] == 18 and "dynamo" in meta["export"]["exporter"]
    assert meta["input"]["shape"][0] == "batch" and meta["output"]["shape"][0] == "batch"
    dim = onnx.load(tmp_path / "art" / "model.onnx").graph.input[0].type.tensor_type.shape.dim[0]
    assert not dim.HasField("dim_value")


def test_fp16_labels(tmp_path):
    meta = read_meta(export(cfg(tmp_path, "icnet", precision="fp16", output="labels"), **QUIET))
    assert meta["output"]["dtype"] == "uint8" and meta["precision"] == "fp16"
    assert all(r["argmax_agreement"] >= 0.995 for r in meta["parity"]["results"])


def test_trained_checkpoint_and_real_images(tmp_path):
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.train import TrainConfig, train

    data = write_dataset(tmp_path / "d", 6, (64, 128), progress=False)
    train(TrainConfig(model="icnet", data=str(data), out=str(tmp_path / "c.pt"), size=(64, 128),
                      iters=2, batch=2, threads=1), progress=False, log=lambda s: None)
    out = export(ExportConfig(out=str(tmp_path / "art"), checkpoint=str(tmp_path / "c.pt"),
                              size=(64, 128), data=str(data), parity_inputs=2), **QUIET)
    meta = read_meta(out)
    assert meta["model"]["source"] == "checkpoint" and meta["classes"]["names"][-1] == "pole"
    r = meta["parity"]["results"][0]
    assert r["miou_reference"] is not None and r["miou_backend"] == pytest.approx(
        r["miou_reference"], abs=1e-3)
    with pytest.raises(ValueError, match=r"is a icnet checkpoint, not segnet"):
        export(ExportConfig(out=str(tmp_path / "x"), model="segnet",
                            checkpoint=str(tmp_path / "c.pt"), size=(64, 128)), **QUIET)
    assert not (tmp_path / "x").exists()


def test_existing_output_is_kept_without_force(tmp_path):
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "keep").write_text("x")
    with pytest.raises(FileExistsError, match="--force"):
        export(cfg(tmp_path), **QUIET)
    assert (tmp_path / "art" / "keep").read_text() == "x"


def test_failed_parity_leaves_nothing(tmp_path, monkeypatch):
    from edgeseg.export import exporter

    monkeypatch.setitem(exporter.THRESHOLDS, "fp32",
                        {"argmax_agreement": 1.01, "mean_rel_diff": 1e-3})
    with pytest.raises(ParityError, match="argmax agreement 1.00000 < 1.01"):
        export(cfg(tmp_path, "icnet"), **QUIET)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw, pattern", [
    ({"output": "mask"}, "unknown output kind 'mask'"),
    ({"size": (16, 64)}, "at least 32x32"),
    ({"dynamic": "hw"}, "choose batch"),
    ({"model": None}, "give --model NAME"),
])
def test_bad_export_requests(tmp_path, kw, pattern):
    base = {"out": str(tmp_path / "art"), "model": "icnet", "size": (64, 128)}
    with pytest.raises(ValueError, match=pattern):
        export(ExportConfig(**{**base, **kw}), **QUIET)
    assert not (tmp_path / "art").exists()


def test_changed_model_file_is_detected(tmp_path):
    out = export(cfg(tmp_path, "icnet"), **QUIET)
    with open(out / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 differs"):
        read_meta(out)


def test_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="no meta.json"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text("[]")
    with pytest.raises(ArtifactError, match="not an edgeseg artifact"):
        read_meta(tmp_path)
    base = {"schema": "edgeseg-artifact", "model": {}, "classes": {}, "input": {},
            "output": {}, "precision": "fp32", "versions": {}}
    (tmp_path / "meta.json").write_text(json.dumps({**base, "schema_version": "1",
                                                    "files": {}}))
    with pytest.raises(ArtifactError, match="schema_version must be an integer"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**base, "schema_version": 1,
                                                    "files": {"../x": "0"}}))
    with pytest.raises(ArtifactError, match="plain file names"):
        read_meta(tmp_path)


def test_parity_fails_on_nan_and_shape_mismatch():
    import numpy as np

    from edgeseg.core.compare import compare_outputs
    from edgeseg.export.parity import THRESHOLDS

    ref = [np.ones((1, 3, 4, 4), np.float32)]
    bad = [np.full((1, 3, 4, 4), np.nan, np.float32)]
    assert compare_outputs("x", ref, bad, "logits").failures(THRESHOLDS["fp32"])
    with pytest.raises(ParityError, match="output shape"):
        compare_outputs("x", ref, [np.ones((3, 4, 4), np.float32)], "logits")


def test_compare_of_an_imported_artifact_is_explained(tmp_path, capsys):
    out = export(cfg(tmp_path, "icnet"), **QUIET)
    assert main(["import", str(out / "model.onnx"), "--out", str(tmp_path / "imp"),
                 "--classes", "5"]) == 0
    assert main(["compare", str(tmp_path / "imp")]) == 2
    assert "imported artifact has no PyTorch model" in capsys.readouterr().err


def test_cli_export_and_compare(tmp_path, capsys):
    art = tmp_path / "a"
    assert main(["export", "--model", "icnet", "--size", "64x128", "--out", str(art),
                 "--num-classes", "3", "--parity-inputs", "1"]) == 0
    assert main(["compare", str(art), "--inputs", "1", "--json", str(tmp_path / "p.json")]) == 0
    assert "parity: PASS" in capsys.readouterr().err
    assert json.loads((tmp_path / "p.json").read_text())[0]["backend"] == "onnxruntime"
    assert main(["export", "--model", "icnet", "--size", "64x128", "--out", str(art)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["compare", str(tmp_path)]) == 2
    assert "no meta.json" in capsys.readouterr().err


def test_fp16_with_openvino_ir(tmp_path):
    import numpy as np

    out = export(cfg(tmp_path, "bisenetv2", precision="fp16", formats=("onnx", "openvino")),
                 **QUIET)
    meta = read_meta(out)
    assert meta["precision"] == "fp16" and set(meta["files"]) == {"model.onnx", "model.xml",
                                                                   "model.bin"}
    assert meta["parity"]["thresholds"]["argmax_agreement"] == 0.995
    by = {r["backend"]: r for r in meta["parity"]["results"]}
    assert by["openvino"]["file"] == "model.xml" and by["onnxruntime"]["file"] == "model.onnx"
    assert all(r["argmax_agreement"] >= 0.995 for r in by.values())
    graph = onnx.load(out / "model.onnx").graph
    # FP16 inside, FP32 at the boundary
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    assert oct((out).stat().st_mode)[-3:] != "700"
    from edgeseg.core.lint import lint, load_onnx

    assert [f for f in lint(load_onnx(out), "tensorrt-10") if f.severity == "error"] == []
    assert np.isfinite(by["onnxruntime"]["max_abs_diff"])


def test_int8_is_not_an_export_precision(tmp_path):
    with pytest.raises(ValueError, match="INT8 is `edgeseg quantize`"):
        export(cfg(tmp_path, precision="int8"), **QUIET)


RECIPES = sorted(__import__("pathlib").Path(__file__).resolve().parents[2].glob("export/*.toml"))


def test_recipes_cover_every_model_and_parse():
    import argparse

    from edgeseg.cli.export import apply_recipe
    from edgeseg.cli.main import build_parser

    assert {p.name.split("-")[0] for p in RECIPES} == set(FAMILIES)
    for path in RECIPES:
        args = build_parser().parse_args(["export", "--out", "x"])
        apply_recipe(args, str(path))
        assert isinstance(args, argparse.Namespace) and args.model in FAMILIES
        assert args.size == (512, 1024) and args.precision in ("fp32", "fp16")


def test_recipe_with_command_line_override(tmp_path, capsys):
    recipe = [p for p in RECIPES if p.name.startswith("icnet") and "openvino" in p.name][0]
    assert main(["export", "--recipe", str(recipe), "--size", "64x128", "--out",
                 str(tmp_path / "a"), "--parity-inputs", "1"]) == 0
    meta = read_meta(tmp_path / "a")
    assert meta["input"]["size"] == [64, 128] and "model.xml" in meta["files"]
    fp16 = [p for p in RECIPES if p.name.startswith("icnet") and "fp16" in p.name][0]
    # an explicit flag wins even when it equals the built-in default
    assert main(["export", "--recipe", str(fp16), "--precision", "fp32", "--size", "64x128",
                 "--out", str(tmp_path / "c"), "--parity-inputs", "1"]) == 0
    assert read_meta(tmp_path / "c")["precision"] == "fp32"
    (tmp_path / "bad.toml").write_text('model = "icnet"\nsizes = "1x1"\n')
    assert main(["export", "--recipe", str(tmp_path / "bad.toml"), "--out",
                 str(tmp_path / "b")]) == 2
    assert "unknown keys ['sizes']" in capsys.readouterr().err
