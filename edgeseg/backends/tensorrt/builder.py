"""`edgeseg build --backend tensorrt`: the artifact's ONNX to a TensorRT engine written into the
artifact as model.<tag>.engine (raw plan bytes, what trtexec loads) and recorded in meta.json.
The checks that need no GPU come first (meta.json, the TensorRT lint, the plan), then
TensorRT parses and builds on the GPU."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from edgeseg.backends import install_hint
from edgeseg.backends.tensorrt import cuda as cuda_api
from edgeseg.backends.tensorrt.calibrator import make_calibrator
from edgeseg.backends.tensorrt.plan import (
    HARDWARE_COMPAT,
    BuildConfig,
    Plan,
    PlanError,
    build_record,
    engine_tag,
    parse_version,
    plan_build,
    source_onnx,
)
from edgeseg.core.artifact import ArtifactError, read_meta, sha256
from edgeseg.core.errors import EngineUnavailable, OutputExists
from edgeseg.core.lint import lint, load_onnx


def preflight(cfg: BuildConfig, trt_version: str) -> tuple[dict, list[str]]:
    """meta.json (hashes checked) and the TensorRT lint of the ONNX the build parses
    (plan.source_onnx) for that TensorRT major: errors before any GPU work. Returns (meta,
    lint warnings)."""

    meta = read_meta(cfg.artifact)
    if "model.onnx" not in meta["files"]:
        raise ArtifactError(f"{cfg.artifact}: no model.onnx to build an engine from")
    onnx_file = source_onnx(meta, cfg)
    target = "tensorrt-11" if parse_version(trt_version)[0] >= 11 else "tensorrt-10"
    findings = lint(load_onnx(Path(cfg.artifact) / onnx_file), target)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise PlanError(f"TensorRT's ONNX parser would reject {onnx_file}: " + "; ".join(
            f"{f.op} {f.node}: {f.message} Fix: {f.fix}" for f in errors[:5])
            + ("" if len(errors) <= 5 else f"; and {len(errors) - 5} more")
            + f" (edgeseg lint ARTIFACT --target {target} lists them all)")
    groups: dict[tuple[str, str, str], list[str]] = {}
    for f in findings:
        if f.severity != "error":
            groups.setdefault((f.op, f.message, f.fix), []).append(f.node)
    return meta, [f"{len(nodes)} x {op} ({nodes[0]}{', ...' if len(nodes) > 1 else ''}): "
                  f"{message} Fix: {fix}" for (op, message, fix), nodes in groups.items()]


def parse_errors(parser) -> str:
    """TensorRT ONNX parser errors with the failing node, one per line."""
    lines = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        where = ""
        for attr in ("node_name", "node_operator"):
            fn = getattr(e, attr, None)
            value = fn() if callable(fn) else None
            if value:
                where += f" {attr.split('_')[1]}={value}"
        lines.append(f"node #{e.node()}{where}: {e.desc()}")
    return "\n".join(lines)


def _configure(trt, builder, network, cfg: BuildConfig, plan: Plan, meta: dict, log):
    config = builder.create_builder_config()
    if plan.workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    if plan.opt_level is not None:
        config.builder_optimization_level = plan.opt_level
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if plan.hardware_compat:

        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel,
                                                      HARDWARE_COMPAT[plan.hardware_compat][0])
    if plan.dla_core is not None:
        if builder.num_DLA_cores <= plan.dla_core:
            raise PlanError(f"--dla-core {plan.dla_core}: this device has "
                            f"{builder.num_DLA_cores} DLA cores (DLA exists on Jetson Xavier "
                            "and Orin)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if plan.profile:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in plan.profile.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    cache = None
    if cfg.timing_cache:
        blob = Path(cfg.timing_cache).read_bytes() if Path(cfg.timing_cache).is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, False)
        log(f"timing cache {cfg.timing_cache} ({len(blob)} bytes read)")
    if plan.calibration:

        config.int8_calibrator = make_calibrator(trt, meta, cfg, plan)
    return config, cache


def layer_placement(trt, network, config) -> dict:
    """How many layers run on DLA and on the GPU (DLA builds), by type."""
    where: dict[str, dict[str, int]] = {"DLA": {}, "GPU": {}}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        dla = config.can_run_on_DLA(layer) and config.get_device_type(layer) == trt.DeviceType.DLA
        kind = str(layer.type).split(".")[-1]
        bucket = where["DLA" if dla else "GPU"]
        bucket[kind] = bucket.get(kind, 0) + 1
    return where


def build(cfg: BuildConfig, log: Callable[[str], None] = print) -> dict:
    """Build the engine into the artifact; returns its meta.json build record."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:

        preflight(cfg, "10.3.0")  # a broken artifact is the first thing to hear about
        raise EngineUnavailable(f"TensorRT is not installed: {install_hint('tensorrt')}. "
                          "`edgeseg build --print-trtexec` prints the trtexec command for "
                          "building on the device instead.")
    import tensorrt as trt

    meta, warnings = preflight(cfg, trt.__version__)
    for w in warnings:
        log(f"lint: {w}")


    plan = plan_build(meta, cfg, trt.__version__)
    for note in plan.notes:
        log(note)
    cuda = cuda_api.open_cuda(cfg.device)
    directory = Path(cfg.artifact)
    tag = engine_tag(cuda.name, cuda.compute_capability, trt.__version__, cfg)
    engine_file = f"model.{tag}.engine"
    if (directory / engine_file).exists() and not cfg.force:
        raise OutputExists(f"{directory / engine_file} exists; pass --force to rebuild it")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if plan.route == "strong" and plan.trt_major < 11:  # 11: every network is strongly typed
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(directory / plan.onnx_file)):
        raise PlanError(f"TensorRT's ONNX parser failed on {plan.onnx_file}:\n"
                        + parse_errors(parser))
    config, cache = _configure(trt, builder, network, cfg, plan, meta, log)
    layers = layer_placement(trt, network, config) if plan.dla_core is not None else None
    log(f"building {engine_file} ({plan.route}ly typed, TensorRT {trt.__version__}, "
        f"{cuda.name}); this takes minutes")
    t0 = time.perf_counter()
    blob = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    cuda.close()
    if blob is None:
        raise RuntimeError("TensorRT could not build the engine (its log above says why)")
    if cache is not None:
        _atomic_write(Path(cfg.timing_cache), bytes(config.get_timing_cache().serialize()))
    _atomic_write(directory / engine_file, bytes(blob))
    record = build_record(engine_file=engine_file, trt_version=trt.__version__,
                          gpu_name=cuda.name, compute_capability=cuda.compute_capability,
                          plan=plan, cfg=cfg, onnx_sha256=meta["files"][plan.onnx_file],
                          seconds=seconds, layers=layers)
    record_build(directory, meta, record)
    log(f"wrote {directory / engine_file} in {seconds:.0f} s")
    return record


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def record_build(directory: Path, meta: dict, record: dict) -> None:
    """Add (or replace) an engine's build record and its sha256 in meta.json, atomically."""

    builds = [b for b in meta.get("builds", []) if b.get("file") != record["file"]]
    meta = {**meta, "builds": [*builds, record],
            "files": {**meta["files"], record["file"]: sha256(directory / record["file"])}}
    _atomic_write(directory / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())
