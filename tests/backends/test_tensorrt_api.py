"""Python conformance with TensorRT's real API (issue 18): the names of the `tensorrt` module
that edgeseg's Python code uses, route by route, exist in every release that route runs on.

TensorRT cannot run here; its own binding sources can be read (/work/shared/tensorrt:
api_surface.py <release> --names prints every `tensorrt.Class.member` a release defines).
The chain that ties edgeseg's code to those sources:

- the stand-in `tensorrt` (fake_tensorrt.py) hands out, for release X, only names in
  `fake_tensorrt.exposed(X)`, and records each one under its real-API spelling;
  test_the_stand_in_exposes_only_names_the_release_has holds exposed(X) to X's bindings;
- each route of the real builder, calibrator and runner runs against the stand-in of each
  release it supports, in every configuration that reaches TensorRT differently
  (test_route_uses_exactly_its_names): it must use exactly the names listed below, so the
  lists are what the code uses, and a name the release lacks fails there with AttributeError;
- test_route_names_exist_in_the_release holds each list to the bindings of each release;
- test_every_trt_name_spelled_in_the_backend_is_listed catches a `trt.X` written in a code
  path no route reaches.

A name found missing is fixed in the backend, not here."""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import fake_tensorrt

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "edgeseg" / "backends" / "tensorrt"
# The releases under /work/shared/tensorrt, by folder, and their full __version__.
RELEASES = {"10.3.0": "10.3.0.26", "10.13.3": "10.13.3.9", "10.16": "10.16.0.72",
            "11.1": "11.1.0.106"}
TEN = [r for r in RELEASES if r.startswith("10.")]


def trt_sources() -> Path | None:
    """TensorRT's sources: $EDGESEG_TRT_SOURCES, else shared/tensorrt beside the checkout,
    else /work/shared/tensorrt."""
    env = os.environ.get("EDGESEG_TRT_SOURCES")
    if env:
        if not (Path(env) / "api_surface.py").is_file():
            pytest.fail(f"EDGESEG_TRT_SOURCES={env}: no api_surface.py there")
        return Path(env)
    for place in (ROOT.parent / "shared" / "tensorrt", Path("/work/shared/tensorrt")):
        if (place / "api_surface.py").is_file():
            return place
    return None


@functools.cache
def _surface(folder: str) -> frozenset[str]:
    src = trt_sources()
    out = subprocess.run([sys.executable, str(src / "api_surface.py"), folder, "--names"],
                         check=True, capture_output=True, text=True).stdout
    names = frozenset(out.split())
    assert len(names) > 1000, f"api_surface.py {folder} printed {len(names)} names"
    return names


def surface(folder: str) -> frozenset[str]:
    """Every `tensorrt.X[.y]` the bindings of release `folder` define."""
    if trt_sources() is None:
        pytest.skip("TensorRT's binding sources are not here: set EDGESEG_TRT_SOURCES, or put "
                    "them at ../shared/tensorrt beside the checkout or /work/shared/tensorrt")
    return _surface(folder)


@pytest.fixture(scope="module")
def artifacts(local_artifact, logits_artifact, tmp_path_factory):
    """The artifacts the routes start from: FP32 (static; with a calib.cache; with a dynamic
    batch), FP16 with a dynamic batch, INT8 Q/DQ quantized for TensorRT, and a calibration
    set at their size."""
    from edgeseg.core.artifact import read_meta, sha256, write_meta
    from edgeseg.data.calibration import build
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.export.exporter import ExportConfig, export
    from edgeseg.quant.config import QuantConfig
    from edgeseg.quant.int8 import quantize
    from tests.runtime.conftest import SIZE

    root = tmp_path_factory.mktemp("trt-api")
    write_dataset(root / "synth", 40, SIZE, seed=0, progress=False)
    calib = build(root / "calib", size=SIZE, data=str(root / "synth"), num=32,
                  progress=False, log=lambda m: None)
    quantize(QuantConfig(artifact=str(local_artifact), calib=str(calib.root),
                         out=str(root / "int8"), target="tensorrt"),
             log=lambda m: None, progress=False)
    # calib.cache holds the ranges of the FP32 graph it was quantized from (model.fp32.onnx,
    # the local artifact's model.onnx): the weakly typed route builds that graph with it.
    cached = root / "fp32-cache"
    shutil.copytree(local_artifact, cached)
    shutil.copy(root / "int8" / "calib.cache", cached / "calib.cache")
    meta = read_meta(cached)
    meta["files"]["calib.cache"] = sha256(cached / "calib.cache")
    write_meta(cached, meta)
    export(ExportConfig(out=str(root / "fp16"), model="bisenetv2", num_classes=8, size=SIZE,
                        precision="fp16", dynamic="batch", parity_backends=("onnxruntime",),
                        parity_inputs=1), log=lambda m: None)
    return {"fp32": local_artifact, "fp32+cache": cached, "fp32-dynamic": logits_artifact,
            "fp16": root / "fp16", "int8": root / "int8", "calib": calib.root}


