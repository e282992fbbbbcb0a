"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from edgeseg.core import capabilities
from edgeseg.core import text as text_
from edgeseg.core.devices import parse_device
from edgeseg.core.errors import UsageError
from edgeseg.core.shapes import check_range
from edgeseg.core.text import format_table  # noqa: F401 (the commands print with it)


def parse_size(text: str) -> tuple[int, int]:
    """'512x1024' -> (512, 1024); anything else is an argparse error that shows the form."""
    try:
        return text_.parse_size(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_size_range(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """'512x1024:1024x2048' -> ((512, 1024), (1024, 2048))."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"a size range is MINxMIN:MAXxMAX, e.g. "
                                          f"512x1024:1024x2048; got {text!r}")
    lo, hi = (parse_size(p) for p in parts)
    try:
        check_range(lo, hi, "--size-range")
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return lo, hi


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def status(msg: str) -> None:
    """Progress and notes go to stderr so that stdout stays machine-readable."""
    print(msg, file=sys.stderr, flush=True)


# One grammar: each shared flag is added here, so it means the same in every command.
def json_dest(text: str) -> str:
    """--json's optional FILE: "-" or a .json path, so that `--json NAME` cannot swallow a
    positional argument and write it over as a file."""
    if text == "-" or text.lower().endswith(".json"):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a .json file: --json takes FILE.json, or nothing for stdout (put "
        "positional arguments before --json)")


def add_json(p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, what: str) -> None:
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE.json",
                   type=json_dest,
                   help=f"write {what} as JSON to FILE.json, or to stdout when it is left out")


def write_json(dest: str | Path, obj: Any) -> None:
    """JSON to stdout ("-") or to a file, written whole or not at all."""
    text = json.dumps(obj, indent=2) + "\n"
    if str(dest) == "-":
        sys.stdout.write(text)
        return
    path = Path(dest)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def add_force(p: argparse.ArgumentParser, what: str = "the output") -> None:
    p.add_argument("--force", action="store_true", help=f"replace {what} when it exists")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op CPU threads (default: each engine's own choice)")


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def engine_name(text: str) -> str:
    """An engine name or alias (any case) -> its name; anything else lists the choices."""
    try:
        return capabilities.engine(text).name
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_engines(p: argparse.ArgumentParser, default: list[str], help: str) -> None:
    names = ", ".join(f"{e.name} ({'/'.join(e.aliases)})"
                      for e in capabilities.ENGINES.values() if e.runtime)
    p.add_argument("--backends", nargs="+", type=engine_name, default=default,
                   metavar="ENGINE", help=f"{help}; one or more of {names}")


def device_arg(text: str) -> str:
    try:
        return str(parse_device(text))
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_device(p: argparse.ArgumentParser, default: str | None = None, note: str = "") -> None:
    p.add_argument("--device", type=device_arg, default=default, metavar="DEVICE",
                   help="the device to run on: cpu, gpu, gpu:N (cuda:N), npu or a GPU index "
                   f"(default: {default or 'the engine default'}){note}")
