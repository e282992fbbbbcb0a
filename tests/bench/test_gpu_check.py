"""scripts/gpu_check.py (`make gpu-check`) everywhere but on a GPU: the no-GPU exit, and its
dry run (the same loop on the CPU, TensorRT through the stand-in of
tests/backends/fake_tensorrt.py) writing result files that validate and that `edgeseg report`
reads. The pieces it added to edgeseg for GPUs are checked on the CPU here too: ONNX Runtime's
IO-binding phase split, and the refusal to time a CPU fallback when CUDA was asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeseg.bench import results
from edgeseg.bench.run import BenchConfig
from edgeseg.cli.main import main as edgeseg_main
from tests.backends import fake_tensorrt

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.py"


@pytest.fixture
def gpu_check(monkeypatch):
    # Imported by name from scripts/ (not loaded from a path), so that the spawned export
    # workers can import it too: they are given the parent's sys.path.
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    return gpu_check


def _has_gpu() -> bool:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_check

        return gpu_check.has_gpu(gpu_check.gpu_facts())
    finally:
        sys.path.remove(str(SCRIPT.parent))


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: the script would run the check")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"),
                        "--workdir", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no CUDA GPU here")
    assert "torch.cuda.is_available() is False" in lines[0]
    assert ("bisenetv1, bisenetv2, ddrnet, deeplabv3plus, fastscnn, icnet, pidnet, segformer, "
            "segnet, stdc" in lines[0])
    assert "1024x2048" in lines[0] and "ort-cuda-fp16" in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_dry_run_writes_results_that_validate_and_report_merges(gpu_check, monkeypatch,
                                                                  tmp_path, capsys):
    fake_tensorrt.install(monkeypatch, graph=True)
    out = tmp_path / "results"
    rc = gpu_check.main(["--dry-run", "--models", "icnet", "--size", "32x64", "--weights",
                         "random", "--skip", "torch-compile-fp32", "--jobs", "2",
                         "--workdir", str(tmp_path / "work"), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    files = sorted(out.rglob("*.json"))
    assert [f.name for f in files] == [
        "icnet-fp16-onnxruntime-32x64-b1.json", "icnet-fp16-tensorrt-32x64-b1.json",
        "icnet-fp16-torch-half-32x64-b1.json", "icnet-fp32-onnxruntime-32x64-b1.json",
        "icnet-fp32-tensorrt-32x64-b1.json", "icnet-fp32-torch-32x64-b1.json"]
    for f in files:
        r = results.load(f)  # validates
        g = r["gpu_check"]
        assert g["dry_run"] is True and g["weights"].startswith("random")
        assert g["reference"]["engine"] == "onnxruntime" and g["pixels"] == 32 * 64
        assert g["threshold"] <= g["argmax_agreement"] <= 1 and not g["below_threshold"]
        assert r["config"]["iters"] == 1 and r["config"]["warmup"] == 1
    trt = results.load(out / files[0].parent.name / "icnet-fp16-tensorrt-32x64-b1.json")
    assert set(trt["phases_ms"]) == {"preprocess", "copy_in", "compute", "copy_out",
                                     "postprocess"}
    assert trt["gpu_check"]["build_s"] is not None
    half = results.load(files[2])
    assert half["backend"]["options"]["half"] is True
    assert half["artifact"]["precision"] == "fp16"
    assert "exporting 2 artifacts at 32x64 (2 at a time)" in text  # worker processes
    # one progress line per configuration, then the summary (also written next to the results)
    assert text.count("] icnet ") == 6
    assert "| icnet | tensorrt-fp16 |" in text and "Not run" not in text
    assert (files[0].parent / "gpu-check.md").read_text() in text
    assert edgeseg_main(["report", str(out)]) == 0
    table = capsys.readouterr().out
    for backend in ("torch-half", "onnxruntime", "tensorrt"):
        assert f"| {backend} |" in table


def test_budget_and_missing_engines_skip_with_the_reason(gpu_check, tmp_path):
    a = gpu_check.parse_args(["--models", "icnet,segnet", "--budget-s", "0",
                              "--out", str(tmp_path)])
    check = gpu_check.make_check(a)
    facts = {"torch": "2.x", "torch_cuda": True, "onnxruntime": "1.x", "ort_cuda": False,
             "gpus": [{"name": "GPU"}], "tensorrt": False}
    arts = {(m, p): {"artifact": "a", "reference": "r"} for m in check.models
            for p in ("fp32", "fp16")}
    lines = []
    out = gpu_check.run_all(check, facts, arts, lines.append)
    assert len(out) == 14 and all(o.result is None for o in out)
    why = {o.config.name: o.why for o in out if o.model == "icnet"}
    assert why["torch-fp32"].startswith("time budget")
    assert "CUDAExecutionProvider" in why["ort-cuda-fp16"]
    assert why["tensorrt-fp16"] == "TensorRT is not importable here"
    # the cheap configurations of every model come before any torch.compile or build
    kinds = [o.config.kind for o in out]
    assert kinds == sorted(kinds, key=gpu_check.KIND_ORDER.index)


@pytest.mark.parametrize("facts, gpu", [
    ({"torch_cuda": True, "ort_cuda": False, "gpus": None}, True),
    ({"torch_cuda": False, "ort_cuda": True, "gpus": [{"name": "x"}]}, True),
    # onnxruntime-gpu lists its provider on machines without a GPU
    ({"torch_cuda": False, "ort_cuda": True, "gpus": None}, False),
    ({"torch_cuda": False, "ort_cuda": False, "gpus": [{"name": "x"}]}, False),
])
def test_has_gpu(gpu_check, facts, gpu):
    assert gpu_check.has_gpu(facts) is gpu


def test_bad_arguments_name_the_choices(gpu_check, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--only", "torch-fp64"])
    assert "torch-fp32" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no configuration"):
        gpu_check.make_check(gpu_check.parse_args(["--only", "torch-fp32", "--skip",
                                                   "torch-fp32"]))


def test_half_applies_to_torch_only():
    with pytest.raises(ValueError, match="--half applies to --backend torch"):
        BenchConfig(artifact="x", backend="onnxruntime", half=True)


def test_onnxruntime_io_binding_split_matches_plain_run(exported):
    """The CUDA path's IO binding, bound to the CPU: same outputs as run(), three phases,
    and the binding is reused until the input shape changes."""
    from edgeseg.backends import get_runner

    x = np.random.default_rng(0).normal(size=(1, 3, 32, 64)).astype(np.float32)
    with get_runner("onnxruntime", exported / "model.onnx") as r:
        name = r.input_names[0]
        assert r.infer_timed({name: x})[1] == {}  # on the CPU the caller times the call
        r._bind_to = ("cpu", 0)
        for scale in (1.0, 2.0):  # the second call refills the bound input in place
            got, phases = r.infer_timed({name: x * scale})
            ref = r.infer({name: x * scale})
            np.testing.assert_allclose(got[r.output_names[0]], ref[r.output_names[0]],
                                       rtol=1e-6)
            assert set(phases) == {"copy_in", "compute", "copy_out"}
            assert all(v >= 0 for v in phases.values())
        binding = r._binding
        r.infer_timed({name: x})
        assert r._binding is binding


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_onnxruntime_asked_for_cuda_without_it_refuses(exported):
    import onnxruntime

    from edgeseg.backends import get_runner
    from edgeseg.core.errors import EngineUnavailable

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(EngineUnavailable, match="onnxruntime-gpu"):
        with get_runner("onnxruntime", exported / "model.onnx", device="gpu:0"):
            pass


@pytest.mark.slow  # ~60 s: inductor compiles C++ kernels on this CPU
def test_dry_run_with_torch_compile(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--models", "icnet",
                        "--size", "32x64", "--weights", "random", "--only",
                        "torch-compile-fp32", "--workdir", str(tmp_path / "work"),
                        "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    (f,) = (tmp_path / "out").rglob("*.json")
    r = results.load(f)
    assert r["backend"]["name"] == "torch-compile" and r["gpu_check"]["argmax_agreement"] > 0.99
