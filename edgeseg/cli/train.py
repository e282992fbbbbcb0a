"""`edgeseg train` and `edgeseg eval`."""

from __future__ import annotations

import argparse
import json

from edgeseg.checkpoint import model_from_checkpoint
from edgeseg.cli.common import (
    add_json,
    device_arg,
    format_table,
    parse_size,
    positive_int,
    status,
    write_json,
)
from edgeseg.core.errors import InputError, UsageError
from edgeseg.data.datasets import open_dataset
from edgeseg.evaluate import TorchPredictor, evaluate
from edgeseg.train import TrainConfig, train


def parse_options(pairs: list[str]) -> dict:
    """['backbone=resnet50', 'output_stride=8'] -> {'backbone': 'resnet50', 'output_stride': 8}
    (values parsed as JSON when they can be: numbers, true/false)."""
    opts = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"model option must be KEY=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        try:
            opts[k] = json.loads(v)
        except json.JSONDecodeError:
            opts[k] = v
    return opts


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a registered model; writes a checkpoint with the "
                       "model, classes, preprocessing and training config in it.")
    p.add_argument("--model", required=True)
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, repeatable (e.g. --opt backbone=resnet50)")
    p.add_argument("--data", required=True, help="dataset root (Cityscapes/CamVid/folder)")
    p.add_argument("--out", required=True, help="checkpoint path to write")
    p.add_argument("--size", type=parse_size, default=(128, 256), metavar="HxW")
    p.add_argument("--crop", type=parse_size, default=None, metavar="HxW",
                   help="train on random crops of this size (at most --size) of images "
                   "scaled as for --size: cheaper steps, same object scale at inference")
    p.add_argument("--iters", type=positive_int, default=2000)
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget: the schedule is sized to fit it")
    p.add_argument("--batch", type=positive_int, default=8)
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--loss", choices=("ce", "ohem"), default="ce")
    p.add_argument("--class-weights", choices=("none", "median-freq"), default="none",
                   help="weight the loss per class: median-freq is SegNet's median frequency "
                   "balancing, computed from the training masks")
    p.add_argument("--val-every", type=positive_int, default=500)
    p.add_argument("--val-limit", type=positive_int, default=None,
                   help="validate on the first N val images only")
    p.add_argument("--resize", choices=("stretch", "letterbox"), default="stretch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", type=lambda t: t if t == "auto" else device_arg(t),
                   default="auto", metavar="DEVICE",
                   help="auto (default: the GPU when torch sees one, else the CPU), cpu, gpu "
                   "or gpu:N (cuda:N)")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--resume", default=None, help="continue from this checkpoint")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out images that have no mask (warns with a count)")
    p.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto",
                   help="mixed precision: auto (fp16 on CUDA, off on CPU), bf16, off")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on a dataset split",
                       description="Confusion matrix over the whole split: mIoU, per-class "
                       "IoU, pixel accuracy, mean class accuracy.")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--split", default="val")
    e.add_argument("--limit", type=positive_int, default=None, help="first N images only")
    add_json(e, "the metrics")
    e.add_argument("--threads", type=positive_int, default=None)
    e.add_argument("--skip-missing", action="store_true",
                   help="leave out images that have no mask (warns with a count)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:

    cfg = TrainConfig(
        model=args.model, data=args.data, out=args.out, size=args.size, crop=args.crop,
        model_options=parse_options(args.opt), iters=args.iters, minutes=args.minutes,
        batch=args.batch, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, warmup=args.warmup, loss=args.loss,
        class_weights=args.class_weights,
        val_every=args.val_every, val_limit=args.val_limit, seed=args.seed,
        device=args.device, threads=args.threads, resize=args.resize,
        skip_missing=args.skip_missing, amp=args.amp)
    result = train(cfg, resume=args.resume, progress=not args.no_progress, log=status)
    m = result["metrics"]
    status(f"{args.model}: {result['iterations']} iterations in {result['train_seconds']:.0f} s,"
           f" val mIoU {m['miou']:.4f}; checkpoint {result['out']}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import torch


    if args.threads:
        torch.set_num_threads(args.threads)
    model, classes, preprocess = model_from_checkpoint(args.checkpoint)
    ds = open_dataset(args.data, args.split, skip_missing=args.skip_missing)
    if ds.classes.names != classes.names:
        raise InputError(f"{args.data} has classes {list(ds.classes.names)} but the "
                         f"checkpoint was trained on {list(classes.names)}")
    m = evaluate(TorchPredictor(model, preprocess), ds, progress=not args.no_progress,
                 limit=args.limit)
    result = {"checkpoint": args.checkpoint, "data": args.data, "split": args.split,
              **m.to_dict()}
    if args.json == "-":
        write_json("-", result)
        return 0
    rows = [[n, "n/a" if v is None else f"{v:.4f}"] for n, v in m.per_class_iou.items()]
    print(format_table(["class", "IoU"], rows))
    print(f"\nmIoU {m.miou:.4f}  pixel acc {m.pixel_accuracy:.4f}  mean class acc "
          f"{m.mean_class_accuracy:.4f}  ({m.images} images, {args.split})")
    if args.json:
        write_json(args.json, result)
    return 0
