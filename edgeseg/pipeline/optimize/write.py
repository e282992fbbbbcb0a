"""optimize's outputs: the picked artifact (meta.json's `runtime` says which engine and
inference precision to run it with, and what was measured) and the report beside it in
<out>/optimize/: report.json, report.md and pareto.png."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeseg.bench.sysinfo import isa
from edgeseg.core.artifact import read_meta, write_meta
from edgeseg.core.errors import GoalMissed
from edgeseg.data.io import atomic_output_dir
from edgeseg.pipeline.optimize.candidates import Candidate, OptimizeConfig, Result

Log = Callable[[str], None]
def num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def pareto(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other one beats on both latency (p50) and mIoU."""
    timed = [c for c in cands if c.latency and c.miou is not None]
    return [c for c in timed
            if not any(d is not c and d.latency["p50"] <= c.latency["p50"]
                       and d.miou >= c.miou and (d.latency["p50"] < c.latency["p50"]
                                                 or d.miou > c.miou) for d in timed)]


def report_dict(res: Result, cfg: OptimizeConfig) -> dict[str, Any]:
    front = {c.name for c in pareto(res.candidates)}
    order = sorted(res.candidates, key=lambda c: (c.latency is None,
                                                  (c.latency or {}).get("p50", 0)))
    return {
        "schema": "edgeseg-optimize", "schema_version": 1,
        "source": cfg.source, "val": str(Path(cfg.val).resolve()), "val_limit": cfg.val_limit,
        "max_drop_points": cfg.max_drop, "rounds": cfg.rounds, "warmup": cfg.warmup,
        "threads": cfg.threads, "isa": isa(res.system["cpu"]["flags"]),
        "system": res.system,
        "reference": res.reference.row() if res.reference else None,
        "winner": res.winner.name if res.winner else None,
        "throughput": res.throughput, "batching": res.batching, "profile": res.profile,
        "candidates": [{**c.row(), "pareto": c.name in front} for c in order],
    }


