"""`edgeseg demo`: the part of the pipeline that exists so far, on built-in inputs.

Today: the model zoo's complexity table and a PyTorch eager FP32 latency of each model's
default variant on this machine (random weights, random input: latency does not depend on
them). Synthetic data, training, export, quantization and the cross-backend table join as
those stages land.
"""

from __future__ import annotations

import argparse

from edgeseg.cli.common import format_table, parse_size, positive_int, status


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the pipeline on built-in data (no downloads)",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--size", type=parse_size, default=(512, 1024), metavar="HxW")
    p.add_argument("--iters", type=positive_int, default=3, help="timed runs per model")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from edgeseg.bench.latency import measure
    from edgeseg.models import create_model, list_models
    from edgeseg.models.complexity import COUNTER
    from edgeseg.models.complexity import measure as count

    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = args.size
    status(f"edgeseg demo: PyTorch {torch.__version__} eager FP32 on CPU, "
           f"{torch.get_num_threads()} threads, input 1x3x{h}x{w}, "
           f"1 warm-up + {args.iters} timed runs per model")
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w)
    rows = []
    for name in list_models():
        model = create_model(name, num_classes=19).eval()
        c = count(model, (h, w))
        with torch.inference_mode():
            out = model(x)
            stats = measure(lambda m=model: m(x), warmup=1, iters=args.iters)
        status(f"  {name}: {stats.median_ms:.0f} ms median")
        rows.append([name, f"{c.params / 1e6:.2f}", f"{c.gmacs:.1f}", "x".join(map(str, out.shape)),
                     f"{stats.median_ms:.1f}", f"{stats.min_ms:.1f}", f"{stats.fps:.2f}"])
    print(format_table(["model", "params(M)", "GMACs", "output", "median ms", "min ms", "FPS"],
                       rows))
    print(f"\nMACs by {COUNTER}. Latency: wall clock of model(x) under "
          "torch.inference_mode, batch 1.")
    return 0
