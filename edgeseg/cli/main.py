"""Entry point of the `edgeseg` command."""

from __future__ import annotations

import argparse
import sys

from edgeseg import __version__
from edgeseg.cli import (
    baseline,
    bench,
    build,
    data,
    demo,
    export,
    models,
    quantize,
    report,
    segment,
    train,
)

SUBCOMMANDS = (models, data, train, baseline, export, quantize, build, segment, bench,
               report, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeseg",
        description="Export, quantize, benchmark and embed real-time segmentation models.",
    )
    parser.add_argument("--version", action="version", version=f"edgeseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
