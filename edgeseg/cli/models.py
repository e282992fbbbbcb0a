"""`edgeseg models`: every registered model with its parameters and MACs/FLOPs."""

from __future__ import annotations

import argparse

from edgeseg.bench.latency import measure
from edgeseg.cli.common import (
    add_json,
    add_threads,
    format_table,
    parse_size,
    positive_int,
    write_json,
)
from edgeseg.convert import published
from edgeseg.core.errors import UsageError
from edgeseg.core.progress import progress_bar
from edgeseg.models import create_model, list_models
from edgeseg.models.catalog import describe
from edgeseg.models.complexity import COUNTER


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models with parameters and GFLOPs",
                       description="List every registered model variant with its parameters "
                       "(deploy graph, auxiliary heads excluded) and its compute at --size, "
                       "next to published figures.")
    p.add_argument("--size", type=parse_size, default=(512, 1024), metavar="HxW",
                   help="input size for the compute count (default 512x1024)")
    p.add_argument("--num-classes", type=positive_int, default=19,
                   help="classifier width (default 19, Cityscapes)")
    fmt = p.add_mutually_exclusive_group()
    add_json(fmt, "the table (no text table then)")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--pretrained", action="store_true",
                   help="list the published checkpoints `edgeseg convert` takes, with the "
                   "mIoU each source reports")
    p.add_argument("--latency", action="store_true",
                   help="also time each variant's eager PyTorch FP32 forward on this CPU at "
                   "--size (median of 3 runs after a warm-up; SegNet takes seconds a run)")
    add_threads(p)
    p.add_argument("names", nargs="*", metavar="MODEL", help="only these models")
    p.set_defaults(func=run)


def run_pretrained(args: argparse.Namespace) -> int:
    rows = [r for r in published() if not args.names or r["model"] in args.names]
    if args.json:
        write_json(args.json, rows)
        return 0
    print(format_table(["source", "model", "variant", "classes", "dataset", "input", "mIoU",
                        "file"],
                       [[r["source"], r["model"], r["variant"], r["classes"], r["dataset"],
                         r["input"], f"{r['miou']:.4f}", r["file"]] for r in rows],
                       markdown=args.markdown))
    print("\nmIoU: the figure each source publishes for its checkpoint (single scale), not "
          "measured by edgeseg; `edgeseg convert --from SOURCE FILE` takes these files.")
    return 0


def _pct(ref: dict | None) -> str:
    if not ref:
        return ""
    mark = "" if ref["comparable"] else "*"
    pct = round(ref["delta"] * 100)
    return f"{pct:+d}%{mark}" if pct else f"0%{mark}"


def eager_latency(name: str, opts: dict, size: tuple[int, int], num_classes: int,
                  *, threads: int | None = None, iters: int = 3) -> dict:
    """The variant's eager PyTorch FP32 forward (eval mode, random weights: the time does
    not depend on their values) on this CPU: median of `iters` runs after one warm-up."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    model = create_model(name, num_classes=num_classes, **opts).eval()
    x = torch.randn(1, 3, *size)
    with torch.inference_mode():
        stats = measure(lambda: model(x), warmup=1, iters=iters)
    return {"median_ms": round(stats.median_ms, 1), "iters": iters,
            "threads": torch.get_num_threads()}


def torch_threads(rows: list[dict]) -> int:
    return rows[0]["eager_latency"]["threads"] if rows else 0


def _ref_gmacs(ref: dict | None, size: tuple[int, int]) -> str:
    if not ref:
        return ""
    at = ref["published_size"]
    if ref["value"] == ref["published"] and at and tuple(at) != tuple(size):
        return f"{ref['value']:.1f}@{at[0]}x{at[1]}"
    return f"{ref['value']:.1f}"


def run(args: argparse.Namespace) -> int:
    if args.pretrained:
        return run_pretrained(args)

    known = list_models()
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    rows = describe(args.size, args.num_classes, args.names or None)
    h, w = args.size
    if args.latency:
        for r in progress_bar(rows, desc="eager latency", unit="model"):
            r["eager_latency"] = eager_latency(r["name"], r["options"], args.size,
                                               args.num_classes, threads=args.threads)
    if args.json:
        write_json(args.json, {"size": [h, w], "num_classes": args.num_classes,
                               "counter": COUNTER, "models": rows})
        return 0
    table = []
    for r in rows:
        ref = r["reference"]
        table.append([
            r["name"], r["variant"], f"{r['params_m']:.2f}", f"{r['gmacs']:.1f}",
            f"{r['gflops']:.1f}",
            f"{ref['params_m']['value']:.2f}" if ref["params_m"] else "", _pct(ref["params_m"]),
            _ref_gmacs(ref["gmacs"], (h, w)), _pct(ref["gmacs"]),
            *([f"{r['eager_latency']['median_ms']:.1f}"] if args.latency else []),
        ])
    print(format_table(
        ["model", "variant", "params(M)", f"GMACs@{h}x{w}", "GFLOPs", "ref params", "diff",
         "ref GMACs", "diff", *([f"eager ms ({torch_threads(rows)} thr)"] if args.latency
                                else [])], table, markdown=args.markdown))
    print(f"\nParams: the deploy graph (auxiliary heads excluded), {args.num_classes} classes. "
          f"Compute counted by {COUNTER}; GFLOPs = 2 x GMACs. "
          "Reference MACs are published figures rescaled by pixel count to this size, or "
          "(@HxW: attention, not linear in the pixels) compared with ours at their own size; "
          "* = a different network on purpose (see `edgeseg models --json` notes and the README).")
    return 0