# What each route asks of TensorRT, name by name. A backend change that uses another name
# fails test_route_uses_exactly_its_names until the name is listed here, where
# test_route_names_exist_in_the_release holds it to every release the route runs on.
BUILD = [  # every build, either route
    "tensorrt.__version__", "tensorrt.Logger", "tensorrt.Logger.WARNING",
    "tensorrt.Builder", "tensorrt.Builder.create_network", "tensorrt.Builder.num_DLA_cores",
    "tensorrt.Builder.create_builder_config", "tensorrt.Builder.create_optimization_profile",
    "tensorrt.Builder.build_serialized_network",
    "tensorrt.OnnxParser", "tensorrt.OnnxParser.parse_from_file",
    "tensorrt.OnnxParser.num_errors", "tensorrt.OnnxParser.get_error",
    "tensorrt.ParserError.node", "tensorrt.ParserError.desc", "tensorrt.ParserError.node_name",
    "tensorrt.ParserError.node_operator",
    "tensorrt.INetworkDefinition.num_layers", "tensorrt.INetworkDefinition.get_layer",
    "tensorrt.ILayer.type",
    "tensorrt.IBuilderConfig.set_memory_pool_limit",
    "tensorrt.IBuilderConfig.builder_optimization_level", "tensorrt.IBuilderConfig.set_flag",
    "tensorrt.IBuilderConfig.hardware_compatibility_level",
    "tensorrt.IBuilderConfig.default_device_type", "tensorrt.IBuilderConfig.DLA_core",
    "tensorrt.IBuilderConfig.profiling_verbosity",
    "tensorrt.IBuilderConfig.add_optimization_profile",
    "tensorrt.IBuilderConfig.create_timing_cache", "tensorrt.IBuilderConfig.set_timing_cache",
    "tensorrt.IBuilderConfig.get_timing_cache", "tensorrt.IBuilderConfig.can_run_on_DLA",
    "tensorrt.IBuilderConfig.get_device_type",
    "tensorrt.IOptimizationProfile.set_shape", "tensorrt.ITimingCache.serialize",
    "tensorrt.MemoryPoolType", "tensorrt.MemoryPoolType.WORKSPACE",
    "tensorrt.BuilderFlag", "tensorrt.BuilderFlag.GPU_FALLBACK",
    "tensorrt.BuilderFlag.VERSION_COMPATIBLE",
    "tensorrt.HardwareCompatibilityLevel", "tensorrt.HardwareCompatibilityLevel.AMPERE_PLUS",
    "tensorrt.DeviceType", "tensorrt.DeviceType.DLA",
    "tensorrt.ProfilingVerbosity", "tensorrt.ProfilingVerbosity.DETAILED",
]
SAME_CC = ["tensorrt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY"]  # builds on 10.9+
WEAK = [  # the weakly typed route, 10.x only: precision flags and the implicit calibrator
    "tensorrt.BuilderFlag.FP16", "tensorrt.BuilderFlag.INT8",
    "tensorrt.IBuilderConfig.int8_calibrator", "tensorrt.IInt8EntropyCalibrator2",
    # the virtuals edgeseg's subclass overrides, which TensorRT calls back by these names
    "tensorrt.IInt8EntropyCalibrator2.get_batch_size", "tensorrt.IInt8EntropyCalibrator2.get_batch",
    "tensorrt.IInt8EntropyCalibrator2.read_calibration_cache",
    "tensorrt.IInt8EntropyCalibrator2.write_calibration_cache",
]
STRONG_10 = [  # 11.x types every network strongly: no flag to ask for it
    "tensorrt.NetworkDefinitionCreationFlag",
    "tensorrt.NetworkDefinitionCreationFlag.STRONGLY_TYPED",
]
RUNNER = [
    "tensorrt.__version__", "tensorrt.Logger", "tensorrt.Logger.WARNING",
    "tensorrt.Runtime", "tensorrt.Runtime.engine_host_code_allowed",
    "tensorrt.Runtime.deserialize_cuda_engine",
    "tensorrt.ICudaEngine.create_execution_context", "tensorrt.ICudaEngine.num_io_tensors",
    "tensorrt.ICudaEngine.get_tensor_name", "tensorrt.ICudaEngine.get_tensor_mode",
    "tensorrt.ICudaEngine.get_tensor_dtype", "tensorrt.ICudaEngine.get_tensor_shape",
    "tensorrt.IExecutionContext.set_input_shape", "tensorrt.IExecutionContext.get_tensor_shape",
    "tensorrt.IExecutionContext.set_tensor_address",
    "tensorrt.IExecutionContext.execute_async_v3",
    "tensorrt.TensorIOMode", "tensorrt.TensorIOMode.INPUT",
    "tensorrt.float32", "tensorrt.float16", "tensorrt.int32", "tensorrt.int8", "tensorrt.uint8",
    "tensorrt.bool", "tensorrt.int64",
]
REMOVED_IN_11 = set(WEAK)


