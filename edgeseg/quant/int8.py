"""`edgeseg quantize`: an FP32 artifact plus a calibration set to an INT8 Q/DQ artifact.

The quantizer is ONNX Runtime's `quantize_static` in QDQ format: it is maintained, writes
standard ONNX QuantizeLinear/DequantizeLinear that TensorRT, OpenVINO and ONNX Runtime all
consume, supports per-channel symmetric weights, node and op-type exclusions and minmax /
entropy / percentile calibration, and (ORT >= 1.32) caches calibration ranges so that the
accuracy-budget search re-quantizes without re-calibrating. (NNCF is the second route, for
OpenVINO IR; NVIDIA's Model Optimizer would add a CUDA-only dependency.)

Per target (core/capabilities.TARGETS, recorded in meta.json): INT8 symmetric per-channel
weights everywhere; INT8 symmetric per-tensor activations (zero point 0) for the symmetric
targets, what TensorRT's explicit quantization requires; UINT8 asymmetric activations from
the same calibration for ONNX Runtime, whose x86 kernels are fast only with them (padded
average pools then read float input: see qdq.padded_average_pools).

Where Q/DQ goes is decided by the quantizer rules (rules.py), recorded in meta.json.

Every INT8 artifact is judged before it is written (accept.py): against the FP32 artifact in
the target's own arithmetic, by the mIoU drop on held-out labelled images or, without
labels, by how many pixels keep their class on calibration images held out of the ranges.
Zero points must be 0 where the target needs it and the TensorRT lint must pass for the
tensorrt target; `max_drop` turns the accuracy check into a budget (budget.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeseg.backends import require, write_format
from edgeseg.backends.onnxruntime import quantizer as ortq
from edgeseg.core import trtcache
from edgeseg.core.artifact import dist_version, write_meta
from edgeseg.core.capabilities import CPU_ENGINES, FORMATS
from edgeseg.core.errors import UsageError
from edgeseg.core.host import isa
from edgeseg.core.lint import lint, summarize
from edgeseg.core.shapes import size_range
from edgeseg.data import calibration
from edgeseg.data.io import atomic_output_dir
from edgeseg.export.exporter import graph_input, topological_sort
from edgeseg.export.parity import THRESHOLDS
from edgeseg.quant import accept, budget, kernels, qdq, rules
from edgeseg.quant.config import (
    ENGINE,
    TARGETS,
    QuantConfig,
    QuantizationError,
    activation_scheme,
    check_config,
    open_inputs,
    weight_bits,
)


def calibration_inputs(cs: calibration.CalibrationSet, input_meta: dict) -> list[np.ndarray]:

    return [graph_input(input_meta, im) for im in cs.images()]


def calibration_symmetric(cfg: QuantConfig) -> bool:
    """Min/max ranges serve every target (the quantizer symmetrises them itself); entropy
    and percentile thresholds are computed for the target's symmetry."""
    return cfg.method != "minmax" and TARGETS[cfg.target].symmetric


def ranges_key(onnx_sha256: str, calib_hash: str, cfg: QuantConfig) -> str:
    import hashlib

    parts = [onnx_sha256, calib_hash, cfg.method, str(calibration_symmetric(cfg)),
             str(cfg.percentile) if cfg.method == "percentile" else "",
             ortq.version()]
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def calibrate(model_path: Path, input_name: str, inputs: list[np.ndarray], cfg: QuantConfig,
              ranges_path: Path) -> dict[str, tuple[float, float]]:
    """Ranges of every float tensor (not only the quantized ones, so that the TensorRT cache
    covers the whole network), saved where quantize_static's cache reads them."""
    return ortq.calibrate(model_path, input_name, inputs, method=cfg.method,
                          symmetric=calibration_symmetric(cfg),
                          percentile=cfg.percentile, ranges_path=ranges_path)


