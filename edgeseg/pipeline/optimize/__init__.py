"""`edgeseg optimize`: the fastest artifact that meets an accuracy budget on this machine,
chosen by measurement.

A candidate is one way to deploy the model here: an artifact (FP32, or INT8 for one of the
quantization targets) x its graph I/O (logits with a host argmax, labels, labels_lowres; host
or fused uint8 preprocessing) x an engine available here x, for OpenVINO, the inference
precision of the ops left in float (f32, and bf16 / f16 where this CPU has them). Each is
timed end to end, a uint8 frame at the deployment size to its full-resolution label map
(runtime.Segmenter, so the host's pre- and postprocessing count), and scored on the val
split against the FP32 graph in ONNX Runtime.

The search has two phases, so that INT8 graphs are quantized only where they can win:
1. precision x engine: every candidate with logits and host preprocessing;
2. graph I/O: the `finalists` fastest configurations of phase 1 that meet the budget get the
   other outputs and the fused preprocessing.
Then every candidate with an artifact is timed again, all in one interleaved run, so that
the reported latencies and their ratios come from the same minutes of this shared machine.

Artifacts (exported and quantized) and accuracies are cached in the work directory, keyed by
the source and the deployment size; a rerun re-times but rebuilds and re-scores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edgeseg.backends import is_available
from edgeseg.bench.profile import int8_matmul_peak, profile_artifact
from edgeseg.bench.sysinfo import system_profile
from edgeseg.core.artifact import read_meta
from edgeseg.core.capabilities import CPU_ENGINES, ENGINES
from edgeseg.core.errors import EdgesegError, EngineUnavailable, MissingInput, OutputExists
from edgeseg.data.datasets import open_dataset
from edgeseg.models import create_model, list_models
from edgeseg.models.complexity import measure as measure_complexity
from edgeseg.pipeline.optimize.candidates import (
    Candidate,
    OptimizeConfig,
    Result,
    engine_hints,
    first_variant,
    graph_io,
    phase1,
    resolve_source,
    variants,
)
from edgeseg.pipeline.optimize.measure import (
    Builder,
    build,
    frame,
    score,
    time_all,
)
from edgeseg.pipeline.optimize.throughput import measure as measure_throughput
from edgeseg.pipeline.optimize.write import write

__all__ = ["Candidate", "OptimizeConfig", "Result", "run"]

Log = Callable[[str], None]


def run(cfg: OptimizeConfig, *, log: Log = print, progress: bool = False) -> Result:
    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not cfg.force:
        raise OutputExists(f"{out} already exists and is not empty; choose another path or "
                           "pass --force to replace it (checked before measuring anything)")
    source = resolve_source(cfg)
    source.plan = replace(source.plan, workdir=Path(source.plan.workdir) / source.key)
    plan = source.plan
    if not Path(cfg.val).is_dir():
        raise MissingInput(f"--val {cfg.val}: dataset directory not found")
    dataset = open_dataset(cfg.val, "val")
    log(f"optimize: {cfg.source} at {plan.size[0]}x{plan.size[1]}, budget {cfg.max_drop} "
        f"mIoU points; work directory {plan.workdir}")
    res = Result(system=system_profile(threads=cfg.threads), workdir=Path(plan.workdir))
    pairs, unavailable = engine_hints(cfg, log)
    output, fused = first_variant(cfg, source.fixed)
    for name, why in unavailable:
        engine, _, hint = name.partition("/")
        res.candidates.append(Candidate("fp32", output, fused, engine, hint or None,
                                        status="skipped", why=why))
    if "fp16" in cfg.precisions and not any(h == "f16" for _, h in pairs):
        res.candidates.append(Candidate("fp16", output, fused, CPU_ENGINES[0], status="skipped",
                                        why="an FP16 graph is for GPUs: none here, and ONNX "
                                        "Runtime's CPU kernels run FP16 slower than FP32"))
    builder = Builder(source, log)
    first = phase1(cfg, pairs, source.fixed)
    res.reference = _reference(first, builder)
    res.candidates += first
    log(f"phase 1: {len(first)} precision x engine candidates ({output}"
        f"{', fused preprocessing' if fused else ''})")
    build(builder, first)
    ok = [c for c in first if c.artifact is not None]
    score([res.reference, *[c for c in ok if c is not res.reference]], plan, dataset,
          progress=progress, log=log)
    if res.reference.miou is None:
        raise EngineUnavailable(f"the FP32 reference ({res.reference.name}) could not be "
                                f"scored: {res.reference.why}")
    _budget(ok, res.reference, cfg.max_drop)
    image = frame(dataset, plan.size, _meta(res.reference))
    quick = [c for c in ok if c.status == "measured"]
    time_all(quick, image, threads=cfg.threads, warmup=1, rounds=max(3, cfg.rounds // 4))
    finalists = _finalists(quick, cfg.finalists)
    second = _phase2(cfg, first, finalists, source.fixed)
    res.candidates += second
    log(f"phase 2: {len(second)} graph I/O variants of {len(finalists)} finalist(s)")
    build(builder, second)
    ok2 = [c for c in second if c.artifact is not None]
    if ok2:
        score(ok2, plan, dataset, progress=progress, log=log)
        _budget(ok2, res.reference, cfg.max_drop)
    timed = [c for c in res.candidates if c.status in ("measured", "over budget")]
    log(f"timing: {len(timed)} candidates, {cfg.rounds} interleaved rounds after "
        f"{cfg.warmup} warm-up runs each")
    time_all(timed, image, threads=cfg.threads, warmup=cfg.warmup, rounds=cfg.rounds)
    res.winner = _select(res.candidates, cfg.max_drop)
    if res.winner is not None and (cfg.throughput_seconds > 0 or cfg.dynamic_batch):
        measure_throughput(res, builder, image, batches=cfg.batches,
                           seconds=cfg.throughput_seconds, threads=cfg.threads,
                           want_twin=cfg.dynamic_batch, log=log)
    if res.winner is not None and cfg.profile:
        try:
            res.profile = where_time_goes(res.winner, threads=cfg.threads)
        except EdgesegError as e:
            res.profile = None
            log(f"profile of the pick not measured: {e}")
    if res.profile:
        g = res.profile["groups"]
        log(f"profile of the pick ({res.winner.engine}): " + ", ".join(
            f"{k} {100 * v['share']:.0f}%" for k, v in g.items() if v["nodes"])
            + (f"; {res.profile['achieved_gops']:.0f} GOP/s of a measured INT8 matmul peak "
               f"of {res.profile['int8_peak_gops']:.0f}" if res.profile["achieved_gops"]
               else ""))
    res.out = write(res, cfg, log=log)
    return res


def where_time_goes(c: Candidate, *, threads: int | None) -> dict:
    """The pick in its engine's profiler, grouped; GOP/s of its model's MACs over the
    profiled compute time, against this host's INT8 matrix-multiply peak in that engine."""
    prof = profile_artifact(c.artifact, c.engine, hint=c.hint, threads=threads)
    prof.pop("rows")
    meta = read_meta(c.artifact, verify=False)
    if meta["model"]["name"] not in list_models():  # an imported graph: no MACs to count
        return {**prof, "gmacs": None, "achieved_gops": None,
                "int8_peak_gops": int8_matmul_peak(c.engine, threads=threads)}
    model = create_model(meta["model"]["name"], num_classes=meta["model"]["num_classes"],
                         **meta["model"].get("options", {}))
    macs = measure_complexity(model, tuple(meta["input"]["size"])).macs
    return {**prof, "gmacs": macs / 1e9,
            "achieved_gops": 2 * macs / (prof["total_ms"] / 1000) / 1e9,
            "int8_peak_gops": int8_matmul_peak(c.engine, threads=threads)}