def expected(route: str, version: str) -> list[str]:
    """The names `route` uses on release `version`."""
    from edgeseg.backends.tensorrt.plan import parse_version

    here = parse_version(version)
    if route == "runner":
        return RUNNER
    names = BUILD + (SAME_CC if here >= (10, 9, 0) else [])
    if route == "weak":
        return names + WEAK
    return names + (STRONG_10 if here < (11, 0, 0) else [])


ROUTES = [("weak", v) for v in TEN] + [(r, v) for r in ("strong", "runner") for v in RELEASES]
SINCE_10_9 = ["10.13.3", "10.16", "11.1"]
# The builds of each route: (what it shows, artifact, BuildConfig options, releases it runs
# on). Together they reach every TensorRT call of builder.py and calibrator.py.
WEAK_BUILDS = [
    ("fp16 flag, workspace, opt level, timing cache, ampere+", "fp32",
     dict(fp16=True, workspace_mib=64, opt_level=2, timing_cache="tc.bin",
          hardware_compat="ampere+"), TEN),
    ("fp16 flag, same compute capability", "fp32", dict(fp16=True, hardware_compat="same-cc"),
     [v for v in TEN if v in SINCE_10_9]),
    ("int8 flag, calibrator replaying calib.cache", "fp32+cache", dict(int8=True), TEN),
    ("int8 flag, calibrator feeding --calib, dynamic batch", "fp32-dynamic",
     dict(int8=True, calib="SET", shapes="1/2/4"), TEN),
    ("fp16+int8 on DLA with GPU fallback, version compatible", "fp32+cache",
     dict(fp16=True, int8=True, dla_core=0, gpu_fallback=True, version_compatible=True), TEN),
]
STRONG_BUILDS = [
    ("fp32 graph", "fp32", dict(), list(RELEASES)),
    ("fp16 graph, dynamic batch, DLA with GPU fallback", "fp16",
     dict(shapes="1/2/4", dla_core=0, gpu_fallback=True), list(RELEASES)),
    ("int8 Q/DQ graph, workspace, opt level, timing cache, ampere+, version compatible",
     "int8", dict(workspace_mib=64, opt_level=5, timing_cache="tc.bin",
                  hardware_compat="ampere+", version_compatible=True), list(RELEASES)),
    ("same compute capability", "fp32", dict(hardware_compat="same-cc"), SINCE_10_9),
]


