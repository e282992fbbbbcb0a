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
                   help="the class set when the file cannot tell (e.g. cityscapes, voc)")
    p.add_argument("--out", required=True, help="edgeseg checkpoint to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    hints = {"classes": args.classes} if args.classes else {}
    convert(args.source, args.checkpoint, args.out, log=status, **hints)
    return 0