def quantize_graph(prepared: Path, ranges_path: Path, cfg: QuantConfig,
                   float_nodes: tuple[str, ...] = ()):
    """(the Q/DQ ModelProto for `prepared`, the rules that fired), with `float_nodes` and the
    configured exclusions left in float, Q/DQ placed by rules.py."""
    import onnx

    model = onnx.load(str(prepared))
    sym = TARGETS[cfg.target].symmetric
    placement = (rules.plan(model, cfg.target, image_convs_float=not cfg.quantize_image_convs)
                 if cfg.rules else rules.Plan())
    excluded = set(cfg.exclude_nodes) | set(float_nodes) | placement.exclude | {
        n.name for n in model.graph.node if n.op_type in cfg.exclude_ops}
    with tempfile.TemporaryDirectory(prefix="edgeseg-q-") as tmp:
        out = Path(tmp) / "q.onnx"
        ortq.quantize_qdq(prepared, out, ranges_path, method=cfg.method,
                          per_channel=cfg.per_channel, reduce_range=weight_bits(cfg) == 7,
                          symmetric_activations=sym, nodes_to_exclude=sorted(excluded),
                          op_types=placement.op_types,
                          # TensorRT fuses a float bias into its INT8 layers; its Q/DQ types
                          # are INT8/FP8/INT4.
                          quantize_bias=cfg.target != "tensorrt",
                          extra_options=placement.extra_options)
        q = onnx.load(str(out))
    fired = list(placement.rules)
    if placement.exclude:
        # quantize_static hands a quantized tensor's DequantizeLinear to every reader,
        # excluded ones included: give those their float input back.
        qdq.keep_float(q, placement.exclude)
    tail = qdq.float_tail(q, cfg.exclude_ops)
    if tail:
        fired.append({"rule": "float-tail", "tensors": tail,
                      "why": "the last layer writes float scores: rounded logits only tie"})
    if not sym:
        pools = [p for p in qdq.padded_average_pools(q)
                 if any(nonzero for _, _, nonzero in qdq.dequantized_inputs(q, p))]
        if pools:
            qdq.keep_float(q, pools)
            fired.append({"rule": "padded-pools", "nodes": pools,
                          "why": "a padded average pool on a non-zero zero point pads with "
                                 "the wrong value in integer kernels: it reads float"})
    return q, fired


@dataclass
class _Builder:
    """`build(float_nodes, path)` for the budget search, the blame and the final graph:
    writes the Q/DQ graph with `float_nodes` left in float; `fired` holds the rules that
    fired for the last graph written."""
    prepared: Path
    ranges_path: Path
    cfg: QuantConfig
    fired: list[dict] = field(default_factory=list)
    faults: dict | None = None  # the engine-faults rule: its record; its nodes stay float

    def __call__(self, float_nodes: tuple[str, ...], path: Path) -> Path:
        import onnx

        faulty = tuple(self.faults["nodes"]) if self.faults else ()
        q, rules_fired = quantize_graph(self.prepared, self.ranges_path, self.cfg,
                                        float_nodes + faulty)
        self.fired[:] = rules_fired + ([self.faults] if self.faults else [])
        topological_sort(q.graph)
        onnx.save(q, str(path))
        return path


def quantize(cfg: QuantConfig, *, log: Callable[[str], None] = print,
             progress: bool = True) -> dict:
    """Write the INT8 artifact at cfg.out, or refuse (QuantizationError) and write nothing;
    returns its meta."""
    import onnx

    check_config(cfg)
    src, meta, cs, val_set, test_set = open_inputs(cfg)
    for name in CPU_ENGINES:  # the judge and the cross-engine diagnostic run both
        require(name)
    out = Path(cfg.out)
    with atomic_output_dir(out, overwrite=cfg.force, flag="--force") as tmp, \
            tempfile.TemporaryDirectory(prefix="edgeseg-quant-") as work_dir:
        work = Path(work_dir)
        prepared, ranges_path = work / "prepared.onnx", work / "ranges.json"
        _prepare(src, prepared, cfg, meta["input"])
        inputs, held = accept.holdout_split(calibration_inputs(cs, meta["input"]), cfg)
        ranges = _ranges(prepared, ranges_path, inputs, meta, cs, cfg, log)
        build = _Builder(prepared, ranges_path, cfg)
        kernel_check = _kernel_check(build, work, cfg, log)
        float_nodes: tuple[str, ...] = ()
        search, report_set = None, val_set
        if cfg.max_drop is not None:
            tune_set, report_set = accept.budget_split(val_set, test_set)
            search = budget.fit(build=build, work=work, meta=meta, source=src / "model.onnx",
                                dataset=tune_set, cfg=cfg, log=log, progress=progress)
            float_nodes = tuple(search["float_layers"])
        model_path = build(float_nodes, tmp / "model.onnx")
        q = onnx.load(str(model_path))
        log(f"quantized {len(qdq.quantized_compute_nodes(q))} layers for {cfg.target} "
            f"(rules: {', '.join(r['rule'] for r in build.fired) or 'none'})"
            + (f"; kept in float: {', '.join(float_nodes)}" if float_nodes else ""))
        lint_summary = _structural_checks(q, cfg)
        verdict = accept.judge(model_path=model_path, src=src, meta=meta, cfg=cfg, held=held,
                               report_set=report_set, search=search, build=build, work=work,
                               log=log, progress=progress)
        files = _write_files(src, tmp, model_path, meta, ranges, cfg)
        new = dict(meta)
        new.update(
            precision="int8", files=files, builds=[],
            calibration={**_calibration_record(cfg, cs, len(inputs), len(held), float_nodes,
                                               build.fired, ranges),
                         "kernel_check": kernel_check},
            accuracy=verdict["accuracy"], acceptance=verdict["acceptance"],
            parity={"thresholds": THRESHOLDS["int8"], "results": [],
                    "backend_agreement": verdict["backend_agreement"]},
            source={"artifact": str(src.resolve()), "onnx_sha256": meta["files"]["model.onnx"]},
            lint={"tensorrt-10": lint_summary} if lint_summary else {},
        )
        write_meta(tmp, new)
    log(f"wrote {out}")
    return new


