"""`edgeseg data synth`: write the built-in synthetic street scenes to disk."""

from __future__ import annotations

import argparse

from edgeseg.cli.common import add_force, parse_size, positive_int, status
from edgeseg.data.synthetic import write_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="datasets: generate synthetic scenes")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="write synthetic street scenes (Cityscapes layout)",
                        description="Procedural street scenes with 8 Cityscapes-like classes "
                        "(road, sidewalk, building, vegetation, sky, car, person, pole; 255 = "
                        "ignore), written as leftImg8bit/ and gtFine/ with train and val "
                        "splits and classes.json. Deterministic for a given seed and size.")
    s.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    s.add_argument("--num", type=positive_int, default=1000, help="scenes (default 1000)")
    s.add_argument("--size", type=parse_size, default=(256, 512), metavar="HxW")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--val-fraction", type=float, default=0.2)
    add_force(s, "a non-empty --out")
    s.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:

    out = write_dataset(args.out, args.num, args.size, args.seed, args.val_fraction,
                        overwrite=args.force)
    h, w = args.size
    status(f"wrote {args.num} synthetic {h}x{w} scenes to {out}")
    return 0
