"""`edgeseg demo`: the pipeline end to end on built-in data (edgeseg.demo), and the model
zoo's size and PyTorch eager latency on this machine (`--zoo`, or alone with `--skip-train`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg import demo
from edgeseg.baseline import DEFAULT_CACHE
from edgeseg.bench.latency import measure
from edgeseg.cli.common import format_table, parse_size, positive_int, status
from edgeseg.models import create_model, list_models
from edgeseg.models.complexity import COUNTER
from edgeseg.models.complexity import measure as count


def add_parser(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("demo", help="run the pipeline on built-in data (no downloads)",
                       description="Synthetic data, a short training run and evaluation, FP32/"
                       "FP16/INT8 artifacts with parity and accuracy checks, benchmarks in "
                       "ONNX Runtime and OpenVINO against PyTorch eager, the report and an "
                       "overlay image; --zoo adds the model zoo's size and eager latency.")
    p.add_argument("--workdir", type=Path, default=DEFAULT_CACHE / "demo",
                   help="where data, checkpoint, artifacts, results and report go "
                   "(default: the edgeseg cache)")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget (default 2)")
    p.add_argument("--train-size", type=parse_size, default=(128, 256), metavar="HxW",
                   help="training, artifact and benchmark size (default 128x256)")
    p.add_argument("--scenes", type=positive_int, default=300,
                   help="synthetic scenes to generate (default 300)")
    p.add_argument("--iters", type=positive_int, default=20,
                   help="timed runs per benchmark configuration / zoo model (default 20)")
    p.add_argument("--val-limit", type=positive_int, default=50,
                   help="val images scored per configuration (default 50)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op threads (default: each engine's choice)")
    p.add_argument("--zoo", action="store_true",
                   help="also print the model zoo table (params, MACs, eager latency at --size)")
    p.add_argument("--size", type=parse_size, default=(512, 1024), metavar="HxW",
                   help="input size for the zoo latency table (default 512x1024)")
    p.add_argument("--skip-train", action="store_true", help="only the model zoo table")
    p.set_defaults(func=run)


def zoo_latency(args: argparse.Namespace) -> None:
    import torch


    h, w = args.size
    status(f"model zoo: PyTorch {torch.__version__} eager FP32 on CPU, "
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
        rows.append([name, f"{c.params / 1e6:.2f}", f"{c.gmacs:.1f}",
                     "x".join(map(str, out.shape)), f"{stats.median_ms:.1f}",
                     f"{stats.min_ms:.1f}", f"{stats.fps:.2f}"])
    print(format_table(["model", "params(M)", "GMACs", "output", "median ms", "min ms", "FPS"],
                       rows))
    print(f"\nMACs by {COUNTER}. Latency: wall clock of model(x) under "
          "torch.inference_mode, batch 1.")


def run(args: argparse.Namespace) -> int:
    import torch


    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_train:
        demo.run(demo.DemoConfig(workdir=args.workdir, minutes=args.minutes,
                                 size=args.train_size, scenes=args.scenes, iters=args.iters,
                                 val_limit=args.val_limit, threads=args.threads),
                 say=status, show=print)
    if args.zoo or args.skip_train:
        zoo_latency(args)
    return 0
