"""The ``emr-cmk`` console command.

Each subcommand lives in its own module with a ``register(subparsers)`` function. Exit codes:
0 success, 1 a failed check or a decision that is not allow (a key that is not ready, wherever it
is found), 2 bad input (one line on stderr), 141 when the reader of stdout went away (a pipe).
AWS errors arrive already translated by the boundary (``aws_errors``): 2 when the user has something
to change (no credentials, an unknown profile, a request AWS calls invalid), 1 when AWS refused or
could not be reached. ``--debug`` also prints the full traceback, botocore's original included.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from emr_cmk_notebook.core.errors import CheckFailed, ServiceFault, UserError

# Each subcommand and the module under emr_cmk_notebook.cli that adds it. A command line that
# names one imports only that module, so a command does not pay for the others' imports.
SUBCOMMAND_MODULES: dict[str, str] = {
    "local": "local_cmd",
    "policy": "policy_cmd",
    "notebook": "notebook_cmd",
    "usage": "usage_cmd",
    "job": "job_cmd",
    "key-check": "keycheck_cmd",
    "session": "session_cmd",
}


# 128 + SIGPIPE: what a shell reports for a command whose reader closed the pipe.
BROKEN_PIPE_EXIT = 141


class UsageError(UserError):
    """Wrong or missing command-line arguments."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and raise instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``emr-cmk`` parser: with only ``command`` registered when it is a known subcommand,
    else with every subcommand (for ``--help`` and the error that lists them)."""
    parser = OneLineParser(
        prog="emr-cmk",
        description="Encrypted EMR Serverless sessions with customer managed KMS keys.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="on an error, also print the full traceback"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    modules = SUBCOMMAND_MODULES.values()
    if command in SUBCOMMAND_MODULES:
        modules = [SUBCOMMAND_MODULES[command]]
    for name in modules:
        importlib.import_module(f"emr_cmk_notebook.cli.{name}").register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (``--debug``)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    print(f"emr-cmk: {message}", file=sys.stderr)


def _reader_went_away() -> int:
    """Output piped into ``head`` and the like: stop quietly with the shell's SIGPIPE status."""
    # What is still buffered cannot be written; stdout on /dev/null keeps the exit flush quiet.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_EXIT


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``emr-cmk`` with ``argv`` and return its exit code."""
    args = None
    try:
        with warnings.catch_warnings():
            # Our warnings (a skipped check, a secret-looking value) as one plain line each.
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _show_warning
            argv = sys.argv[1:] if argv is None else list(argv)
            args = build_parser(_command_of(argv)).parse_args(argv)
            code = int(args.handler(args) or 0)
            # Flush here, not at exit, so that a reader that went away ends up below.
            sys.stdout.flush()
            return code
    except BrokenPipeError:
        return _reader_went_away()
    except (UserError, ServiceFault) as exc:
        if getattr(args, "debug", False):
            traceback.print_exception(exc, file=sys.stderr)
        return _report(exc)
    except KeyboardInterrupt:
        return 130


def _report(exc: UserError | ServiceFault) -> int:
    """Print ``exc`` as one line on stderr and return the exit code it stands for."""
    if isinstance(exc, (CheckFailed, ServiceFault)):
        print(f"emr-cmk: {exc}", file=sys.stderr)
        return 1
    print(f"emr-cmk: error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
