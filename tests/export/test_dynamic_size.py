"""A dynamic height/width (`--dynamic size`) through every stage: the run-size rule, export
and its parity at the range's ends, the runtimes at an image's own size, the OpenVINO
runner's per-shape compilations, INT8, the TensorRT profile, the benchmark and Triton."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeseg.core.artifact import ArtifactError, read_meta
from edgeseg.core.errors import UsageError
from edgeseg.core.shapes import fit_size, run_size, size_range
from edgeseg.export.exporter import ExportConfig, export

SIZE, LO, HI = (64, 128), (32, 64), (128, 256)
QUIET = {"log": lambda s: None}


@pytest.mark.parametrize("hw, want", [
    ((64, 128), (64, 128)),      # inside: its own size
    ((33, 255), (33, 255)),      # inside, odd sides
    ((256, 512), (128, 256)),    # twice the max: halved, aspect kept
    ((16, 32), (32, 64)),        # half the min: doubled
    ((1000, 100), (128, 64)),    # too tall and too narrow: scaled down, width clamped up
    ((10, 1000), (32, 256)),     # an aspect the range cannot hold: both clamped
    ((65, 300), (55, 256)),      # 65 * 256/300 = 55.47 -> 55
    ((3, 7), (32, 75)),          # 7 * 32/3 = 74.67 -> 75
])
def test_fit_size(hw, want):
    assert fit_size(*hw, LO, HI) == want


def test_run_size_of_static_and_dynamic_inputs():
    static = {"size": [64, 128], "dynamic": "batch"}
    assert run_size(static, 500, 500) == (64, 128) and size_range(static) is None
    dyn = {"size": [64, 128], "dynamic": "size", "size_range": {"min": LO, "max": HI}}
    assert run_size(dyn, 100, 100) == (100, 100)
    with pytest.raises(UsageError, match="size_range"):
        size_range({"size": [64, 128], "dynamic": "size"})


@pytest.fixture(scope="module")
def dyn(tmp_path_factory):
    out = tmp_path_factory.mktemp("dyn") / "bisenetv2-dyn"
    export(ExportConfig(out=str(out), model="bisenetv2", size=SIZE, num_classes=5,
                        dynamic="size", size_range=(LO, HI), formats=("onnx", "openvino"),
                        parity_inputs=2), **QUIET)
    return out


def test_export_records_the_range_and_checks_parity_at_its_ends(dyn):
    meta = read_meta(dyn)
    assert meta["input"]["shape"] == ["batch", 3, "height", "width"]
    assert meta["output"]["shape"] == ["batch", 5, "height", "width"]
    assert meta["input"]["size_range"] == {"min": list(LO), "max": list(HI)}
    # 2 nominal inputs, a batch of two, the min, an odd size inside and the max
    assert {r["inputs"] for r in meta["parity"]["results"]} == {6}
    dims = onnx.load(dyn / "model.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


def test_the_graph_equals_pytorch_at_sizes_it_was_not_exported_at(dyn):
    import onnxruntime as ort
    import torch

    from edgeseg.checkpoint import build_reference

    meta = read_meta(dyn)
    ref = build_reference(meta["model"], meta["input"], "logits")
    sess = ort.InferenceSession(str(dyn / "model.onnx"), providers=["CPUExecutionProvider"])
    for hw in [(37, 99), (128, 256), (96, 64)]:
        x = np.random.default_rng(0).normal(size=(2, 3, *hw)).astype(np.float32)
        with torch.inference_mode():
            want = ref(torch.from_numpy(x)).numpy()
        got = sess.run(None, {"input": x})[0]
        assert got.shape == (2, 5, *hw)
        assert np.abs(got - want).max() <= 1e-4 * (np.abs(want).max() + 1)


@pytest.mark.parametrize("kw, pattern", [
    ({"model": "icnet", "dynamic": "size"}, "ICNet computes its pyramid pooling windows"),
    ({"model": "fastscnn", "dynamic": "size"}, "FastSCNN computes its pyramid pooling"),
    ({"dynamic": "size", "size_range": ((80, 160), (128, 256))}, "must lie in --size-range"),
    ({"dynamic": "batch", "size_range": (LO, HI)}, "--size-range needs --dynamic size"),
    ({"dynamic": "size", "size_range": ((16, 64), (128, 256))}, "at least 32x32"),
    ({"dynamic": "hw"}, "choose batch .* or size"),
    ({"dynamic": "size", "model_options": {"pad": "error"}}, "pad='error'"),
])
def test_refusals_write_nothing(tmp_path, kw, pattern):
    base = {"out": str(tmp_path / "art"), "model": "bisenetv2", "size": SIZE, "num_classes": 5}
    with pytest.raises(UsageError, match=pattern):
        export(ExportConfig(**{**base, **kw}), **QUIET)
    assert not (tmp_path / "art").exists()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_segmenter_runs_each_image_at_its_own_size(dyn, backend):
    import torch

    from edgeseg.checkpoint import build_reference
    from edgeseg.runtime import Segmenter

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
              for hw in [(50, 90), (200, 600), (50, 90), (20, 20)]]
    with Segmenter(dyn, backend=backend) as seg:
        assert [seg.run_size(im.shape[:2]) for im in images] == \
            [(50, 90), (85, 256), (50, 90), (64, 64)]
        single = [seg.predict(im) for im in images]
        batched = seg.predict_batch(images)  # two sizes: one run per size
        ref = build_reference(seg.meta["model"], seg.meta["input"], "logits")
        x = seg.pipeline.prepare(images[0])
        assert x.shape == (1, 3, 50, 90)  # no resize for an image that fits
        with torch.inference_mode():
            want = ref(torch.from_numpy(x)).numpy()[0].argmax(0)
        if backend == "openvino":  # one static compilation per input shape, reused
            assert set(seg._runner._by_shape) == {
                ((1, 3, 50, 90),), ((1, 3, 85, 256),), ((1, 3, 64, 64),), ((2, 3, 50, 90),)}
    assert all(a.shape == im.shape[:2] for a, im in zip(single, images))
    assert all(np.array_equal(a, b) for a, b in zip(single, batched))
    assert np.mean(single[0] == want) >= 0.999


def test_int8_keeps_the_graph_dynamic(dyn, tmp_path):
    from edgeseg.data.calibration import build
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.quant.config import QuantConfig
    from edgeseg.quant.int8 import quantize
    from edgeseg.runtime import Segmenter

    write_dataset(tmp_path / "synth", 40, SIZE, seed=0, progress=False)
    calib = build(tmp_path / "calib", size=SIZE, data=str(tmp_path / "synth"), num=32,
                  progress=False, log=lambda m: None)
    out = tmp_path / "int8"
    # random weights decide few pixels by a margin: count every pixel
    meta = quantize(QuantConfig(artifact=str(dyn), calib=str(calib.root), out=str(out),
                                target="openvino", decided_margin=0.0), **QUIET, progress=False)
    assert meta["input"]["size_range"] == {"min": list(LO), "max": list(HI)}
    # the kernel check read the layers' shapes at the nominal size
    assert meta["calibration"]["kernel_check"]["layers"] >= 10
    dims = onnx.load(out / "model.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    im = np.random.default_rng(2).integers(0, 256, (120, 250, 3), dtype=np.uint8)
    for backend in ("onnxruntime", "openvino"):
        with Segmenter(out, backend=backend) as q, Segmenter(dyn, backend=backend) as f:
            assert q.run_size(im.shape[:2]) == (120, 250)
            assert np.mean(q.predict(im) == f.predict(im)) >= 0.9


def test_tensorrt_profile_spans_the_range(dyn):
    from edgeseg.backends.tensorrt.plan import (
        BuildConfig,
        PlanError,
        _profile,
        plan_build,
        trtexec_command,
    )

    meta = read_meta(dyn)
    profile, notes = _profile(meta["input"], BuildConfig(artifact=str(dyn)))
    assert profile == {"input": [[1, 3, 32, 64], [1, 3, 64, 128], [8, 3, 128, 256]]}
    assert "32x64 / 64x128 / 128x256" in notes[0]
    plan = plan_build(meta, BuildConfig(artifact=str(dyn), shapes="1/2/4"), "10.16.0")
    cmd = trtexec_command(meta, plan, BuildConfig(artifact=str(dyn)), "model.engine")
    assert "--minShapes=input:1x3x32x64" in cmd and "--optShapes=input:2x3x64x128" in cmd
    assert "--maxShapes=input:4x3x128x256" in cmd
    with pytest.raises(PlanError, match="outside the artifact's size range"):
        _profile(meta["input"], BuildConfig(artifact=str(dyn),
                                            shapes="1x3x32x64/1x3x64x128/1x3x256x256"))


def test_bench_at_a_size_of_the_range(dyn):
    from edgeseg.bench.run import BenchConfig, bench
    from edgeseg.core.artifact import ArtifactError

    r = bench(BenchConfig(artifact=str(dyn), iters=2, warmup=1, size=(96, 160), batch=2),
              log=lambda m: None, progress=False)
    assert r["config"]["size"] == [96, 160] and r["config"]["batch"] == 2
    with pytest.raises(ArtifactError, match="outside the artifact's size range"):
        bench(BenchConfig(artifact=str(dyn), iters=1, size=(256, 256)), log=lambda m: None,
              progress=False)
    with pytest.raises(UsageError, match="--size or --image, not both"):
        BenchConfig(artifact=str(dyn), size=(64, 128), image="frame.png")


def test_triton_configs_leave_height_and_width_open(dyn, tmp_path):
    mc = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    text_format = pytest.importorskip("google.protobuf.text_format")
    from edgeseg.triton.repository import RepoConfig, write

    write(RepoConfig(str(dyn), str(tmp_path / "repo")), **QUIET)
    c = text_format.Parse((tmp_path / "repo" / "bisenetv2_onnxruntime" / "config.pbtxt")
                          .read_text(), mc.ModelConfig())
    assert c.max_batch_size == 8 and list(c.input[0].dims) == [3, -1, -1]
    assert list(c.output[0].dims) == [5, -1, -1]


@pytest.mark.parametrize("text, pattern", [
    ("32x64", "MINxMIN:MAXxMAX"),
    ("128x256:32x64", "need MIN <= MAX"),
    ("32x64:big", "HxW"),
])
def test_size_range_option_refuses_bad_text(text, pattern):
    import argparse

    from edgeseg.cli.common import parse_size_range

    assert parse_size_range("32x64:128x256") == (LO, HI)
    with pytest.raises(argparse.ArgumentTypeError, match=pattern):
        parse_size_range(text)


def test_predict_batch_splits_at_the_engine_profile_max(dyn, monkeypatch):
    from edgeseg.runtime import Segmenter
    from edgeseg.runtime.segmenter import engine_meta, profile_limits

    meta = read_meta(dyn)
    meta["builds"] = [{"file": "model.a.engine", "profile": {
        "input": [[1, 3, 48, 64], [2, 3, 64, 128], [3, 3, 64, 200]]}}]
    assert profile_limits(meta, "model.a.engine") == (3, ((48, 64), (64, 200)))
    assert profile_limits(meta, "model.onnx") == (None, None)
    # an engine profile narrower than the size range: images are fitted into it
    narrowed = engine_meta(meta, ((48, 64), (64, 200)))
    assert narrowed["input"]["size_range"] == {"min": [48, 64], "max": [64, 200]}
    assert run_size(narrowed["input"], 128, 256) == (64, 128)
    with pytest.raises(ArtifactError, match="share no size"):
        engine_meta(meta, ((200, 300), (200, 300)))
    images = [np.random.default_rng(i).integers(0, 256, (40, 80, 3), dtype=np.uint8)
              for i in range(7)]
    with Segmenter(dyn, backend="onnxruntime") as seg:
        assert seg.max_batch is None
        whole = seg.predict_batch(images)
        seg.max_batch = 3  # as for an engine whose profile stops at 3
        runs = []
        real = seg._run
        monkeypatch.setattr(seg, "_run", lambda x: runs.append(len(x)) or real(x))
        split = seg.predict_batch(images)
    assert runs == [3, 3, 1]
    assert all(np.array_equal(a, b) for a, b in zip(whole, split))


def _dynamic_onnx(path, batch="N"):
    """Conv 3x3 (3->4): a graph whose batch, height and width are all dynamic, named as
    another exporter might name them."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(0).normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["scores"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 4, "H", "W"])],
        [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_import_of_a_graph_with_a_dynamic_size(tmp_path):
    from edgeseg.export.importer import import_onnx
    from edgeseg.runtime import Segmenter

    src = _dynamic_onnx(tmp_path / "m.onnx")
    out = import_onnx(str(src), str(tmp_path / "art"), classes=_classes(4), mean=(0, 0, 0),
                      std=(1, 1, 1), size=SIZE, size_range=(LO, HI), **QUIET)
    meta = read_meta(out)
    assert meta["input"]["dynamic"] == "size"
    assert meta["input"]["shape"] == ["batch", 3, "height", "width"]
    assert meta["output"]["shape"] == ["batch", 4, "height", "width"]
    assert meta["parity"]["results"][0]["inputs"] == 4  # 2 nominal, the min and the max
    with Segmenter(out, backend="openvino") as seg:
        assert seg.predict(np.zeros((70, 90, 3), np.uint8)).shape == (70, 90)
        assert seg.run_size((70, 90)) == (70, 90)


@pytest.mark.parametrize("batch, kw, pattern", [
    ("N", {}, "give --size HxW"),
    (1, {"size": SIZE}, "fixed batch"),
    ("N", {"size": (200, 200), "size_range": (LO, HI)}, "must lie in --size-range"),
])
def test_import_refusals(tmp_path, batch, kw, pattern):
    from edgeseg.export.importer import import_onnx

    src = _dynamic_onnx(tmp_path / "m.onnx", batch)
    with pytest.raises(UsageError, match=pattern):
        import_onnx(str(src), str(tmp_path / "art"), classes=_classes(4), mean=(0, 0, 0),
                    std=(1, 1, 1), **kw, **QUIET)
    assert not (tmp_path / "art").exists()


def _classes(n):
    from edgeseg.data.classes import ClassSet

    return ClassSet("unnamed", tuple(f"c{i}" for i in range(n)), ((0, 0, 0),) * n)


def test_a_failed_shape_inference_leaves_nothing_in_the_working_directory(tmp_path,
                                                                          monkeypatch):
    """ORT's symbolic shape inference cannot finish on a dynamic-size BiSeNetV1; where it
    fails it writes its temporary model into the current directory, unless prepare runs
    elsewhere."""
    from edgeseg.backends.onnxruntime import quantizer

    dyn = export(ExportConfig(out=str(tmp_path / "b1"), model="bisenetv1", size=SIZE,
                              num_classes=5, dynamic="size", size_range=(LO, HI),
                              parity_backends=("onnxruntime",), parity_inputs=1), **QUIET)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(Exception, match="symbolic shape inference"):
        quantizer.prepare(dyn / "model.onnx", tmp_path / "prepared.onnx", symbolic=True)
    assert list(work.iterdir()) == []
    quantizer.prepare(dyn / "model.onnx", tmp_path / "prepared.onnx", symbolic=False)
    assert (tmp_path / "prepared.onnx").is_file() and list(work.iterdir()) == []
