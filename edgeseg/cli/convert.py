"""`edgeseg convert`: a published checkpoint into an edgeseg checkpoint."""

from __future__ import annotations

import argparse

from edgeseg.cli.common import status
from edgeseg.convert import SOURCES, convert


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="turn a published checkpoint into an edgeseg checkpoint",
        description="Map a checkpoint published by another repository onto edgeseg's model "
        "of the same architecture: every tensor used or listed as dropped (with why), shapes "
        "checked, loaded strictly; the class set and preprocessing travel with it. The result "
        "is what `edgeseg export --checkpoint` takes. Read with torch.load(weights_only=True).")
    p.add_argument("checkpoint", help="the published .pth/.pt file")
    p.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                   choices=sorted(SOURCES),
                   help="; ".join(f"{n}: {s}" for n, (_, s) in sorted(SOURCES.items())))
    p.add_argument("--classes", default=None,
                   help="the class set you expect (cityscapes, voc, coco-stuff); checked "
                   "against the classifier's width")
    p.add_argument("--model", default=None,
                   help="coincheung-bisenet (bisenetv1, bisenetv2), mmseg (bisenetv1, "
                   "bisenetv2, deeplabv3plus, icnet): the "
                   "architecture you expect; checked against the tensors")
    p.add_argument("--output-stride", type=int, choices=(8, 16), default=None,
                   help="vainf-deeplabv3plus: the stride the checkpoint was trained at (not "
                   "in the weights; default 16, their published checkpoints')")
    p.add_argument("--out", required=True, help="edgeseg checkpoint to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    given = {"classes": args.classes, "model": args.model,
             "output_stride": args.output_stride}
    hints = {k: v for k, v in given.items() if v is not None}  # a source refuses others
    convert(args.source, args.checkpoint, args.out, log=status, **hints)
    return 0
