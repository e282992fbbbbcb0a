"""`edgeseg report`: merge benchmark result files from any devices into a Markdown table, a
CSV and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg.bench.report import report, table_only
from edgeseg.cli.common import status


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="merge benchmark results (any devices) into tables and plots",
        description="Read result files (or directories of them, recursively), validate each, "
        "and write report.md, report.csv, latency_vs_miou.png (per device, with the Pareto "
        "front) and phases.png into --out. Files that cannot be used are listed, not skipped "
        "silently.")
    p.add_argument("results", nargs="+", help="result files or directories")
    p.add_argument("--out", type=Path, default=None,
                   help="directory for the report files (without it: print the table only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    if args.out is None:
        text, problems = table_only(args.results)
        print(text, end="")
        for p in problems:
            status(f"not included: {p}")
        return 1 if problems else 0
    rep = report(args.results, args.out)
    print((args.out / "report.md").read_text(), end="")
    for p in rep["problems"]:
        status(f"not included: {p}")
    status(f"report: {', '.join(str(p) for p in rep['written'])} ({len(rep['rows'])} rows, "
           f"{len(rep['problems'])} unreadable)")
    return 1 if rep["problems"] else 0