def _kernel_check(build: _Builder, work: Path, cfg: QuantConfig, log) -> dict | None:
    """For a target judged in an engine's INT8 kernels: every quantized layer run alone in
    each CPU engine (the judge, and the other one: the artifact ships both engines' formats,
    and the C++ runtime runs OpenVINO) against the reference arithmetic (kernels.py); a layer
    either engine miscomputes stays float in every graph `build` writes from now on.
    Returns meta's record of the check."""
    import onnx

    if ENGINE[cfg.target][1] != "kernels" or not cfg.kernel_check:
        return None
    probe = onnx.load(str(build((), work / "kernel-probe.onnx")))
    record = {"isa": isa(), "layers": len(kernels.layers(probe)),
              "tolerance": kernels.FAULT_TOLERANCE, "engines": {}, "faults": []}
    for engine in CPU_ENGINES:
        found = kernels.faults(probe, engine, threads=cfg.threads)
        version = dist_version(engine)
        record["engines"][engine] = {"version": version, "faults": found}
        record["faults"] += [{**f, "engine": f"{engine} {version}"} for f in found]
        if found:
            log(f"kernel check: {engine} {version} on this CPU ({record['isa']}) miscomputes "
                f"{len(found)} of {record['layers']} INT8 layers: "
                + ", ".join(f"{f['node']} (error {f['error']:.0%} of its range)"
                            for f in found))
    if record["faults"]:
        nodes = list(dict.fromkeys(f["node"] for f in record["faults"]))
        build.faults = {
            "rule": "engine-faults", "nodes": nodes, "faults": record["faults"],
            "isa": record["isa"],
            "why": f"an engine's INT8 kernels on this CPU compute these layers more than "
                   f"{kernels.FAULT_TOLERANCE:.0%} of their output range away from the Q/DQ "
                   "arithmetic (an engine fault, not a rounding): they stay float"}
        log(f"kernel check: kept in float: {', '.join(nodes)}")
    else:
        log(f"kernel check: {' and '.join(CPU_ENGINES)} INT8 kernels match the reference "
            f"arithmetic on all {record['layers']} layers")
    return record


def _prepare(src: Path, prepared: Path, cfg: QuantConfig, input_meta: dict) -> None:
    """Write the FP32 graph, shape-inferred, at `prepared`; refuse unknown --exclude-node.
    A dynamic-size graph stays dynamic; it records its nominal input shape, at which the
    rules and the kernel check read its layers' shapes (and calibration runs)."""
    import onnx

    # Shape inference only: ORT's graph optimisations would rename the nodes that
    # exclusions, reports and the TensorRT cache refer to.
    dynamic_size = size_range(input_meta) is not None
    ortq.prepare(src / "model.onnx", prepared, symbolic=not dynamic_size)
    model = onnx.load(str(prepared))
    if dynamic_size:
        h, w = input_meta["size"]
        qdq.set_nominal_shape(model, [1, 3, h, w] if input_meta["layout"] == "NCHW"
                              else [1, h, w, 3])
        onnx.save(model, str(prepared))
    names = {n.name for n in model.graph.node}
    unknown = sorted(set(cfg.exclude_nodes) - names)
    if unknown:
        raise UsageError(f"--exclude-node {', '.join(unknown)}: no such node in "
                         f"{src}/model.onnx (see `edgeseg quantize --list-nodes`)")