def _build(artifacts, tmp_path, version, key, options, **install):
    """Build `key`'s artifact (a copy) against the stand-in of `version`."""
    from edgeseg.backends.tensorrt.builder import build
    from edgeseg.backends.tensorrt.plan import BuildConfig

    art = tmp_path / key
    if not art.exists():
        shutil.copytree(artifacts[key], art)
    options = dict(options)
    if "timing_cache" in options:
        options["timing_cache"] = str(tmp_path / options["timing_cache"])
    if options.get("calib") == "SET":
        options["calib"] = str(artifacts["calib"])
    with pytest.MonkeyPatch.context() as mp:
        log, _ = fake_tensorrt.install(mp, RELEASES[version], **install)
        record = build(BuildConfig(artifact=str(art), force=True, **options), log=lambda m: None)
    return art, record, log


def run_route(route, version, artifacts, tmp_path) -> fake_tensorrt.ApiRecord:
    """Every build (and for "runner", every run) of `route` on `version`, one record."""
    from edgeseg.backends.tensorrt.plan import PlanError

    names = fake_tensorrt.ApiRecord()
    if route in ("weak", "strong"):
        for _, key, options, versions in (WEAK_BUILDS if route == "weak" else STRONG_BUILDS):
            if version in versions:
                _, _, log = _build(artifacts, tmp_path, version, key, options, record=names)
                # the stand-in drove the calibrator as TensorRT does: from the cache, or
                # through every image of the set
                assert [e[1] for e in log if e[0] == "calibrated"] == \
                    ([] if not options.get("int8") else [32] if options.get("calib")
                     else ["cache"]), log
        with pytest.raises(PlanError, match=r"node #2 name=relu operator=Relu"):
            _build(artifacts, tmp_path, version, "fp32", dict(fp16=route == "weak"),
                   record=names, unsupported={"Relu"})  # parser errors, named by node
    else:
        _run(artifacts, tmp_path, version, names)
    return names


def _run(artifacts, tmp_path, version, names):
    """A version-compatible engine through the runner, with and without CUDA graphs, and the
    choice of engine file a Segmenter makes."""
    import numpy as np

    from edgeseg.backends.tensorrt import Runner, select_engine_file
    from edgeseg.core.artifact import read_meta

    art, record, _ = _build(artifacts, tmp_path, version, "fp32",
                            dict(version_compatible=True))
    x = np.ones((1, 3, 32, 64), np.float32)
    with pytest.MonkeyPatch.context() as mp:
        fake_tensorrt.install(mp, RELEASES[version], record=names)
        assert select_engine_file(read_meta(art)) == record["file"]
        for cuda_graph in (False, True):
            with Runner(art / record["file"], cuda_graph=cuda_graph) as r:
                for _ in range(2):
                    assert r.infer({"image": x})["logits"].shape == (1, 8, 32, 64)


@pytest.mark.parametrize("folder", list(RELEASES))
def test_the_stand_in_exposes_only_names_the_release_has(folder):
    real = surface(folder)
    exposed = fake_tensorrt.exposed(RELEASES[folder])
    assert sorted(exposed - real) == [], f"the stand-in of {folder} has names its bindings lack"
    # LIFETIMES must take away only what the release really lacks, or the stand-in would
    # refuse code that runs on TensorRT.
    hidden = fake_tensorrt.candidates() - exposed
    assert sorted(hidden & real) == [], f"the stand-in of {folder} hides names it has"
    assert ("tensorrt.IInt8EntropyCalibrator2.get_batch" in hidden) == folder.startswith("11.")
    assert ("tensorrt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY" in hidden) == \
        (folder == "10.3.0")


