"""`edgeseg demo`: the pipeline that exists so far, end to end, on built-in data.

1. synthetic street scenes (generated once into the work directory),
2. a BiSeNet V1 trained from scratch for a short wall-clock budget,
3. its evaluation on the synthetic val split (per-class IoU),
4. the model zoo: parameters, MACs and PyTorch eager FP32 latency of each default variant
   on this machine (random weights and input: latency does not depend on them).
Export, quantization and the cross-backend table join as those stages land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg.cli.common import format_table, parse_size, positive_int, status


def add_parser(sub: argparse._SubParsersAction) -> None:
    from edgeseg.baseline import DEFAULT_CACHE

    p = sub.add_parser("demo", help="run the pipeline on built-in data (no downloads)",
                       description="Synthetic data, a short training run, evaluation, and the "
                       "model zoo's size and eager latency on this machine.")
    p.add_argument("--workdir", type=Path, default=DEFAULT_CACHE / "demo",
                   help="where data and checkpoint go (default: the edgeseg cache)")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget (default 2)")
    p.add_argument("--train-size", type=parse_size, default=(128, 256), metavar="HxW")
    p.add_argument("--size", type=parse_size, default=(512, 1024), metavar="HxW",
                   help="input size for the latency table (default 512x1024)")
    p.add_argument("--iters", type=positive_int, default=3, help="timed runs per model")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--skip-train", action="store_true", help="only the model zoo table")
    p.set_defaults(func=run)


def train_and_evaluate(args: argparse.Namespace) -> None:
    from edgeseg.data.synthetic import write_dataset
    from edgeseg.train import TrainConfig, train

    h, w = args.train_size
    data = args.workdir / f"synth-{h}x{w}"
    if not data.is_dir():
        status(f"[1/4] generating 300 synthetic {h}x{w} street scenes in {data}")
        write_dataset(data, 300, (h, w), seed=0)
    else:
        status(f"[1/4] synthetic scenes: {data} (already there)")
    ckpt = args.workdir / "bisenetv1-demo.pt"
    status(f"[2/4] training BiSeNet V1 from scratch for {args.minutes:g} min")
    r = train(TrainConfig(model="bisenetv1", data=str(data), out=str(ckpt), size=(h, w),
                          minutes=args.minutes, loss="ohem", val_every=10**9,
                          threads=args.threads), log=status)
    m = r["metrics"]
    status(f"[3/4] {r['iterations']} iterations in {r['train_seconds']:.0f} s; evaluation on "
           "the synthetic val split (confusion matrix over the split):")
    rows = [[n, "n/a" if v is None else f"{v:.3f}"] for n, v in m["per_class_iou"].items()]
    print(format_table(["class", "IoU"], rows))
    print(f"mIoU {m['miou']:.3f} over {m['images']} val images (checkpoint: {ckpt})\n")


def zoo_latency(args: argparse.Namespace) -> None:
    import torch

    from edgeseg.bench.latency import measure
    from edgeseg.models import create_model, list_models
    from edgeseg.models.complexity import COUNTER
    from edgeseg.models.complexity import measure as count

    h, w = args.size
    status(f"[4/4] model zoo: PyTorch {torch.__version__} eager FP32 on CPU, "
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
        train_and_evaluate(args)
    zoo_latency(args)
    return 0
