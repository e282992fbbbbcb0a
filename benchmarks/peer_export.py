"""What edgeseg's export choices buy, side by side in one run: the same trained BiSeNet
exported (a) the way a public implementation's export script does it, a plain
`torch.onnx.export` of the eager model (no BatchNorm folding, no simplification, logits out,
argmax on the host), (b) edgeseg FP32 (folded, simplified, logits), (c) edgeseg FP32 with the
argmax in the graph (labels out), (d) edgeseg INT8 Q/DQ (onnxruntime target); each in ONNX
Runtime and OpenVINO. Writes benchmarks/peer_export.{json,md}.

    python benchmarks/peer_export.py [--models bisenetv1 bisenetv2] [--size 512x1024]

Timed per round for every configuration (interleaved, so load drifts equally): the engine
call, then the host work to a label map (argmax over classes for logits, none for labels).
Uses the trained baseline checkpoints (`edgeseg baseline`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeseg.backends import get_runner
from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.bench.latency import summarize
from edgeseg.bench.sysinfo import system_profile
from edgeseg.cli.common import parse_size


def plain_export(ckpt: Path, size, path: Path) -> None:
    """What a user of the eager model writes: torch.onnx.export with its defaults."""
    import torch

    from edgeseg.checkpoint import model_from_checkpoint

    model, _, _ = model_from_checkpoint(ckpt)
    model.eval()
    torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(path), external_data=False)


def graph_facts(path: Path) -> dict:
    import onnx

    m = onnx.load(str(path))
    return {"nodes": len(m.graph.node), "mib": round(path.stat().st_size / 2**20, 2)}


def make_configs(model: str, size, work: Path, data: str, threads: int, log) -> dict:
    from edgeseg.data.calibration import MIN_IMAGES
    from edgeseg.pipeline import Plan, calibration_stage, export_stage, quantize_stage

    ckpt = DEFAULT_CACHE / "baselines" / f"{model}-128x256.pt"
    if not ckpt.is_file():
        raise SystemExit(f"no trained checkpoint {ckpt}: run `edgeseg baseline` first")
    plain = work / f"{model}-plain.onnx"
    plain_export(ckpt, size, plain)
    plan = Plan(work, checkpoint=ckpt, size=size, data=data, calib_images=MIN_IMAGES,
                threads=threads)
    arts = {}
    for output in ("logits", "labels"):
        arts[output] = work / f"{model}-{output}"
        export_stage(plan, "fp32", arts[output], log=log, output=output, formats=("onnx",),
                     data=None, parity_inputs=1, force=False)
    calib = calibration_stage(plan, work / "calib", log=log)
    arts["int8"] = work / f"{model}-int8"
    # Speed comparison only: benchmarks/int8_accuracy.md judges accuracy.
    quantize_stage(plan, arts["logits"], calib.root, "onnxruntime", arts["int8"], log=log,
                   val=None, force=False, min_fp32_agreement=0.0)
    return {"plain torch.onnx.export (logits, host argmax)": (plain, "logits"),
            "edgeseg fp32 (logits, host argmax)": (arts["logits"] / "model.onnx", "logits"),
            "edgeseg fp32 (in-graph argmax)": (arts["labels"] / "model.onnx", "labels"),
            "edgeseg int8 onnxruntime target (logits, host argmax)":
                (arts["int8"] / "model.onnx", "logits")}


def run(models, size, data, rounds, warmup, threads, out_dir: Path) -> dict:
    rows = []
    for model in models:
        with tempfile.TemporaryDirectory(prefix="edgeseg-peer-") as tmp:
            configs = make_configs(model, size, Path(tmp), data, threads,
                                   log=lambda s: print(s, flush=True))
            facts = {k: graph_facts(p) for k, (p, _) in configs.items()}
            x = np.random.default_rng(0).normal(size=(1, 3, *size)).astype(np.float32)
            runners = {}
            for label, (path, kind) in configs.items():
                for backend in ("onnxruntime", "openvino"):
                    runners[(label, backend)] = (get_runner(backend, path, threads=threads),
                                                 kind)
            for r, _ in runners.values():
                r.__enter__()
            compute = {k: [] for k in runners}
            total = {k: [] for k in runners}
            try:
                name = {k: r.input_names[0] for k, (r, _) in runners.items()}
                for k, (r, _) in runners.items():
                    for _ in range(warmup):
                        r.infer({name[k]: x})
                for _ in range(rounds):
                    for k, (r, kind) in runners.items():
                        t0 = time.perf_counter()
                        y = next(iter(r.infer({name[k]: x}).values()))
                        t1 = time.perf_counter()
                        labels = y[0].argmax(0).astype(np.uint8) if kind == "logits" else y[0]
                        t2 = time.perf_counter()
                        assert labels.shape == tuple(size)
                        compute[k].append((t1 - t0) * 1000)
                        total[k].append((t2 - t0) * 1000)
            finally:
                for r, _ in runners.values():
                    r.__exit__(None, None, None)
            base = {b: summarize(total[(next(iter(configs)), b)]).median_ms
                    for b in ("onnxruntime", "openvino")}
            for (label, backend) in runners:
                c, t = summarize(compute[(label, backend)]), summarize(total[(label, backend)])
                rows.append({"model": model, "export": label, "backend": backend,
                             **facts[label], "compute_p50_ms": round(c.median_ms, 2),
                             "to_labels_p50_ms": round(t.median_ms, 2),
                             "to_labels_p99_ms": round(t.p99_ms, 2),
                             "speedup_vs_plain": round(base[backend] / t.median_ms, 3)})
    prof = system_profile(threads=threads)
    result = {"size": f"{size[0]}x{size[1]}", "rounds": rounds, "warmup": warmup,
              "threads": threads, "cpu": prof["cpu"]["model"], "cpu_flags": prof["cpu"]["flags"],
              "versions": prof["versions"], "git": prof["git"],
              "date": time.strftime("%Y-%m-%d", time.gmtime()), "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "peer_export.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "peer_export.md").write_text(markdown(result))
    print(markdown(result))
    return result


def markdown(r: dict) -> str:
    lines = [
        "# What edgeseg's export buys: a plain torch.onnx.export vs edgeseg's artifacts",
        "",
        f"Generated by `python benchmarks/peer_export.py` (do not edit), {r['date']}: trained "
        f"checkpoints at {r['size']}, batch 1, {r['threads']} threads, on {r['cpu']} (flags: "
        f"{' '.join(r['cpu_flags'])}), onnxruntime {r['versions'].get('onnxruntime')}, "
        f"openvino {r['versions'].get('openvino')}, torch {r['versions'].get('torch')}. "
        f"{r['warmup']} warm-up runs each, then {r['rounds']} interleaved rounds. *to labels*: "
        "the engine call plus the host argmax to a label map (none when the graph outputs "
        "labels); speed-up is on that, against the plain export in the same engine.",
        "",
        "| model | export | engine | ONNX nodes | MiB | compute p50 ms | to labels p50 ms | "
        "p99 ms | speed-up |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for x in r["rows"]:
        lines.append(f"| {x['model']} | {x['export']} | {x['backend']} | {x['nodes']} | "
                     f"{x['mib']} | {x['compute_p50_ms']:.1f} | {x['to_labels_p50_ms']:.1f} | "
                     f"{x['to_labels_p99_ms']:.1f} | {x['speedup_vs_plain']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["bisenetv1", "bisenetv2"])
    p.add_argument("--size", type=parse_size, default=(512, 1024))
    p.add_argument("--data", default=str(DEFAULT_CACHE / "synth-128x256-n1200-seed0"))
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    a = p.parse_args()
    run(a.models, a.size, a.data, a.rounds, a.warmup, a.threads, a.out)


if __name__ == "__main__":
    main()
