"""What scripts/gpu_check.py runs and what it prints: the configuration table and the time
budget's constants, the records of one invocation (Check) and of one configuration run
(Outcome), what the machine offers (GPU facts, which configurations can run here), the
cheapest-first schedule, and the progress lines and the summary (gpu-check.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.backends import is_available
from edgeseg.bench.sysinfo import gpu_info
from edgeseg.core.artifact import dist_version

SIZE = (1024, 2048)
DRY_SIZE = (64, 128)
# The frame path at 1024x2048 spends roughly 100 ms per frame on the host whatever the GPU
# does (4x the ~20 ms of pre- and postprocessing of the 512x1024 CPU results, plus copying
# 19x1024x2048 scores out): 5 + 30 runs keep the 20 eager and ONNX Runtime configurations
# near 2-3 minutes, leaving time for torch.compile.
WARMUP, ITERS = 5, 30
# 7 minutes: a configuration that starts near the end and overruns its estimate still ends
# before the 8-minute mark.
BUDGET_S = 420.0
# Expected seconds of a configuration of each kind before one has run (then: the slowest).
PRIOR_S = {"run": 20.0, "compile": 90.0, "build": 120.0}
KIND_ORDER = ("run", "compile", "build")


@dataclass(frozen=True)
class Config:
    name: str
    backend: str
    artifact: str  # the precision of the artifact it runs
    kind: str  # run | compile | build: its cost class for the time budget
    compile: bool = False
    half: bool = False


CONFIGS = (
    Config("torch-fp32", "torch", "fp32", "run"),
    Config("torch-fp16", "torch", "fp32", "run", half=True),
    Config("ort-cuda-fp32", "onnxruntime", "fp32", "run"),
    Config("ort-cuda-fp16", "onnxruntime", "fp16", "run"),
    Config("torch-compile-fp32", "torch", "fp32", "compile", compile=True),
    Config("tensorrt-fp32", "tensorrt", "fp32", "build"),
    Config("tensorrt-fp16", "tensorrt", "fp16", "build"),
)
BY_NAME = {c.name: c for c in CONFIGS}


@dataclass
class Outcome:
    model: str
    config: Config
    status: str = "skipped"  # ok | low (agreement under the threshold) | failed | skipped
    why: str = ""
    result: dict | None = None
    path: Path | None = None
    wall_s: float = 0.0


@dataclass
class Check:
    """What one invocation runs, and where."""
    models: list[str]
    configs: list[Config]
    size: tuple[int, int]
    warmup: int
    iters: int
    budget_s: float
    out: Path
    workdir: Path
    weights: str  # auto | random
    jobs: int
    dry_run: bool
    device: str | None  # the device grammar's gpu:N; None in a dry run (each engine's own)
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# ---------------------------------------------------------------------------------------
# Is there a GPU?


def gpu_facts() -> dict:
    """What this machine offers the check: torch's CUDA, ONNX Runtime's CUDA provider,
    the GPUs nvidia-smi lists, TensorRT."""
    facts = {"torch": None, "torch_cuda": False, "onnxruntime": None, "ort_cuda": False,
             "gpus": gpu_info(), "tensorrt": is_available("tensorrt")}
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["torch_cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        pass
    try:
        import onnxruntime

        facts["onnxruntime"] = onnxruntime.__version__
        facts["ort_cuda"] = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except ImportError:
        pass
    return facts


def has_gpu(facts: dict) -> bool:
    # onnxruntime-gpu lists its CUDA provider whether or not a GPU is present: that alone
    # needs a GPU that nvidia-smi sees.
    return facts["torch_cuda"] or (facts["ort_cuda"] and bool(facts["gpus"]))


def unavailable(config: Config, facts: dict, dry_run: bool) -> str | None:
    """Why `config` cannot run here (None: it can)."""
    if config.backend == "tensorrt" and not facts["tensorrt"]:
        return "TensorRT is not importable here"
    if dry_run:
        return None
    if config.backend == "torch" and not facts["torch_cuda"]:
        return f"torch {facts['torch']} sees no CUDA GPU"
    if config.backend == "onnxruntime" and not facts["ort_cuda"]:
        return (f"onnxruntime {facts['onnxruntime']} has no CUDAExecutionProvider "
                "(the onnxruntime-gpu package has it)")
    return None


def no_gpu_line(facts: dict, check: Check) -> str:
    ort = (f"onnxruntime {facts['onnxruntime']}: CUDAExecutionProvider listed but nvidia-smi "
           "finds no GPU" if facts["ort_cuda"] else
           f"onnxruntime {facts['onnxruntime']}: no CUDAExecutionProvider")
    h, w = check.size
    configs = ", ".join(c.name + (" (if TensorRT imports)" if c.backend == "tensorrt"
                                  and not facts["tensorrt"] else "") for c in check.configs)
    return (f"gpu-check: no CUDA GPU here (torch {facts['torch']}: torch.cuda.is_available() "
            f"is False; {ort}); nothing run. On a GPU it would run {len(check.models)} models "
            f"({', '.join(check.models)}) at {h}x{w} batch 1 in {configs} ({check.warmup} "
            f"warm-up + {check.iters} timed runs each, agreement with the CPU FP32 artifact) "
            f"and write results under {check.out}/<gpu>/")


# ---------------------------------------------------------------------------------------
# The schedule and what is printed


def schedule(check: Check) -> list[tuple[str, Config]]:
    """Cheapest kind first, so what the budget leaves out is the most expensive."""
    return sorted(((m, c) for m in check.models for c in check.configs),
                  key=lambda mc: (KIND_ORDER.index(mc[1].kind), check.models.index(mc[0]),
                                  check.configs.index(mc[1])))


def progress_text(o: Outcome) -> str:
    if o.result is None:
        return f"FAILED: {o.why}" if o.status == "failed" else f"skipped ({o.why})"
    r = o.result
    lat = r["latency_ms"]
    low = f", BELOW THE THRESHOLD {100 * r['gpu_check']['threshold']:g}%" if o.why else ""
    return (f"compute p50 {lat['median_ms']:.2f} ms (p90 {lat['p90_ms']:.2f}, p99 "
            f"{lat['p99_ms']:.2f}), e2e p50 {r['end_to_end_ms']['median_ms']:.1f} ms, "
            f"agreement {100 * r['gpu_check']['argmax_agreement']:.3f}%{low} "
            f"({o.wall_s:.1f} s)")


# ---------------------------------------------------------------------------------------
# The summary


def summary(check: Check, facts: dict, outcomes: list[Outcome], device: str) -> str:
    h, w = check.size
    gpu = ", ".join(g["name"] for g in facts["gpus"] or []) or "none found by nvidia-smi"
    lines = [f"# GPU check{' (dry run on the CPU)' if check.dry_run else ''}: {device}", "",
             f"GPU: {gpu}; torch {facts['torch']} (CUDA: {facts['torch_cuda']}), onnxruntime "
             f"{facts['onnxruntime']} (CUDA provider: {facts['ort_cuda']}), TensorRT "
             f"{dist_version('tensorrt') or 'not installed'}. {h}x{w}, batch 1, "
             f"{check.warmup} warm-up + {check.iters} timed runs; {check.elapsed():.0f} s "
             f"of a {check.budget_s:.0f} s budget.", "",
             "| model | configuration | p50 ms | p90 ms | p99 ms | copy in | compute | "
             "copy out | pre | post | e2e p50 ms | agreement | s |",
             "| --- | --- |" + " ---: |" * 11]
    ran = sorted((o for o in outcomes if o.result is not None),
                 key=lambda o: (check.models.index(o.model), check.configs.index(o.config)))
    for o in ran:
        r = o.result
        lat, ph = r["latency_ms"], r["phases_ms"]

        def med(k, ph=ph):
            return f"{ph[k]['median_ms']:.2f}" if k in ph else "-"

        lines.append(f"| {o.model} | {o.config.name} | {lat['median_ms']:.2f} | "
                     f"{lat['p90_ms']:.2f} | {lat['p99_ms']:.2f} | {med('copy_in')} | "
                     f"{med('compute')} | {med('copy_out')} | {med('preprocess')} | "
                     f"{med('postprocess')} | {r['end_to_end_ms']['median_ms']:.2f} | "
                     f"{100 * r['gpu_check']['argmax_agreement']:.3f}% | {o.wall_s:.1f} |")
    lines += ["", "p50/p90/p99: the compute phase (phase columns: medians, ms); agreement: "
              "pixels whose argmax equals the CPU FP32 artifact's (ONNX Runtime) on the same "
              "frame; weights: " + (", ".join(sorted({o.result["gpu_check"]["weights"]
                                                      for o in ran})) or "-") + "."]
    low = [o for o in outcomes if o.status == "low"]
    if low:
        lines += ["", "Below the agreement an export of that precision must reach on the CPU "
                  "(edgeseg.export.parity.THRESHOLDS; on Ampere and later GPUs PyTorch, ONNX "
                  "Runtime and TensorRT run FP32 convolutions in TF32 by default):", ""]
        lines += [f"- {o.model} {o.config.name}: {o.why}" for o in low]
    not_run = [o for o in outcomes if o.result is None]
    if not_run:
        lines += ["", "Not run:", ""]
        lines += [f"- {o.model} {o.config.name}: {o.status}: {o.why}" for o in not_run]
    lines += ["", f"Results: {check.out}/{device}/ ({len(ran)} files); merged with the CPU "
              f"ones by `edgeseg report {check.out}`."]
    return "\n".join(lines) + "\n"
