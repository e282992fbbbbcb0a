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
dependencies already installed: this script installs and downloads nothing. The
configuration table, the schedule and the summary are in scripts/gpu_check_configs.py.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner
from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.bench import results
from edgeseg.bench.run import BenchConfig, bench, test_frame
from edgeseg.bench.sysinfo import device_name, system_profile
from edgeseg.core.artifact import read_meta
from edgeseg.core.compare import agreement, to_labels
from edgeseg.core.frames import Pipeline
from edgeseg.export.parity import THRESHOLDS
from edgeseg.models import list_models
from edgeseg.pipeline import Plan, build_stage, export_stage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check_configs import (  # noqa: E402
    BUDGET_S,
    BY_NAME,
    CONFIGS,
    DRY_SIZE,
    ITERS,
    KIND_ORDER,
    PRIOR_S,
    SIZE,
    WARMUP,
    Check,
    Config,
    Outcome,
    gpu_facts,
    has_gpu,
    no_gpu_line,
    progress_text,
    schedule,
    summary,
    unavailable,
)

ROOT = Path(__file__).resolve().parent.parent


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
