"""`edgeseg optimize`: the fastest artifact that meets an accuracy budget here, by measurement."""

from __future__ import annotations

import argparse

from edgeseg.cli.common import (
    add_engines,
    add_force,
    add_json,
    add_progress,
    add_threads,
    parse_size,
    positive_int,
    status,
    write_json,
)
from edgeseg.core.capabilities import CPU_ENGINES, TARGETS
from edgeseg.pipeline.optimize import OptimizeConfig, run
from edgeseg.pipeline.optimize.candidates import OUTPUTS, PRECISIONS
from edgeseg.pipeline.optimize.write import report_dict


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize", help="pick the fastest artifact within an mIoU budget on this machine",
        description="Measure the ways to deploy a model here (precision x engine x output x "
        "fused preprocessing; OpenVINO's bf16/f16 where the CPU has them; INT8 for each "
        "target) for latency (a uint8 frame to its full-resolution label map, interleaved "
        "rounds) and mIoU on --val against the FP32 graph, and write the fastest one within "
        "--max-drop, with a report: every candidate, the Pareto front as a plot, and why "
        "each loser lost. Artifacts and scores are cached in --work.")
    p.add_argument("source", help="an edgeseg checkpoint, a registry model name (random "
                   "weights), or an FP32 artifact directory")
    p.add_argument("--val", required=True, metavar="DATASET",
                   help="dataset root: its val split scores, its train split calibrates INT8")
    p.add_argument("--max-drop", type=float, default=0.5, metavar="POINTS",
                   help="mIoU points a candidate may lose against FP32 (default 0.5)")
    p.add_argument("--out", required=True, help="artifact directory to write the pick to")
    p.add_argument("--size", type=parse_size, default=None, metavar="HxW",
                   help="deployment size (default: the artifact's, the checkpoint's, 512x1024)")
    add_engines(p, list(CPU_ENGINES), "engines to consider")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                   help="precisions to consider (bf16/fp16: OpenVINO's inference precision "
                   "where the CPU has it)")
    p.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS),
                   help="INT8 targets to quantize for (each graph runs in every engine)")
    p.add_argument("--outputs", nargs="+", choices=OUTPUTS, default=list(OUTPUTS),
                   help="graph outputs to consider (logits: argmax on the host)")
    p.add_argument("--no-fused", action="store_true",
                   help="do not consider graphs that take uint8 frames")
    p.add_argument("--finalists", type=positive_int, default=2,
                   help="phase-1 configurations whose graph I/O variants are tried (default 2)")
    p.add_argument("--val-limit", type=positive_int, default=None)
    p.add_argument("--calib-images", type=positive_int, default=32)
    p.add_argument("--rounds", type=positive_int, default=20,
                   help="interleaved timed rounds (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--throughput-seconds", type=float, default=5.0, metavar="S",
                   help="time the pick's frames/s with 1 and 2 streams for S seconds each "
                   "(0: skip; default 5)")
    p.add_argument("--batches", type=positive_int, nargs="+", default=[1, 2, 4, 8],
                   metavar="N", help="batch sizes to time the pick's throughput at, on its "
                   "dynamic-batch twin (the same configuration exported with --dynamic batch; "
                   "default 1 2 4 8); the best one is timed with 2 streams too")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="write the pick's dynamic-batch twin (for batched runs, "
                   "Segmenter.predict_batch) instead of the batch-1 graph it timed")
    p.add_argument("--no-profile", action="store_true",
                   help="skip the pick's per-operator profile and INT8 peak measurement")
    p.add_argument("--work", default=None,
                   help="cache of artifacts and scores (default $EDGESEG_CACHE/optimize, "
                   "~/.cache/edgeseg/optimize)")
    add_threads(p)
    add_force(p, "--out")
    add_progress(p)
    add_json(p, "the report")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = OptimizeConfig(
        source=args.source, out=args.out, val=args.val, max_drop=args.max_drop, size=args.size,
        engines=tuple(args.backends), precisions=tuple(args.precisions),
        targets=tuple(args.targets), outputs=tuple(args.outputs),
        fused=(False,) if args.no_fused else (False, True), finalists=args.finalists,
        val_limit=args.val_limit, calib_images=args.calib_images, rounds=args.rounds,
        warmup=args.warmup, threads=args.threads, work=args.work, force=args.force,
        throughput_seconds=args.throughput_seconds, profile=not args.no_profile,
        batches=tuple(args.batches), dynamic_batch=args.dynamic_batch)
    res = run(cfg, log=status, progress=not args.no_progress)
    if args.json:
        write_json(args.json, report_dict(res, cfg))
    return 0
