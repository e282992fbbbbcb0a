"""The one pipeline: a plan (model, size, precisions, INT8 targets, engines) run as
export -> calibration -> quantize -> build -> bench -> report. `edgeseg demo`, the benchmark
matrix (pipeline/matrix.py) and the scripts in benchmarks/ call these stages; nothing else
composes them. Each stage takes and returns plain values (paths, dicts)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.backends import is_available
from edgeseg.backends.tensorrt.builder import build as build_engine
from edgeseg.backends.tensorrt.plan import BuildConfig
from edgeseg.bench import results
from edgeseg.bench.report import report
from edgeseg.bench.run import BenchConfig, bench
from edgeseg.bench.sysinfo import device_name
from edgeseg.core.capabilities import CPU_ENGINES, ENGINES, FORMATS, PRECISIONS, TARGETS
from edgeseg.core.errors import UsageError
from edgeseg.data.calibration import MIN_IMAGES, CalibrationSet, build
from edgeseg.export.exporter import ExportConfig, export
from edgeseg.quant.config import QuantConfig, QuantizationError
from edgeseg.quant.int8 import quantize
from edgeseg.quant.nncf_route import quantize_nncf

Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    workdir: Path
    checkpoint: Path | None = None  # a trained model; None: `model` with random weights
    model: str | None = None
    size: tuple[int, int] = (512, 1024)
    precisions: tuple[str, ...] = ("fp32",)
    targets: tuple[str, ...] = ()  # INT8 targets (core/capabilities.TARGETS)
    engines: tuple[str, ...] = CPU_ENGINES  # "torch" benchmarks the FP32 model eagerly
    data: str | None = None  # calibration (train split), parity and scoring (val split)
    calib_images: int = MIN_IMAGES
    val_limit: int | None = None
    iters: int = 20
    warmup: int = 5
    threads: int | None = None
    quant: dict[str, Any] = field(default_factory=dict)  # QuantConfig fields to override

    def __post_init__(self) -> None:
        for kind, names, known in (("precision", self.precisions, PRECISIONS),
                                   ("target", self.targets, TARGETS),
                                   ("engine", self.engines, ENGINES)):
            bad = [n for n in names if n not in known]
            if bad:
                raise UsageError(f"plan: unknown {kind}(s) {bad}; known: {', '.join(known)}")
        if "int8" in self.precisions and not self.targets:
            raise UsageError("plan: an int8 precision needs at least one INT8 target")

    def artifact(self, precision: str, target: str | None = None) -> Path:
        name = (self.model or Path(self.checkpoint).stem) + f"-{precision}"
        return Path(self.workdir) / "artifacts" / (name + (f"-{target}" if target else ""))


def export_stage(plan: Plan, precision: str, out: Path, *, log: Log = print,
                 **options) -> Path:
    """An FP32 or FP16 artifact with every format, its parity checked (ExportConfig fields
    in `options` override the plan's)."""
    if plan.checkpoint is None and plan.model is None:
        raise UsageError("plan: give a checkpoint, or a model to export with random weights")
    cfg = dict(out=str(out), size=plan.size, precision=precision, formats=tuple(FORMATS),
               data=plan.data, force=True)
    if plan.checkpoint is not None:
        cfg["checkpoint"] = str(plan.checkpoint)
    else:
        cfg["model"] = plan.model
    export(ExportConfig(**{**cfg, **options}), log=log)
    return out


def calibration_stage(plan: Plan, out: Path, *, log: Log = print,
                      **options) -> CalibrationSet:
    """The calibration set: `calib_images` train images of the plan's data at its size."""
    if not plan.data:
        raise UsageError("INT8 needs a dataset to draw the calibration set from (data)")
    cfg = dict(size=plan.size, data=plan.data, num=plan.calib_images, overwrite=True,
               progress=False, log=log)
    return build(out, **{**cfg, **options})


def quantize_stage(plan: Plan, fp32: Path, calib: Path, target: str, out: Path, *,
                   route: str = "qdq", log: Log = print, progress: bool = False,
                   **options) -> dict:
    """The INT8 artifact for `target` by `route` (qdq: ONNX Q/DQ; nncf: NNCF's IR), judged
    against FP32 on the plan's val images (a QuantizationError when refused: nothing
    written); returns its meta. QuantConfig fields in `options` override the plan's."""
    cfg = dict(artifact=str(fp32), calib=str(calib), out=str(out), target=target,
               val=plan.data, val_limit=plan.val_limit, threads=plan.threads, force=True,
               **plan.quant)
    run_route = {"qdq": quantize, "nncf": quantize_nncf}[route]
    return run_route(QuantConfig(**{**cfg, **options}), log=log, progress=progress)


def build_stage(plan: Plan, artifact: Path, *, log: Log = print) -> str | None:
    """The TensorRT engine for this GPU when the plan names tensorrt and it is installed;
    None (and why) otherwise."""
    if "tensorrt" not in plan.engines:
        return None
    if not is_available("tensorrt"):
        log(f"build: skipped for {artifact.name} ({ENGINES['tensorrt'].install})")
        return None
    return build_engine(BuildConfig(artifact=str(artifact), force=True), log=log)["file"]


def bench_stage(plan: Plan, artifact: Path, engine: str, *, results_dir: Path | None = None,
                score: bool = True, log: Log = print, progress: bool = False,
                **options) -> dict:
    """Latency per phase (and mIoU on the plan's val images with `score`), written under
    results_dir/<device>/ when given (BenchConfig fields in `options` override the plan's)."""
    cfg = dict(artifact=str(artifact), backend=engine, iters=plan.iters, warmup=plan.warmup,
               threads=plan.threads, val=plan.data if score else None,
               val_limit=plan.val_limit)
    r = bench(BenchConfig(**{**cfg, **options}), log=log, progress=progress)
    if results_dir is not None:
        r["path"] = str(results.write(r, Path(results_dir) / device_name(r["system"])
                                      / results.default_name(r)))
    return r


@dataclass
class Outcome:
    artifacts: dict[str, Path] = field(default_factory=dict)  # "fp32", "int8-<target>", ...
    refused: dict[str, str] = field(default_factory=dict)  # artifact name -> why
    engines: dict[str, str] = field(default_factory=dict)  # artifact name -> TensorRT engine
    results: list[dict] = field(default_factory=list)
    report: dict | None = None


def run(plan: Plan, *, log: Log = print, step: Log | None = None) -> Outcome:
    """Every stage of the plan in order. An INT8 refusal is recorded and the plan goes on
    with the other artifacts; any other failure stops it."""
    step = step or log
    out = Outcome()
    step("export: " + ", ".join(p for p in plan.precisions if p != "int8") + " artifacts")
    for precision in ("fp32", *(p for p in plan.precisions if p not in ("fp32", "int8"))):
        out.artifacts[precision] = export_stage(plan, precision, plan.artifact(precision),
                                                log=log)
    if "int8" in plan.precisions:
        step(f"calibration ({plan.calib_images} images) and INT8 for "
             + ", ".join(plan.targets))
        calib = calibration_stage(plan, Path(plan.workdir) / "calibration", log=log)
        for target in plan.targets:
            try:
                quantize_stage(plan, out.artifacts["fp32"], calib.root, target,
                               plan.artifact("int8", target), log=log)
                out.artifacts[f"int8-{target}"] = plan.artifact("int8", target)
            except QuantizationError as e:
                log(f"INT8 for {target} refused, going on without it: {e}")
                out.refused[f"int8-{target}"] = str(e)
    for name, art in out.artifacts.items():
        engine = build_stage(plan, art, log=log)
        if engine:
            out.engines[name] = engine
    runs = [(name, e) for name in out.artifacts for e in plan.engines
            if (e != "torch" or name == "fp32") and (e != "tensorrt" or name in out.engines)]
    step(f"bench: {len(runs)} configurations ({plan.iters} timed runs each after "
         f"{plan.warmup} warm-up runs)")
    results_dir = Path(plan.workdir) / "results"
    shutil.rmtree(results_dir, ignore_errors=True)  # the report shows this run's results only
    for name, engine in runs:
        r = bench_stage(plan, out.artifacts[name], engine, results_dir=results_dir, log=log)
        out.results.append(r)
        miou = f", mIoU {r['accuracy']['miou']:.4f}" if r.get("accuracy") else ""
        log(f"      {name} {engine}: {r['latency_ms']['median_ms']:.2f} ms median{miou}")
    step("report")
    out.report = report([results_dir], Path(plan.workdir) / "report")
    return out
