"""One conformance test for every engine's Runner (the engines of core/capabilities.ENGINES;
TensorRT through the numpy/ONNX Runtime stand-in of fake_tensorrt.py, its real engine in
test_tensorrt_engine.py): it opens as a context manager, describes its tensors the same way,
gives {output name: array} in the artifact's name and dtype that agree with ONNX Runtime,
refuses infer once closed and files it cannot run with an EdgesegError, and gives the same
results from four threads as from one, alone and under a Segmenter."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from edgeseg.backends import get_runner, is_available, model_file
from edgeseg.backends.common import RunnerClosed, spec
from edgeseg.core.artifact import read_meta
from edgeseg.core.capabilities import ENGINES
from edgeseg.core.errors import EdgesegError, UsageError
from tests.backends import fake_tensorrt

THREADS, CALLS = 4, 20


@pytest.fixture(scope="module")
def artifact(logits_artifact, tmp_path_factory):
    """The logits artifact with a stand-in TensorRT engine built into it (a copy: building
    adds the engine file and its build record)."""
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig

    d = tmp_path_factory.mktemp("runners") / "art"
    shutil.copytree(logits_artifact, d)
    with pytest.MonkeyPatch.context() as mp:
        fake_tensorrt.install(mp, graph=True)
        build(BuildConfig(artifact=str(d)), log=lambda m: None)
    return d


@pytest.fixture(params=list(ENGINES))
def engine(request, monkeypatch):
    name = request.param
    if name == "tensorrt":
        fake_tensorrt.install(monkeypatch, graph=True)
    elif not is_available(name):
        pytest.skip(f"{name} is not installed")
    return name


def model_path(engine, artifact):
    file = model_file(read_meta(artifact), engine)
    return artifact if file is None else artifact / file  # torch runs the directory


def frames(n, batch=1, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, 3, 32, 64)).astype(np.float32) for _ in range(n)]


def agrees(reported, described):
    """A runner's TensorSpec against meta.json's shape and dtype: the same rank and dtype,
    each dimension either the same or unknown (None: an ONNX file may leave an output's
    dimensions symbolic), and meta.json's dynamic ones always unknown, never a number."""
    want = spec(described["shape"], described["dtype"])
    return (reported.dtype == want.dtype and len(reported.shape) == len(want.shape)
            and all(r is None or r == w for r, w in zip(reported.shape, want.shape))
            and all(r is None for r, w in zip(reported.shape, want.shape) if w is None))


def test_opens_and_describes_its_tensors(engine, artifact):
    meta = read_meta(artifact)
    inp, out = meta["input"], meta["output"]
    with get_runner(engine, model_path(engine, artifact)) as r:
        assert r.input_names == list(r.inputs) == [inp["name"]]
        assert r.output_names == list(r.outputs) and out["name"] in r.outputs
        assert agrees(r.inputs[inp["name"]], inp)
        assert agrees(r.outputs[out["name"]], out)
        assert r.inputs[inp["name"]].shape == (None, 3, 32, 64)


def test_infer_agrees_with_onnxruntime(engine, artifact):
    meta = read_meta(artifact)
    name, out = meta["input"]["name"], meta["output"]["name"]
    xs = frames(2) + frames(1, batch=2, seed=1)  # the dynamic batch too
    with get_runner("onnxruntime", artifact / "model.onnx") as ref:
        want = [ref.infer({name: x})[out] for x in xs]
    with get_runner(engine, model_path(engine, artifact)) as r:
        for x, y_ref in zip(xs, want):
            got = r.infer({name: x})
            assert list(got) == [out]
            y = got[out]
            assert y.dtype == np.dtype(meta["output"]["dtype"]) and y.shape == y_ref.shape
            np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
            assert (y.argmax(1) == y_ref.argmax(1)).mean() > 0.999


def test_infer_after_close_is_refused(engine, artifact):
    name = read_meta(artifact)["input"]["name"]
    r = get_runner(engine, model_path(engine, artifact))
    with pytest.raises(RunnerClosed, match="closed .or was never opened"):
        r.infer({name: frames(1)[0]})
    with r:
        r.infer({name: frames(1)[0]})
    with pytest.raises(RunnerClosed, match=f"this {'.*'} runner is closed"):
        r.infer({name: frames(1)[0]})