@pytest.mark.parametrize("version", ["10.16.0.72", "11.1.0.106"])
def test_the_stand_in_refuses_what_its_release_lacks(version):
    record = fake_tensorrt.ApiRecord()
    trt = fake_tensorrt.module([], fake_tensorrt.FakeCuda(), version, record=record)
    ten = version.startswith("10.")
    assert hasattr(trt, "IInt8EntropyCalibrator2") == ten
    assert hasattr(trt.BuilderFlag, "INT8") == ten
    config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
    assert hasattr(config, "int8_calibrator") == ten
    with pytest.raises(AttributeError):  # pybind11 objects take no attributes of their own
        config.no_such_setting = 1
    with pytest.raises(AttributeError):
        trt.Builder.no_such_method  # noqa: B018
    assert "tensorrt.IBuilderConfig.no_such_setting" in record.absent
    assert "tensorrt.Builder.no_such_method" in record.absent
    assert ("tensorrt.BuilderFlag.INT8" in record.used) == ten
    assert {"tensorrt.Builder", "tensorrt.Builder.create_builder_config", "tensorrt.Logger",
            "tensorrt.Logger.WARNING", "tensorrt.BuilderFlag"} <= set(record.used)


ROUTE_IDS = [f"{route}-{version}" for route, version in ROUTES]


@pytest.mark.parametrize("route, version", ROUTES, ids=ROUTE_IDS)
def test_route_uses_exactly_its_names(route, version, artifacts, tmp_path):
    record = run_route(route, version, artifacts, tmp_path)
    used, listed = set(record.used), set(expected(route, version))
    print(f"{route} route on TensorRT {version}: {len(used)} names\n  "
          + "\n  ".join(record.used))
    assert list(record.absent) == [], f"asked TensorRT {version} for names it lacks"
    assert sorted(used - listed) == [], "used but not listed above"
    assert sorted(listed - used) == [], "listed above but not used"
    if version.startswith("11."):
        assert sorted(used & REMOVED_IN_11) == []


@pytest.mark.parametrize("route, version", ROUTES, ids=ROUTE_IDS)
def test_route_names_exist_in_the_release(route, version):
    missing = sorted(set(expected(route, version)) - surface(version))
    assert missing == [], (f"TensorRT {version} has no {missing}: make the {route} route "
                           "of edgeseg/backends/tensorrt do without them there")


def test_tensorrt_11_refuses_the_weak_route_before_touching_tensorrt(artifacts, tmp_path):
    from edgeseg.backends.tensorrt.plan import PlanError

    for key, options in [("fp32", dict(fp16=True)), ("fp32+cache", dict(int8=True)),
                         ("fp32", dict(int8=True, calib="SET"))]:
        record = fake_tensorrt.ApiRecord()
        with pytest.raises(PlanError, match="strongly typed networks only"):
            _build(artifacts, tmp_path, "11.1", key, options, record=record)
        assert list(record.used) == ["tensorrt.__version__"] and list(record.absent) == []


def spelled_names() -> set[str]:
    """`tensorrt.X[.Y]` for each `trt.X[.Y]` or `tensorrt.X[.Y]` written in the backend's
    sources, and for each hasattr/getattr(trt, "X")."""
    names = set()
    for path in sorted(BACKEND.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.insert(0, base.attr)
                base = base.value
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant):
                chain, base = [node.args[1].value], node.args[0]
            if chain and isinstance(base, ast.Name) and base.id in ("trt", "tensorrt"):
                parts = [a for a in chain[:2] if a == "__version__" or not a.startswith("__")]
                names.add(".".join(["tensorrt", *parts]))
    return names


def test_every_trt_name_spelled_in_the_backend_is_listed():
    from edgeseg.backends.tensorrt.plan import HARDWARE_COMPAT

    listed = set(BUILD + SAME_CC + WEAK + STRONG_10 + RUNNER)
    spelled = spelled_names()
    assert {"tensorrt.__version__", "tensorrt.BuilderFlag", "tensorrt.int64",
            "tensorrt.IInt8EntropyCalibrator2", "tensorrt.TensorIOMode.INPUT"} <= spelled
    assert sorted(spelled - listed) == []
    # getattr(trt.HardwareCompatibilityLevel, ...) takes its members from this table
    assert sorted({f"tensorrt.HardwareCompatibilityLevel.{v[0]}"
                   for v in HARDWARE_COMPAT.values()} - listed) == []