def markdown(rep: dict[str, Any]) -> str:
    ref = rep["reference"]
    lines = [
        f"# edgeseg optimize: {rep['source']}", "",
        f"Host: {rep['system']['cpu'].get('model')} ({rep['isa']}), "
        f"{rep['threads'] or 'default'} threads. Budget: {rep['max_drop_points']} mIoU points "
        f"below the FP32 graph in {ref['engine']} (mIoU {ref['miou']:.4f} on the val split of "
        f"`{rep['val']}`).",
        f"Latency: a uint8 frame at the deployment size to its full-resolution label map "
        f"(runtime.Segmenter), {rep['rounds']} interleaved rounds after {rep['warmup']} "
        "warm-up runs, all candidates in one run.", "",
        f"**Picked: {rep['winner'] or 'nothing (no candidate met the budget)'}**", "",
        *throughput_lines(rep), ""]
    lines += profile_lines(rep.get("profile"))
    lines += ["## Every candidate", "",
              "| candidate | precision | output | fused | p50 ms | p99 ms | mIoU | drop | "
              "Pareto | status | why |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for c in rep["candidates"]:
        lat = c["latency_ms"] or {}
        lines.append(
            f"| {c['name']} | {c['precision']} | {c['output']} | "
            f"{'yes' if c['fused_preprocess'] else 'no'} | {num(lat.get('p50'), '.2f')} | "
            f"{num(lat.get('p99'), '.2f')} | {num(c['miou'], '.4f')} | "
            f"{num(c['drop_points'], '+.2f')} | {'*' if c['pareto'] else ''} | {c['status']} | "
            f"{c['why']} |")
    return "\n".join(lines) + "\n"


def throughput_lines(rep: dict[str, Any]) -> list[str]:
    rows = rep.get("throughput") or []
    lines = [f"- {t['artifact']}, batch {t['batch']}, {t['streams']} caller(s): "
             + (f"not measured ({t['failed']})" if "failed" in t else
                f"{t['fps']:.1f} frames/s ({t['layout']}; {t['frames']} frames in "
                f"{t['seconds']} s)") for t in rows]
    b = rep.get("batching") or {}
    if "failed" in b:
        lines.append(f"- no batch above 1: {b['failed']}")
    elif "artifact" in b:
        agree = (f", which gives the pick's label on {100 * b['agreement']:.2f}% of the timed "
                 "frame's pixels" if "agreement" in b else "")
        best = f"; best batch here: {b['best_batch']}" if "best_batch" in b else ""
        lines.append(f"- batches run on the dynamic-batch twin `{b['artifact']}` (the same "
                     f"configuration exported with --dynamic batch){agree}{best}")
    return lines


def profile_lines(prof: dict[str, Any] | None) -> list[str]:
    if not prof:
        return []
    hint = f" ({prof['hint']})" if prof.get("hint") else ""
    rate = (f"{prof['gmacs']:.2f} GMACs -> {prof['achieved_gops']:.0f} GOP/s, "
            f"{100 * prof['achieved_gops'] / prof['int8_peak_gops']:.0f}% of"
            if prof.get("achieved_gops") else "GOP/s not computed (a graph without a registry "
            "model to count MACs of); for reference,")
    lines = ["## Where the pick's time goes", "",
             f"{prof['engine']}{hint}'s own profiler, {prof['total_ms']:.2f} ms of node time "
             f"per frame; {rate} this host's INT8 matrix-multiply peak in that engine "
             f"({prof['int8_peak_gops']:.0f} GOP/s, measured).", "",
             "| group | ms | share | nodes |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {g} | {v['ms']:.2f} | {100 * v['share']:.1f}% | {v['nodes']} |"
              for g, v in prof["groups"].items() if v["nodes"]]
    qdq = prof.get("qdq_nodes") or []
    if prof.get("precision") == "int8" and not qdq:
        lines += ["", "No quantize or dequantize ran as a node of its own: the engine folded "
                  "every one into an INT8 convolution or an element-wise kernel."]
    elif qdq:
        lines += ["", f"Quantize/dequantize nodes the engine ran on their own, not folded into "
                  f"a neighbouring kernel ({len(qdq)}, {sum(q['ms'] for q in qdq):.2f} ms), "
                  "slowest first:", ""]
        lines += [f"- `{q['node']}` ({q['op']}, {q['exec']}, {q['ms']:.2f} ms)"
                  for q in qdq[:8]]
        if len(qdq) > 8:
            lines.append(f"- ... {len(qdq) - 8} more in report.json")
    if prof["float_convs"]:
        lines += ["", f"Float convolutions ({len(prof['float_convs'])}), slowest first:", ""]
        lines += [f"- `{c['node']}` ({c['exec']}, {c['ms']:.2f} ms): {c.get('why', '')}"
                  for c in prof["float_convs"][:12]]
        if len(prof["float_convs"]) > 12:
            lines.append(f"- ... {len(prof['float_convs']) - 12} more in report.json")
    return lines + [""]


def plot(rep: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in rep["candidates"] if c["latency_ms"] and c["miou"] is not None]
    fig, ax = plt.subplots(figsize=(8, 5))
    for status, style in (("measured", "o"), ("over budget", "x")):
        pts = [c for c in rows if c["status"] == status]
        ax.scatter([c["latency_ms"]["p50"] for c in pts], [c["miou"] for c in pts],
                   marker=style, label=status, alpha=0.7)
    front = sorted((c for c in rows if c["pareto"]), key=lambda c: c["latency_ms"]["p50"])
    ax.plot([c["latency_ms"]["p50"] for c in front], [c["miou"] for c in front], "k--",
            lw=1, label="Pareto front")
    ref = rep["reference"]["miou"]
    ax.axhline(ref - rep["max_drop_points"] / 100, color="r", lw=0.8,
               label=f"budget (-{rep['max_drop_points']} points)")
    for c in rows:
        if c["name"] == rep["winner"]:
            ax.scatter([c["latency_ms"]["p50"]], [c["miou"]], marker="*", s=250, c="gold",
                       edgecolors="k", zorder=5, label=f"picked: {c['name']}")
    ax.set_xlabel("p50 latency, frame to label map (ms)")
    ax.set_ylabel("mIoU (val)")
    ax.set_title(f"edgeseg optimize ({rep['isa']})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(res: Result, cfg: OptimizeConfig, *, log: Log = print) -> Path:
    """The picked artifact at cfg.out with its report; GoalMissed when nothing met the
    budget (the report is still written, into the work directory)."""
    rep = report_dict(res, cfg)
    if res.winner is None:
        where = Path(res.workdir) / "report"
        _report(rep, where)
        measured = [c for c in res.candidates if c.miou is not None]
        why = (f"no candidate met the budget of {cfg.max_drop} mIoU points" if measured else
               "no candidate could be measured here (see each one's why)")
        raise GoalMissed(f"{why}; see {where / 'report.md'}")
    w = res.winner
    src = w.artifact
    if cfg.dynamic_batch:
        if "artifact" not in (res.batching or {}):
            why = (res.batching or {}).get("failed", "it was not made")
            raise GoalMissed(f"--dynamic-batch: the pick {w.name} has no dynamic-batch twin "
                             f"({why}); nothing written. Rerun without --dynamic-batch for "
                             "the batch-1 pick")
        src = Path(res.batching["artifact"])
    with atomic_output_dir(Path(cfg.out), overwrite=cfg.force, flag="--force") as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        meta = read_meta(tmp)
        meta["runtime"] = {
            "engine": w.engine, "inference_precision": w.hint, "chosen_by": "edgeseg optimize",
            "latency_ms": {k: round(v, 3) for k, v in w.latency.items()},
            "miou": w.miou, "reference_miou": res.reference.miou,
            "max_drop_points": cfg.max_drop, "isa": rep["isa"],
            "throughput": res.throughput, "batching": res.batching,
            # latency_ms was timed on the batch-1 graph; the twin's own batch-1 rate is in
            # throughput (artifact "dynamic-batch twin")
            "dynamic_batch_twin": bool(cfg.dynamic_batch),
            "threads": cfg.threads, "report": "optimize/report.json"}
        write_meta(tmp, meta)
        _report(rep, tmp / "optimize")
    side = "below" if w.drop > 0 else "above" if w.drop < 0 else "vs"
    log(f"picked {w.name}: p50 {w.latency['p50']:.2f} ms, mIoU {w.miou:.4f} "
        f"({abs(w.drop):.2f} points {side} FP32) -> {cfg.out} "
        f"(report: {cfg.out}/optimize/report.md)")
    return Path(cfg.out)


def _report(rep: dict[str, Any], where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    (where / "report.md").write_text(markdown(rep))
    plot(rep, where / "pareto.png")