def _write_files(src: Path, tmp: Path, model_path: Path, meta: dict, ranges: dict,
                 cfg: QuantConfig) -> dict:
    """Write the files beside the INT8 graph; returns meta.json's files section."""
    if cfg.target == "tensorrt":
        shutil.copyfile(src / "model.onnx", tmp / "model.fp32.onnx")
        trtcache.write(tmp / "calib.cache", trtcache.scales_from_ranges(ranges),
                       trt_version=cfg.trt_version)
    files = {"model.onnx": None}
    if cfg.target == "tensorrt":
        files.update({"model.fp32.onnx": None, "calib.cache": None})
    for fmt in FORMATS.values():  # the formats the FP32 artifact has, from the INT8 graph
        if fmt.engine is not None and fmt.files[0] in meta["files"]:
            files.update(dict.fromkeys(write_format(fmt.name, model_path, tmp, fp16=False)))
    return files


def _ranges(prepared: Path, ranges_path: Path, inputs: list[np.ndarray], meta: dict,
            cs: calibration.CalibrationSet, cfg: QuantConfig, log) -> dict:
    """Calibration ranges, from the cache when this model, set and method were seen."""
    key = ranges_key(meta["files"]["model.onnx"], f"{cs.hash}:{len(inputs)}", cfg)
    cached = Path(cfg.range_cache) / f"{key}.json" if cfg.range_cache else None
    if cached is not None and cached.is_file():
        shutil.copyfile(cached, ranges_path)
        ranges = ortq.read_ranges(ranges_path)
        log(f"calibration ranges ({cfg.method}) for this model and set from {cached}")
    else:
        log(f"calibrating ({cfg.method}) on {len(inputs)} images of {cs.root} "
            f"({len(cs) - len(inputs)} held out for the check)")
        ranges = calibrate(prepared, meta["input"]["name"], inputs, cfg, ranges_path)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            part = cached.with_suffix(f".{os.getpid()}.partial")
            shutil.copyfile(ranges_path, part)
            part.replace(cached)  # atomic: a reader never sees half a file
    bad = [k for k, (lo, hi) in ranges.items() if not np.isfinite([lo, hi]).all()]
    if bad:
        raise QuantizationError(f"calibration produced non-finite ranges for {bad[:3]}; the "
                                "FP32 model overflows on the calibration images")
    return ranges


def _structural_checks(q, cfg: QuantConfig) -> dict | None:
    """Zero points where the target needs them, and the TensorRT lint for its target."""

    if TARGETS[cfg.target].symmetric:
        nonzero = [n for n, _, v in qdq.zero_points(q) if v.any()]
        if nonzero:
            raise QuantizationError(f"zero points not 0 on {nonzero[:3]} for the "
                                    f"{cfg.target} target (a quantizer regression)")
    if cfg.target != "tensorrt":
        return None
    findings = lint(q, "tensorrt-10")
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise QuantizationError("the INT8 graph fails the TensorRT 10 lint: " + "; ".join(
            f"{f.node}: {f.message}" for f in errors[:5]))
    return summarize(findings)


def _calibration_record(cfg: QuantConfig, cs, n_calib: int, n_held: int,
                        float_nodes: tuple[str, ...], fired: list[dict], ranges: dict) -> dict:
    return {
        "route": "qdq", "set": str(cs.root.resolve()), "hash": cs.hash,
        "images": n_calib, "set_images": len(cs), "held_out_images": n_held,
        "method": cfg.method, **({"percentile": cfg.percentile}
                                 if cfg.method == "percentile" else {}),
        "target": cfg.target,
        "weights": (f"int8 symmetric per-{'channel' if cfg.per_channel else 'tensor'}"
                    + (", 7-bit range (overflow fix)" if weight_bits(cfg) == 7 else "")),
        "weight_bits": weight_bits(cfg),
        "activations": activation_scheme(cfg.target),
        "quantizer": f"onnxruntime.quantization.quantize_static {ortq.version()} "
                     "(QDQ)",
        "rules": fired,
        "excluded_ops": list(cfg.exclude_ops),
        "excluded_nodes": list(cfg.exclude_nodes), "float_layers": list(float_nodes),
        "tensorrt_cache": {"file": "calib.cache", "applies_to": "model.fp32.onnx",
                           "trt_version": cfg.trt_version,
                           "tensors": len(ranges)} if cfg.target == "tensorrt" else None,
    }
