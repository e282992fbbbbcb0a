"""The TensorRT builder and runner end to end against a numpy stand-in for `tensorrt` and
CUDA (tests/backends/fake_tensorrt.py): their control flow, files and refusals are checked
here; TensorRT's own behaviour only where it is installed (test_tensorrt_engine.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.backends import fake_tensorrt


@pytest.fixture
def artifact(local_artifact, tmp_path):
    d = tmp_path / "art"
    shutil.copytree(local_artifact, d)
    return d


def test_build_writes_engine_and_record(artifact, monkeypatch, tmp_path):
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig
    from edgeseg.core.artifact import read_meta

    log, _ = fake_tensorrt.install(monkeypatch)
    tc = tmp_path / "tc.bin"
    record = build(BuildConfig(artifact=str(artifact), workspace_mib=64, opt_level=2,
                               timing_cache=str(tc)), log=lambda m: None)
    assert record["file"] == "model.fake-gpu-sm87-trt10.3.0.engine"
    meta = read_meta(artifact)  # the engine's sha256 is in files and verifies
    assert record["file"] in meta["files"] and meta["builds"] == [record]
    assert ("network", 1 << 1) in log  # 10.x: kSTRONGLY_TYPED = 1, a bit position
    assert ("pool", "MemoryPoolType.WORKSPACE", 64 << 20) in log
    assert ("set", "builder_optimization_level", 2) in log
    assert tc.read_bytes() == b"timing"
    assert not list(artifact.glob(".*partial*"))
    with pytest.raises(FileExistsError, match="--force"):
        build(BuildConfig(artifact=str(artifact)), log=lambda m: None)


def test_tensorrt_11_network_has_no_flag_and_dla_reports_placement(artifact, monkeypatch):
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig, PlanError

    log, _ = fake_tensorrt.install(monkeypatch, "11.4.1")
    record = build(BuildConfig(artifact=str(artifact)), log=lambda m: None)
    assert ("network", 0) in log and record["tensorrt"] == "11.4.1"
    with pytest.raises(PlanError, match="DLA runs FP16 or INT8"):
        build(BuildConfig(artifact=str(artifact), dla_core=0), log=lambda m: None)
    log, _ = fake_tensorrt.install(monkeypatch)
    record = build(BuildConfig(artifact=str(artifact), fp16=True, dla_core=0),
                   log=lambda m: None)
    assert ("set", "DLA_core", 0) in log
    # one layer per node of conv -> pool -> relu -> conv, all of which the DLA takes
    assert record["layers"] == {"DLA": {"CONVOLUTION": 2, "POOLING": 1, "ACTIVATION": 1},
                                "GPU": {}}


def test_runner_binds_copies_times_and_replays_graphs(artifact, monkeypatch):
    from edgeseg.backends import get_runner
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig

    _, cuda = fake_tensorrt.install(monkeypatch)
    record = build(BuildConfig(artifact=str(artifact)), log=lambda m: None)
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 64)).astype(np.float32)
    w = np.arange(1, 25, dtype=np.float32).reshape(8, 3) / 10
    want = np.einsum("kc,nchw->nkhw", w, x)
    for graph in (False, True):
        with get_runner("tensorrt", artifact / record["file"], cuda_graph=graph) as r:
            assert r.input_names == ["image"]
            for _ in range(3):
                out, phases = r.infer_timed({"image": x})
                np.testing.assert_allclose(out["logits"], want, rtol=1e-6)
            assert set(phases) == {"copy_in", "compute", "copy_out"}
            with pytest.raises(ValueError, match="outside the engine's optimisation profile"):
                r.infer({"image": np.zeros((1, 3, 16, 16), np.float32)})
    assert cuda.captured == 1  # one capture, then replays


def test_buffers_only_grow_when_shapes_alternate(artifact, monkeypatch):
    """Frames alternating between two batch sizes (or, on a dynamic-size engine, two image
    sizes): after the larger one, no call allocates, and a buffer replaced is freed."""
    from edgeseg.backends import get_runner
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig

    _, cuda = fake_tensorrt.install(monkeypatch)
    record = build(BuildConfig(artifact=str(artifact)), log=lambda m: None)
    rng = np.random.default_rng(0)
    w = np.arange(1, 25, dtype=np.float32).reshape(8, 3) / 10
    with get_runner("tensorrt", artifact / record["file"]) as r:
        counts, allocated = [], []
        for n in (1, 3, 1, 3, 2, 1):
            x = rng.normal(size=(n, 3, 32, 64)).astype(np.float32)
            out = r.infer({"image": x})["logits"]
            np.testing.assert_allclose(out, np.einsum("kc,nchw->nkhw", w, x), rtol=1e-6)
            counts.append(len(cuda.buffers))
            allocated.append(cuda.next)  # moves on each device allocation
    # 2 tensors x (device + pinned) at batch 1, replaced (not added to) at batch 3, then none
    assert counts == [4, 4, 4, 4, 4, 4]
    assert allocated[0] < allocated[1] == allocated[-1]


def test_each_calling_thread_makes_the_gpu_current(artifact, monkeypatch):
    import threading

    from edgeseg.backends import get_runner
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig

    _, cuda = fake_tensorrt.install(monkeypatch)
    record = build(BuildConfig(artifact=str(artifact)), log=lambda m: None)
    x = np.zeros((1, 3, 32, 64), np.float32)
    with get_runner("tensorrt", artifact / record["file"]) as r:
        idents = []
        for _ in range(2):
            t = threading.Thread(target=lambda: (idents.append(threading.get_ident()),
                                                 r.infer({"image": x})))
            t.start()
            t.join()
    assert set(idents) <= cuda.current_in  # CUDA's current device is per thread


def test_segmenter_and_bench_use_the_engine(artifact, monkeypatch):
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig
    from edgeseg.bench.run import BenchConfig, bench
    from edgeseg.runtime import Segmenter

    fake_tensorrt.install(monkeypatch)
    build(BuildConfig(artifact=str(artifact)), log=lambda m: None)
    with Segmenter(artifact) as seg:
        assert seg.backend == "tensorrt"
        assert seg.predict(np.zeros((21, 50, 3), np.uint8)).shape == (21, 50)
    r = bench(BenchConfig(artifact=str(artifact), backend="tensorrt", iters=3, warmup=1),
              log=lambda m: None, progress=False)
    assert {"copy_in", "compute", "copy_out"} <= set(r["phases_ms"])


def test_runner_refuses_other_versions_and_changed_engines(artifact, monkeypatch):
    from edgeseg.backends import get_runner
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig, EngineMismatch
    from edgeseg.core.artifact import ArtifactError

    fake_tensorrt.install(monkeypatch)
    record = build(BuildConfig(artifact=str(artifact)), log=lambda m: None)
    engine = artifact / record["file"]
    fake_tensorrt.install(monkeypatch, "10.8.0")  # same files, newer TensorRT here
    with pytest.raises(EngineMismatch, match="built with TensorRT 10.3.0, this machine has "
                                             "10.8.0"):
        get_runner("tensorrt", engine).__enter__()
    bare = artifact.parent / "bare.engine"  # no meta.json around it: the plan header decides
    shutil.copy(engine, bare)
    with pytest.raises(EngineMismatch, match="serialized by TensorRT 10.3.0.1"):
        get_runner("tensorrt", bare).__enter__()
    fake_tensorrt.install(monkeypatch)
    engine.write_bytes(engine.read_bytes()[:20])
    with pytest.raises(ArtifactError, match="sha256"):
        get_runner("tensorrt", engine).__enter__()
    meta = json.loads((artifact / "meta.json").read_text())
    meta["files"].pop(record["file"])
    (artifact / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(EngineMismatch, match="truncated"):
        get_runner("tensorrt", engine).__enter__()


def test_implicit_int8_builds_the_fp32_graph_with_the_quantizers_cache(local_artifact,
                                                                      tmp_path, monkeypatch):
    """An INT8 artifact of the tensorrt target, as `edgeseg quantize` writes it: --int8 parses
    model.fp32.onnx with calib.cache replayed by the calibrator (TensorRT 10.x)."""
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig
    from edgeseg.core.artifact import read_meta
    from edgeseg.data.calibration import build as build_calib
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.quant.config import QuantConfig
    from edgeseg.quant.int8 import quantize
    from tests.runtime.conftest import SIZE

    write_dataset(tmp_path / "synth", 40, SIZE, seed=0, progress=False)
    calib = build_calib(tmp_path / "calib", size=SIZE, data=str(tmp_path / "synth"), num=32,
                        progress=False, log=lambda m: None)
    art = tmp_path / "int8"
    quantize(QuantConfig(artifact=str(local_artifact), calib=str(calib.root), out=str(art),
                         target="tensorrt", min_fp32_agreement=0.0),
             log=lambda m: None, progress=False)
    fake_tensorrt.install(monkeypatch)
    record = build(BuildConfig(artifact=str(art), int8=True), log=lambda m: None)
    meta = read_meta(art)
    assert record["route"] == "weak" and record["calibration"] == "cache"
    assert record["onnx_sha256"] == meta["files"]["model.fp32.onnx"] != meta["files"]["model.onnx"]