def _meta(c: Candidate) -> dict:
    return read_meta(c.artifact, verify=False)


def _reference(first: list[Candidate], builder: Builder) -> Candidate:
    """The FP32 graph with logits and host preprocessing in ONNX Runtime (the source
    artifact's own I/O when it cannot be re-exported): what every drop is measured from."""
    fixed = builder.source.fixed
    io = ("logits", False) if fixed is None else graph_io(fixed)
    engine = next((e for e in CPU_ENGINES if is_available(e)), CPU_ENGINES[0])
    hint = (ENGINES[engine].precision_hints or (None,))[0]
    for c in first:
        if (c.artifact_kind, c.engine, c.hint, c.output, c.fused) == ("fp32", engine, hint, *io):
            return c
    ref = Candidate("fp32", *io, engine, hint, phase=0, status="reference",
                    why="the reference (not a candidate: its engine or I/O was left out)")
    ref.artifact = builder.fp32(*io)
    return ref


def _budget(cands: list[Candidate], ref: Candidate, max_drop: float) -> None:
    for c in cands:
        if c.miou is None:
            continue
        c.drop = 100 * (ref.miou - c.miou)
        if c.status != "pending":
            continue
        if c.drop <= max_drop + 1e-9:
            c.status = "measured"
        else:
            c.status = "over budget"
            c.why = (f"mIoU {c.miou:.4f} is {c.drop:.2f} points below the FP32 reference "
                     f"({ref.miou:.4f}); the budget is {max_drop}")


def _finalists(quick: list[Candidate], n: int) -> list[tuple]:
    """The n fastest phase-1 configurations within the budget."""
    out: list[tuple] = []
    for c in sorted(quick, key=lambda c: c.latency["p50"]):
        if c.config not in out and len(out) < n:
            out.append(c.config)
    for c in quick:
        if c.config not in out:
            c.why = "no graph I/O variants tried: not among the fastest in phase 1"
    return out


def _phase2(cfg: OptimizeConfig, first: list[Candidate], finalists: list[tuple],
            fixed: dict | None = None) -> list[Candidate]:
    done = first_variant(cfg, fixed)
    return [Candidate(kind, output, fused, engine, hint, phase=2)
            for kind, engine, hint in finalists for output, fused in variants(cfg)
            if (output, fused) != done]


def _select(cands: list[Candidate], max_drop: float) -> Candidate | None:
    """The fastest candidate within the budget; every other one gets why it lost."""
    ok = [c for c in cands if c.status == "measured"]
    if not ok:
        return None
    winner = min(ok, key=lambda c: c.latency["p50"])
    best = winner.latency["p50"]
    winner.why = f"fastest within the budget ({max_drop} mIoU points)"
    for c in ok:
        if c is not winner:
            slower = c.latency["p50"] / best - 1
            c.why = (f"slower: p50 {c.latency['p50']:.2f} ms vs {best:.2f} ms "
                     f"(+{100 * slower:.0f}%)" + (f"; {c.why}" if c.why else ""))
    return winner
