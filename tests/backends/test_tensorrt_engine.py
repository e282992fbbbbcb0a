"""TensorRT integration, against real engines: build into an artifact, run, compare with ONNX
Runtime, CUDA graphs, the Segmenter's auto choice, and refusals of changed engines. These run
wherever TensorRT and an NVIDIA GPU exist; elsewhere they skip with the reason."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.tensorrt
trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (JetPack on Jetson, "
                          "NVIDIA's packages on desktop)")


@pytest.fixture(scope="module")
def engine_artifact(local_artifact, tmp_path_factory):
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.cuda import open_cuda
    from edgeseg.backends.tensorrt.plan import BuildConfig

    try:
        open_cuda(0).close()
    except (ImportError, RuntimeError) as e:
        pytest.skip(f"no usable CUDA GPU: {e}")
    d = tmp_path_factory.mktemp("trt") / "art"
    shutil.copytree(local_artifact, d)
    record = build(BuildConfig(artifact=str(d), timing_cache=str(d.parent / "tc.bin")),
                   log=lambda m: None)
    return d, record


def test_engine_is_recorded_and_hashed(engine_artifact):
    from edgeseg.core.artifact import read_meta

    d, record = engine_artifact
    meta = read_meta(d)  # verifies every hash, the engine's included
    assert record["file"] in meta["files"] and meta["builds"][-1] == record
    assert record["tensorrt"] == trt.__version__ and record["route"] == "strong"
    assert (d.parent / "tc.bin").stat().st_size > 0


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_engine_matches_onnxruntime(engine_artifact, cuda_graph):
    from edgeseg.backends import get_runner

    d, record = engine_artifact
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 64)).astype(np.float32)
    with get_runner("tensorrt", d / record["file"], cuda_graph=cuda_graph) as r:
        got = r.infer({"image": x})
        again = r.infer({"image": x})
        timings = r.last_timings
    with get_runner("onnxruntime", d / "model.onnx") as r:
        ref = r.infer({"image": x})
    (name, y), (_, y_ref) = next(iter(got.items())), next(iter(ref.items()))
    assert (y.argmax(1) == y_ref.argmax(1)).mean() > 0.999
    np.testing.assert_allclose(y, y_ref, atol=1e-2, rtol=1e-2)
    assert np.array_equal(y, again[name])
    assert set(timings) == {"copy_in", "compute", "copy_out"} and timings["compute"] > 0


def test_segmenter_picks_tensorrt(engine_artifact):
    from edgeseg.runtime import Segmenter

    d, _ = engine_artifact
    with Segmenter(d) as seg:
        assert seg.backend == "tensorrt"
        assert seg.predict(np.zeros((40, 90, 3), np.uint8)).shape == (40, 90)


def test_compare_runs_the_engine_against_pytorch_and_onnxruntime(engine_artifact, tmp_path):
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig
    from edgeseg.export.exporter import ExportConfig, compare, export

    out = tmp_path / "bisenetv2"
    export(ExportConfig(out=str(out), model="bisenetv2", num_classes=8, size=(64, 128),
                        precision="fp16", parity_backends=("onnxruntime",), parity_inputs=1),
           log=lambda m: None)
    build(BuildConfig(artifact=str(out)), log=lambda m: None)
    results = compare(str(out), backends=("onnxruntime", "tensorrt"), log=lambda m: None)
    assert {r["backend"] for r in results} == {"onnxruntime", "tensorrt"}
    assert all(r["argmax_agreement"] > 0.99 for r in results)


def test_changed_engines_are_refused(engine_artifact, tmp_path):
    from edgeseg.backends import get_runner
    from edgeseg.backends.tensorrt.plan import EngineMismatch
    from edgeseg.core.artifact import ArtifactError

    d, record = engine_artifact
    other = tmp_path / "art"
    shutil.copytree(d, other)
    engine = other / record["file"]
    engine.write_bytes(engine.read_bytes()[: engine.stat().st_size // 2])  # truncated
    with pytest.raises(ArtifactError, match="sha256"):
        get_runner("tensorrt", engine).__enter__()
    meta = json.loads((d / "meta.json").read_text())
    meta["builds"][-1]["tensorrt"] = "9.9.9"
    shutil.copy(d / record["file"], engine)
    (other / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(EngineMismatch, match="built with TensorRT 9.9.9"):
        get_runner("tensorrt", engine).__enter__()
