"""Entry point of the `edgeseg` command: parse, call one function, map its failure to an exit
code (core/errors.py's table). An expected failure prints one line that names the fix; any
other exception is a bug, and its traceback is printed only with --debug."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from edgeseg import __version__
from edgeseg.cli.common import status
from edgeseg.core.errors import EXIT_CODES, EdgesegError, exit_code

# command -> the module that defines it. A command's module, and with it torch or an engine,
# is imported only when that command runs (or for the full help): `edgeseg segment` stays
# as light as the runtime it calls.
COMMANDS = {"models": "models", "data": "data", "train": "train", "eval": "train",
            "baseline": "baseline", "convert": "convert", "export": "export", "compare": "export",
            "lint": "export", "import": "export", "calib": "quantize", "quantize": "quantize",
            "build": "build", "segment": "segment", "bench": "bench", "report": "report",
            "optimize": "optimize", "triton": "triton", "demo": "demo"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of command `only` (what main() needs)."""
    codes = "\n".join(f"  {code:>3}  {what}" for code, what in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="edgeseg",
        description="Export, quantize, benchmark and embed real-time segmentation models.",
        epilog=f"exit codes:\n{codes}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgeseg {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [COMMANDS[only]] if only in COMMANDS else COMMANDS.values()
    for name in dict.fromkeys(names):
        importlib.import_module(f"edgeseg.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # without loading every command
        print(f"edgeseg {__version__}")
        return 0
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgesegError as e:
        if args.debug:
            traceback.print_exc()
        status(f"error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        status("interrupted")
        return exit_code(KeyboardInterrupt())
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say to it
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (interpreter exit flushes it)
        return 0
    except Exception as e:  # a bug: say so, and how to see where
        if args.debug:
            traceback.print_exc()
            status(f"edgeseg {__version__}: unexpected {type(e).__name__}: {e}")
        else:
            status(f"edgeseg {__version__}: unexpected {type(e).__name__}: {e} (a bug: rerun "
                   "with --debug for the traceback, and please report it)")
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
