"""The GPU check (`make gpu-check`): every model of the registry at 1024x2048, batch 1, on
one NVIDIA GPU, in each GPU configuration edgeseg has, timed and checked, in under 8 minutes
with nothing downloaded.

    python scripts/gpu_check.py                 # on a machine with a GPU (make gpu-check)
    python scripts/gpu_check.py --dry-run       # the same loop on the CPU, 1 run, 64x128

Per model (random weights, or the trained checkpoint ~/.cache/edgeseg/baselines/
<model>-128x256.pt when it is there: the result says which), after exporting the FP32 and
FP16 artifacts (`edgeseg.pipeline.export_stage`, parity checked in ONNX Runtime on the CPU):

    torch-fp32          PyTorch eager, FP32 (the report's speed-up reference)
    torch-fp16          PyTorch eager, module.half()
    ort-cuda-fp32/-fp16 ONNX Runtime, CUDA execution provider, the FP32 / FP16 artifact
    torch-compile-fp32  torch.compile
    tensorrt-fp32/-fp16 `edgeseg build` then the TensorRT runner (when tensorrt imports)

Each is `edgeseg bench` (edgeseg.bench.run.bench): the whole frame path with warm-up runs,
then timed runs split into preprocess / copy in / compute / copy out / postprocess (CUDA
events for PyTorch and TensorRT; host timers around synchronous calls for ONNX Runtime,
which has no events), with min/median/p90/p99/max. Its outputs on the test frame are checked
against the CPU FP32 artifact's (ONNX Runtime, CPU) on the same frame: argmax agreement,
stored in the result's `gpu_check` section. Results go to <out>/<device>/ under the names
`edgeseg bench` gives, so `edgeseg report benchmarks/results` merges them with the CPU ones;
the summary (also what failed or was skipped, and why) is printed and written next to them
as gpu-check.md.

The configurations run cheapest first (the four eager and ONNX Runtime ones for every model,
then torch.compile, then TensorRT builds); one starts only when its expected time (the
slowest of its kind so far, else a prior) fits in what is left of --budget-s, so the check
ends on time and names what it left out. A configuration that fails is recorded and the
check goes on. Without a GPU it prints one line saying so and exits 0.

`edgeseg` must be importable (the Makefile target puts the checkout on PYTHONPATH); the GPU
machine needs PyTorch with CUDA and onnxruntime-gpu (TensorRT optional) and edgeseg's other
dependencies already installed: this script installs and downloads nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner, is_available
from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.bench import results
from edgeseg.bench.run import BenchConfig, bench, test_frame
from edgeseg.bench.sysinfo import device_name, gpu_info, system_profile
from edgeseg.core.artifact import dist_version, read_meta
from edgeseg.core.compare import agreement, to_labels
from edgeseg.core.frames import Pipeline
from edgeseg.export.parity import THRESHOLDS
from edgeseg.models import list_models
from edgeseg.pipeline import Plan, build_stage, export_stage

ROOT = Path(__file__).resolve().parent.parent
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
# Artifacts (in worker processes: exporting is CPU work, ~10 s each at 1024x2048)


def checkpoint_for(model: str, weights: str) -> Path | None:
    path = DEFAULT_CACHE / "baselines" / f"{model}-128x256.pt"
    return path if weights == "auto" and path.is_file() else None


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def export_job(model: str, precision: str, size: tuple[int, int], workdir: str,
               checkpoint: str | None) -> dict:
    """One artifact; for FP32 also the reference labels: the CPU FP32 artifact (ONNX
    Runtime) on the frame `edgeseg bench` times, saved next to it."""
    t0 = time.perf_counter()
    plan = Plan(workdir=Path(workdir), model=None if checkpoint else model,
                checkpoint=Path(checkpoint) if checkpoint else None, size=size)
    out = Path(workdir) / "artifacts" / f"{model}-{precision}"
    # One parity input in one engine: the check is that the graph computes the model, and
    # the OpenVINO IR is of no use on a GPU.
    export_stage(plan, precision, out, log=lambda m: None, formats=("onnx",),
                 parity_backends=("onnxruntime",), parity_inputs=1)
    done = {"model": model, "precision": precision, "artifact": str(out),
            "seconds": time.perf_counter() - t0}
    if precision == "fp32":
        meta = read_meta(out)
        pipe = Pipeline(meta)
        frame = test_frame(BenchConfig(artifact=str(out)), meta)
        with get_runner("onnxruntime", out / "model.onnx", device="cpu") as runner:
            y = pipe.pick(runner.infer({meta["input"]["name"]: pipe.prepare(frame)}))
        ref = Path(workdir) / "reference" / f"{model}.npy"
        ref.parent.mkdir(parents=True, exist_ok=True)
        np.save(ref, to_labels(y, meta["output"]["kind"]))
        done["reference"] = str(ref)
    return done


def export_all(check: Check, log: Callable[[str], None]) -> dict[tuple[str, str], dict | str]:
    """{(model, precision): export_job's record, or why it failed}."""
    wanted = sorted({(m, c.artifact) for m in check.models for c in check.configs}
                    | {(m, "fp32") for m in check.models},
                    key=lambda k: (check.models.index(k[0]), k[1] != "fp32"))
    jobs = {k: (k[0], k[1], check.size, str(check.workdir),
                str(cp) if (cp := checkpoint_for(k[0], check.weights)) else None)
            for k in wanted}
    workers = max(1, min(check.jobs, len(jobs)))
    log(f"exporting {len(jobs)} artifacts at {check.size[0]}x{check.size[1]} "
        f"({workers} at a time)")
    done: dict[tuple[str, str], dict | str] = {}
    if workers == 1:
        for k, args in jobs.items():
            done[k] = _guarded(export_job, *args)
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        # spawn: a forked child would inherit the parent's torch and CUDA state.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_set_threads, initargs=(threads,)) as pool:
            futures = {k: pool.submit(_guarded, export_job, *args) for k, args in jobs.items()}
            for k, f in futures.items():
                try:
                    done[k] = f.result()
                except Exception as e:  # a worker that died (killed for memory, ...)
                    done[k] = one_line(e)
    for (model, precision), d in done.items():
        what = f"{d['seconds']:.1f} s" if isinstance(d, dict) else f"FAILED: {d}"
        log(f"  export {model} {precision}: {what}")
    return done


def _guarded(fn, *args):
    """fn(*args), or the failure as one line (a worker's exception would stop the pool's
    other results from being read)."""
    try:
        return fn(*args)
    except Exception as e:  # any export failure is this model's, not the check's
        return one_line(e)


def one_line(e: BaseException, limit: int = 300) -> str:
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    text = f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------------------------------
# The configurations


def run_config(check: Check, model: str, config: Config, art: dict, ref: np.ndarray,
               weights: str) -> Outcome:
    """Build (TensorRT), bench, compare with the reference, write the result."""
    outcome = Outcome(model, config)
    directory = Path(art["artifact"])
    build_s = None
    if config.backend == "tensorrt":
        t0 = time.perf_counter()
        plan = Plan(workdir=check.workdir, model=model, size=check.size, engines=("tensorrt",))
        build_stage(plan, directory, log=lambda m: None)
        build_s = round(time.perf_counter() - t0, 2)
    got: dict[str, np.ndarray] = {}
    cfg = BenchConfig(artifact=str(directory), backend=config.backend, iters=check.iters,
                      warmup=check.warmup, device=check.device, compile=config.compile,
                      half=config.half)
    r = bench(cfg, log=lambda m: None, progress=False, on_output=got.update)
    meta = read_meta(directory)
    labels = to_labels(Pipeline(meta).pick(got), meta["output"]["kind"])
    if labels.shape != ref.shape:
        raise ValueError(f"output labels of shape {labels.shape}, the reference's are "
                         f"{ref.shape}")
    agree = agreement([ref], [labels])
    # What an export of this precision must reach against PyTorch FP32 on the CPU.
    floor = THRESHOLDS[r["artifact"]["precision"]]["argmax_agreement"]
    r["gpu_check"] = {
        "config": config.name, "dry_run": check.dry_run,
        "device": check.device or "each engine's default (dry run: the CPU)",
        "weights": weights,
        "input": f"noise frame (seed 0) at {check.size[0]}x{check.size[1]}, "
                 "edgeseg.bench.run.test_frame",
        "reference": {"engine": "onnxruntime", "device": "cpu", "precision": "fp32",
                      "artifact": str(Path(art["reference_artifact"]).resolve())},
        "argmax_agreement": agree, "pixels": int(ref.size), "threshold": floor,
        "below_threshold": agree < floor, "build_s": build_s, "script": "scripts/gpu_check.py",
    }
    path = check.out / device_name(r["system"]) / results.default_name(r)
    outcome.path = results.write(r, path)
    outcome.status, outcome.result = ("low" if agree < floor else "ok"), r
    if agree < floor:
        outcome.why = f"argmax agreement {100 * agree:.3f}% < {100 * floor:g}%"
    return outcome


def schedule(check: Check) -> list[tuple[str, Config]]:
    """Cheapest kind first, so what the budget leaves out is the most expensive."""
    return sorted(((m, c) for m in check.models for c in check.configs),
                  key=lambda mc: (KIND_ORDER.index(mc[1].kind), check.models.index(mc[0]),
                                  check.configs.index(mc[1])))


def run_all(check: Check, facts: dict, arts: dict, log: Callable[[str], None]
            ) -> list[Outcome]:
    spent: dict[str, list[float]] = {k: [] for k in KIND_ORDER}
    order = schedule(check)
    outcomes = []
    for i, (model, config) in enumerate(order, 1):
        head = f"[{i:2d}/{len(order)} {check.elapsed():4.0f}s] {model} {config.name}"
        outcome = Outcome(model, config)
        need = max(spent[config.kind], default=PRIOR_S[config.kind])
        left = check.budget_s - check.elapsed()
        art = arts.get((model, config.artifact))
        ref = arts.get((model, "fp32"))
        if (why := unavailable(config, facts, check.dry_run)) is not None:
            outcome.why = why
        elif not isinstance(art, dict) or not isinstance(ref, dict):
            outcome.status = "failed"
            outcome.why = "export failed: " + next((a for a in (art, ref) if isinstance(a, str)),
                                                   "no artifact")
        elif need > left:
            outcome.why = (f"time budget: {max(left, 0):.0f} s left of {check.budget_s:.0f}, "
                           f"~{need:.0f} s needed (--budget-s)")
        else:
            t0 = time.perf_counter()
            checkpoint = checkpoint_for(model, check.weights)
            weights = f"checkpoint {checkpoint}" if checkpoint else "random (registry init, seed 0)"
            try:
                outcome = run_config(check, model, config,
                                     {**art, "reference_artifact": ref["artifact"]},
                                     np.load(ref["reference"]), weights)
            except Exception as e:  # this configuration's failure; the check goes on
                outcome.status, outcome.why = "failed", one_line(e)
            outcome.wall_s = time.perf_counter() - t0
            spent[config.kind].append(outcome.wall_s)
        log(f"{head}: {progress_text(outcome)}")
        outcomes.append(outcome)
    return outcomes


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


# ---------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: write HxW, e.g. 1024x2048") from None
    return h, w


def names(text: str, known: list[str], what: str) -> list[str]:
    got = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in got if n not in known]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad}; known: {', '.join(known)}")
    return got


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true",
                   help="the same loop on the CPU (each engine's default device), 1 warm-up "
                   f"and 1 timed run at {DRY_SIZE[0]}x{DRY_SIZE[1]} unless given: everything "
                   "but the CUDA calls")
    p.add_argument("--models", type=lambda t: names(t, list_models(), "models"),
                   default=None, help="comma-separated (default: every registry model)")
    known = list(BY_NAME)
    p.add_argument("--only", type=lambda t: names(t, known, "configurations"), default=None,
                   help=f"comma-separated configurations to run (of {', '.join(known)})")
    p.add_argument("--skip", type=lambda t: names(t, known, "configurations"), default=[],
                   help="comma-separated configurations to leave out")
    p.add_argument("--size", type=parse_size, default=None,
                   help=f"HxW (default {SIZE[0]}x{SIZE[1]}; dry run {DRY_SIZE[0]}x"
                   f"{DRY_SIZE[1]})")
    p.add_argument("--warmup", type=int, default=None, help=f"default {WARMUP} (dry run 1)")
    p.add_argument("--iters", type=int, default=None, help=f"default {ITERS} (dry run 1)")
    p.add_argument("--budget-s", type=float, default=BUDGET_S,
                   help="start no configuration that is not expected to end within this many "
                   f"seconds of the start (default {BUDGET_S:g})")
    p.add_argument("--gpu", type=int, default=0, help="GPU index (default 0)")
    p.add_argument("--weights", choices=("auto", "random"), default="auto",
                   help="auto: the trained checkpoint in the cache when there is one, else "
                   "random weights; random: always random")
    p.add_argument("--jobs", type=int, default=None,
                   help="artifacts exported at once (default: half the CPU cores)")
    p.add_argument("--out", type=Path, default=None,
                   help="results directory (default benchmarks/results; dry run: "
                   "<workdir>/results)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="artifacts (default build/gpu-check, dry run build/gpu-check-dry)")
    return p.parse_args(argv)


def make_check(a: argparse.Namespace) -> Check:
    dry = a.dry_run
    workdir = a.workdir or ROOT / "build" / ("gpu-check-dry" if dry else "gpu-check")
    configs = [c for c in CONFIGS if (a.only is None or c.name in a.only)
               and c.name not in a.skip]
    if not configs:
        raise SystemExit("gpu-check: --only/--skip leave no configuration to run")
    return Check(models=a.models or list_models(), configs=configs,
                 size=a.size or (DRY_SIZE if dry else SIZE),
                 warmup=a.warmup if a.warmup is not None else (1 if dry else WARMUP),
                 iters=a.iters if a.iters is not None else (1 if dry else ITERS),
                 budget_s=a.budget_s,
                 out=a.out or (workdir / "results" if dry else ROOT / "benchmarks" / "results"),
                 workdir=workdir, weights=a.weights,
                 jobs=a.jobs or max(1, (os.cpu_count() or 2) // 2), dry_run=dry,
                 device=None if dry else f"gpu:{a.gpu}")


def main(argv: list[str] | None = None) -> int:
    check = make_check(parse_args(argv))
    facts = gpu_facts()
    if not check.dry_run and not has_gpu(facts):
        print(no_gpu_line(facts, check))
        return 0

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(f"gpu-check{' (dry run)' if check.dry_run else ''}: {len(check.models)} models x "
        f"{len(check.configs)} configurations at {check.size[0]}x{check.size[1]}, budget "
        f"{check.budget_s:.0f} s")
    arts = export_all(check, log)
    outcomes = run_all(check, facts, arts, log)
    written = [o.result for o in outcomes if o.result is not None]
    device = device_name(written[0]["system"] if written else system_profile())
    text = summary(check, facts, outcomes, device)
    (check.out / device).mkdir(parents=True, exist_ok=True)
    (check.out / device / "gpu-check.md").write_text(text)
    print("\n" + text, end="")
    return 1 if any(o.status in ("failed", "low") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
