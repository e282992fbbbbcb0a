"""`edgeseg bench`: latency per phase (and optionally mIoU) of one artifact in one backend,
written as a versioned result file."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg.bench import results
from edgeseg.bench.run import BenchConfig, bench
from edgeseg.bench.sysinfo import device_name
from edgeseg.cli.common import (
    add_device,
    add_force,
    add_json,
    add_progress,
    add_threads,
    engine_name,
    format_table,
    parse_size,
    positive_int,
    status,
    write_json,
)
from edgeseg.core.capabilities import ENGINES
from edgeseg.core.errors import UsageError
from edgeseg.pipeline import matrix


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="latency per phase of an artifact in a backend (result file)",
        description="Warm-up, then timed runs of the whole frame path (preprocess, compute, "
        "postprocess; copy in/out on GPUs): min/mean/median/p90/p99/max/std and FPS per "
        "phase and end to end, peak memory, power where a sensor exists, the system profile. "
        "Writes a result file that `edgeseg report` merges across devices.")
    p.add_argument("artifact", nargs="?",
                   help="artifact directory (from export, quantize or import)")
    p.add_argument("--matrix", type=Path, default=None, metavar="FILE.toml",
                   help="run a benchmark matrix instead (models x precisions x backends x "
                   "sizes, e.g. benchmarks/matrix.toml); resumable: done cells are skipped")
    add_force(p, "result files (--matrix: cells already done are run again)")
    p.add_argument("--backend", default="onnxruntime", type=engine_name,
                   help="; ".join(f"{e.name} ({'/'.join(e.aliases)}): {e.summary}"
                                  for e in ENGINES.values()))
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--iters", type=int, default=None,
                      help="timed runs (default 50 when --seconds is not given)")
    runs.add_argument("--seconds", type=float, default=None, help="time runs for this long")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--batch", type=positive_int, default=1)
    add_threads(p)
    p.add_argument("--image", default=None,
                   help="a real frame for the end-to-end path (default: noise at the input "
                   "size); its size sets the resize work")
    p.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                   help="a dynamic-size artifact (export --dynamic size): the size to run at, "
                   "within its size range (default its nominal size; an --image runs at its own)")
    p.add_argument("--val", default=None, help="also score mIoU on this dataset's val split")
    p.add_argument("--val-limit", type=positive_int, default=None)
    add_device(p)
    p.add_argument("--compile", action="store_true", help="torch backend: torch.compile it")
    p.add_argument("--reference-int8", action="store_true",
                   help="run Q/DQ graphs as float fake-quantization, not INT8 kernels")
    out = p.add_mutually_exclusive_group()
    add_json(out, "the result file")
    out.add_argument("--results", type=Path, default=None,
                     help="write the result to RESULTS/<device>/<model-precision-backend-...>"
                     ".json (e.g. benchmarks/results)")
    add_progress(p)
    p.set_defaults(func=run)


def summary_table(result: dict) -> str:
    rows = []
    for phase, s in [*result["phases_ms"].items(), ("end to end", result["end_to_end_ms"])]:
        rows.append([phase, f"{s['median_ms']:.2f}", f"{s['mean_ms']:.2f}", f"{s['p90_ms']:.2f}",
                     f"{s['p99_ms']:.2f}", f"{s['min_ms']:.2f}", f"{s['max_ms']:.2f}",
                     f"{s['std_ms']:.2f}"])
    return format_table(["phase", "median ms", "mean", "p90", "p99", "min", "max", "std"], rows)


def run_matrix(args: argparse.Namespace) -> int:

    cfg = matrix.load(args.matrix)
    s = matrix.run(cfg, force=args.force, progress=not args.no_progress, log=status)
    status(f"matrix: {len(s['done'])} cells run, {len(s['skipped'])} already done, "
           f"{len(s['failed'])} failed; results in {s['dir']}")
    for label, message in s["failed"]:
        status(f"  failed: {label}: {message}")
    if s["done"] or s["skipped"]:
        status(f"next: edgeseg report {s['dir']} --out <dir>")
    return 1 if s["failed"] else 0


def run(args: argparse.Namespace) -> int:

    if args.matrix:
        if args.artifact:
            raise UsageError("give an artifact or --matrix, not both")
        return run_matrix(args)
    if not args.artifact:
        raise UsageError("give an artifact directory to bench (or --matrix FILE.toml)")
    cfg = BenchConfig(artifact=args.artifact, backend=args.backend, iters=args.iters,
                      seconds=args.seconds, warmup=args.warmup, batch=args.batch,
                      threads=args.threads, image=args.image, val=args.val,
                      val_limit=args.val_limit, device=args.device, compile=args.compile,
                      int8_kernels=not args.reference_int8, size=args.size)
    r = bench(cfg, log=status, progress=not args.no_progress)
    path = None
    if args.json == "-":
        write_json("-", r)
        return 0
    if args.json:
        path = results.write(r, Path(args.json), overwrite=args.force)
    elif args.results:
        path = results.write(r, args.results / device_name(r["system"])
                             / results.default_name(r), overwrite=args.force)
    a, lat = r["artifact"], r["latency_ms"]
    print(f"{a['model']} {a['precision']} in {r['backend']['name']} "
          f"(batch {r['config']['batch']}, {r['config']['iters']} runs): "
          f"compute median {lat['median_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
          f"(p99/p50 {lat['p99_ms'] / lat['median_ms']:.2f}), {r['fps']:.1f} FPS")
    print(summary_table(r))
    mem = r["memory"]
    print(f"peak host memory {mem['peak_host_mib']:.0f} MiB" + (
        f", device {mem['device_peak_mib']:.0f} MiB" if mem["device_peak_mib"] else ""))
    if r["power"]:
        print(f"power {r['power']['mean_w']:.2f} W ({r['power']['source']}), "
              f"{r['power']['energy_per_frame_mj']:.1f} mJ per frame")
    if r["accuracy"]:
        print(f"mIoU {r['accuracy']['miou']:.4f} on {r['accuracy']['images']} val images")
    if path:
        status(f"result: {path}")
    return 0
