"""`edgeseg bench --matrix`: cells, artifacts made on demand, results, resume."""

from __future__ import annotations

import pytest

from edgeseg.bench import results
from edgeseg.cli.main import main
from edgeseg.pipeline import matrix


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, synth):
    from edgeseg.train import TrainConfig, train

    d = tmp_path_factory.mktemp("ckpt")
    train(TrainConfig(model="icnet", data=str(synth), out=str(d / "icnet.pt"), size=(32, 64),
                      iters=2, batch=2, val_every=10, val_limit=2), progress=False,
          log=lambda m: None)
    return d


def write_toml(path, checkpoint, synth, work, res, extra=""):
    path.write_text(f"""[matrix]
models = ["icnet"]
checkpoints = "{checkpoint}/{{model}}.pt"
val = "{synth}"
val_limit = 2
precisions = ["fp32", "fp16"]
backends = ["torch", "onnxruntime"]
sizes = ["32x64"]
iters = 2
warmup = 0
threads = 1
work = "{work}"
results = "{res}"
{extra}""")
    return path


def test_cells_skip_torch_for_quantized_precisions():
    cfg = matrix.MatrixConfig(models=("a",), checkpoints="{model}.pt",
                              precisions=("fp32", "int8"), backends=("torch", "openvino"))
    assert [c.label for c in matrix.cells(cfg)] == [
        "a 512x1024 fp32 torch", "a 512x1024 fp32 openvino",
        "a 512x1024 int8 (openvino target) openvino"]


def test_matrix_runs_then_resumes(tmp_path, checkpoint, synth, capsys):
    res = tmp_path / "res"
    toml = write_toml(tmp_path / "m.toml", checkpoint, synth, tmp_path / "work", res)
    assert main(["bench", "--matrix", str(toml), "--no-progress"]) == 0
    files = sorted(res.rglob("*.json"))
    assert [f.name for f in files] == ["icnet-fp16-onnxruntime-32x64-b1.json",
                                       "icnet-fp32-onnxruntime-32x64-b1.json",
                                       "icnet-fp32-torch-32x64-b1.json"]
    for f in files:
        r = results.load(f)
        assert r["accuracy"]["images"] == 2 and r["accuracy"]["size"] == "32x64"
    assert "3 cells run, 0 already done, 0 failed" in capsys.readouterr().err
    # a second run resumes: nothing redone; a broken result file is redone
    files[0].write_text("{")
    assert main(["bench", "--matrix", str(toml), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "1 cells run, 2 already done, 0 failed" in err and "redoing" in err
    assert results.load(files[0])


def test_missing_checkpoint_fails_the_cell_and_says_why(tmp_path, synth, capsys):
    toml = write_toml(tmp_path / "m.toml", tmp_path / "none", synth, tmp_path / "w",
                      tmp_path / "r")
    assert main(["bench", "--matrix", str(toml), "--no-progress"]) == 1
    assert "no checkpoint for icnet" in capsys.readouterr().err
    assert not list((tmp_path / "r").rglob("*.json"))


@pytest.mark.parametrize("body, message", [
    ('[matrix]\nmodels = ["icnet"]\ncheckpoints = "x.pt"\n', "containing {model}"),
    ('[matrix]\nmodels = ["icnet"]\ncheckpoints = "{model}"\nprecisions = ["int4"]\n',
     "unknown precisions"),
    ('[matrix]\nmodels = ["icnet"]\ncheckpoints = "{model}"\nspeed = 1\n', "unknown keys"),
    ('[matrix]\nmodels = ["icnet"]\ncheckpoints = "{model}"\nsizes = ["big"]\n', "sizes"),
    ('[matrix\n', "not valid TOML"),
])
def test_bad_matrix_files(tmp_path, body, message):
    path = tmp_path / "m.toml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        matrix.load(path)


def test_cell_file_names_match_the_results_default_name():
    from tests.bench.test_results import make_result

    cell = matrix.Cell("bisenetv1", (512, 1024), "int8", "openvino", "openvino")
    assert cell.file_name == results.default_name(make_result())
    cfg = matrix.MatrixConfig(models=("a",), checkpoints="{model}", precisions=("int8",),
                              backends=("openvino",),
                              int8_target={"openvino": ["openvino", "onnxruntime"]})
    assert [c.target for c in matrix.cells(cfg)] == ["openvino", "onnxruntime"]


def test_int8_gates_setting_and_record(tmp_path):
    with pytest.raises(ValueError, match="int8_gates must be"):
        matrix.MatrixConfig(models=("a",), checkpoints="{model}", int8_gates="never")
    from edgeseg.core.artifact import new_meta, write_meta

    agreement = {"onnxruntime_vs_openvino": {"kernels": {"held_out_calibration_images": 0.93}},
                 "gate": "diagnostic", "minimum": {"reference": 0.995, "kernels": 0.98}}
    for name, limit in (("waived", 0.0), ("gated", 0.98)):
        d = tmp_path / name
        d.mkdir()
        acceptance = {"criterion": "fp32_agreement", "figure": 0.97, "limit": limit,
                      "passed": 0.97 >= limit}
        meta = new_meta(model={}, classes={}, input={}, output={}, precision="int8", files={},
                        acceptance=acceptance, parity={"backend_agreement": agreement})
        write_meta(d, meta)
        rec = matrix.gate_record(d)
        assert rec["enforced"] is (limit > 0) and rec["acceptance"]["figure"] == 0.97
        assert rec["backend_agreement"]["onnxruntime_vs_openvino"]["kernels"][
            "held_out_calibration_images"] == 0.93


def test_torch_compile_cells_are_fp32_only():
    cfg = matrix.MatrixConfig(models=("a",), checkpoints="{model}", precisions=("fp32", "fp16"),
                              backends=("torch-compile", "onnxruntime"))
    assert [c.file_name for c in matrix.cells(cfg)] == [
        "a-fp32-torch-compile-512x1024-b1.json", "a-fp32-onnxruntime-512x1024-b1.json",
        "a-fp16-onnxruntime-512x1024-b1.json"]
