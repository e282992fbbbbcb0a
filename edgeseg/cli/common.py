"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys

from edgeseg.core import text as text_
from edgeseg.core.errors import UsageError
from edgeseg.core.text import format_table  # noqa: F401 (the commands print with it)


def parse_size(text: str) -> tuple[int, int]:
    """'512x1024' -> (512, 1024); anything else is an argparse error that shows the form."""
    try:
        return text_.parse_size(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
