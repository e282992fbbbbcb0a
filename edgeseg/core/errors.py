"""Every expected failure is an EdgesegError subclass: a one-line message that names the
problem and the fix, and an exit code from one table (docs/errors.md is generated from it).
Anything else is a bug, and the CLI prints its traceback only with --debug."""

from __future__ import annotations


class EdgesegError(Exception):
    """An expected failure: bad input, a missing engine, a result that failed its check."""
    exit_code = 2


# Exit codes, one per kind of failure; docs/errors.md and `edgeseg --help` show this table.
EXIT_CODES = {
    0: "success",
    1: "a check failed: parity, INT8 accuracy, a benchmark gate (the output was not kept)",
    2: "bad input or usage: a flag, a file, an artifact, a dataset, a config",
    3: "an engine or device is missing here (the message says what to install)",
    4: "the artifact does not fit this machine (TensorRT version, GPU, memory)",
    5: "written, but short of a goal the user set (--keep-best past an accuracy budget)",
    70: "an unexpected error: a bug in edgeseg (--debug prints the traceback; please report it)",
    130: "interrupted (Ctrl-C); nothing half-written is left behind",
}


class UsageError(EdgesegError, ValueError):
    """A flag or config value that cannot work."""


class InputError(EdgesegError, ValueError):
    """A file or folder the user named is missing, unreadable or the wrong kind."""


class MissingInput(InputError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputExists(EdgesegError, FileExistsError):
    """The output exists and --force was not given: nothing is overwritten."""


class CheckFailed(EdgesegError, RuntimeError):
    """A result failed its acceptance check (parity, INT8 accuracy, a gate)."""
    exit_code = 1


class EngineUnavailable(EdgesegError, ImportError):
    """An engine or device that is not installed or not present here."""
    exit_code = 3


class Mismatch(EdgesegError, RuntimeError):
    """The artifact was made for another machine (TensorRT version, GPU), or does not fit
    this one (memory)."""
    exit_code = 4


class GoalMissed(EdgesegError):
    """The output was written (the user asked for it), but it misses the goal they set."""
    exit_code = 5


def exit_code(error: BaseException) -> int:
    if isinstance(error, KeyboardInterrupt):
        return 130
    return error.exit_code if isinstance(error, EdgesegError) else 70