def wrong_file(engine, artifact, local_artifact, case, tmp_path):
    """A file (for torch an artifact directory) the engine must refuse: not a model, the
    real one truncated, or a model of another kind."""
    if engine == "torch":
        d = tmp_path / case
        if case == "wrong kind":  # an imported ONNX graph: no PyTorch model to rebuild
            return local_artifact
        shutil.copytree(artifact, d)
        text = (d / "meta.json").read_text()
        (d / "meta.json").write_text("not json" if case == "not a model"
                                     else text[:len(text) // 2])
        return d
    real = model_path(engine, artifact)
    data = {"not a model": b"edgeseg: this is not a model\n" * 40,
            "truncated": real.read_bytes()[:len(real.read_bytes()) // 2],
            "wrong kind": ((artifact / "model.onnx").read_bytes() if engine == "tensorrt"
                           else fake_tensorrt.plan_bytes())}[case]
    path = tmp_path / real.name  # away from meta.json: the engine's own loading decides
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", ["not a model", "truncated", "wrong kind"])
def test_refuses_a_file_it_cannot_run(engine, artifact, local_artifact, case, tmp_path):
    path = wrong_file(engine, artifact, local_artifact, case, tmp_path)
    with pytest.raises(EdgesegError) as caught:
        get_runner(engine, path).__enter__()
    message = str(caught.value)
    assert "\n" not in message and path.name in message


def run_in_threads(call, inputs):
    """call(x) for every input, THREADS threads at once, each a different share."""
    results = [None] * len(inputs)
    start = threading.Barrier(THREADS)
    errors = []

    def work(k):
        start.wait()
        for i in range(k, len(inputs), THREADS):
            try:
                results[i] = call(inputs[i])
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} of {len(inputs)} calls failed, e.g. {errors[0]}"
    return results


def test_threads_give_the_single_thread_results(engine, artifact):
    meta = read_meta(artifact)
    name, out = meta["input"]["name"], meta["output"]["name"]
    xs = frames(THREADS * CALLS)
    # One intra-op thread: the callers are the parallelism (engines' own thread pools on
    # top oversubscribe a 2-core runner many times over).
    with get_runner(engine, model_path(engine, artifact), threads=1) as r:
        want = [r.infer({name: x})[out] for x in xs]
        got = run_in_threads(lambda x: r.infer({name: x})[out], xs)
    wrong = sum(not np.array_equal(a, b) for a, b in zip(got, want))
    assert wrong == 0, f"{wrong} of {len(xs)} results differ from one thread's"


@pytest.mark.parametrize("engine", [n for n, e in ENGINES.items() if e.runtime], indirect=True)
def test_one_segmenter_serves_threads(engine, artifact):
    from edgeseg.runtime import Segmenter

    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (30 + i % 7, 50 + i % 11, 3), dtype=np.uint8)
              for i in range(THREADS * CALLS)]
    with Segmenter(artifact, backend=engine, threads=1) as seg:
        assert seg.backend == engine
        want = [seg.predict(im) for im in images]
        got = run_in_threads(seg.predict, images)
    wrong = sum(not np.array_equal(a, b) for a, b in zip(got, want))
    assert wrong == 0, f"{wrong} of {len(images)} label maps differ from one thread's"


def test_openvino_compiles_a_dynamic_batch_once_per_batch_size(tmp_path, monkeypatch):
    """A batch-only dynamic graph runs as static compilations, one per batch size seen; its
    described shapes keep the dynamic batch, and each sample's result is its own."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not is_available("openvino"):
        pytest.skip("OpenVINO is not installed")
    from edgeseg.backends import openvino as openvino_backend
    from edgeseg.backends.openvino import Runner

    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [numpy_helper.from_array(w, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    with Runner(path) as r:
        assert r.outputs["y"] == spec([None, 4, 8, 8], np.float32)
        one = [r.infer({"x": x[i:i + 1]})["y"][0] for i in range(3)]
        three = r.infer({"x": x})["y"]
        r.infer({"x": x})
        assert sorted(r._by_shape) == [((1, 3, 8, 8),), ((3, 3, 8, 8),)]
        # a dimension the graph fixes is not reshaped away: a clear refusal
        with pytest.raises(UsageError, match="1x3x5x7 does not fit the graph's \\?x3x8x8"):
            r.infer({"x": np.zeros((1, 3, 5, 7), np.float32)})
        # least recently used goes first: a hit keeps a shape
        monkeypatch.setattr(openvino_backend, "MAX_SHAPES", 2)
        for n in (1, 2, 1, 4):
            r.infer({"x": np.zeros((n, 3, 8, 8), np.float32)})
        assert list(r._by_shape) == [((1, 3, 8, 8),), ((4, 3, 8, 8),)]
    np.testing.assert_allclose(three, np.stack(one), rtol=1e-5, atol=1e-5)
