"""The ``emr-cmk`` console command.

Each subcommand lives in its own module with a ``register(subparsers)`` function. Exit codes:
0 success, 1 a failed check or a decision that is not allow, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from emr_cmk_notebook.core.errors import ServiceFault, UserError

# Modules under emr_cmk_notebook.cli that add a subcommand; imported lazily so --help stays fast.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "local_cmd",
    "policy_cmd",
    "notebook_cmd",
    "usage_cmd",
    "job_cmd",
    "keycheck_cmd",
    "session_cmd",
)


class UsageError(UserError):
    """Wrong or missing command-line arguments."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and raise instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The full ``emr-cmk`` parser with every subcommand registered."""
    parser = OneLineParser(
        prog="emr-cmk",
        description="Encrypted EMR Serverless sessions with customer managed KMS keys.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"emr_cmk_notebook.cli.{name}").register(sub)
    return parser


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    print(f"emr-cmk: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``emr-cmk`` with ``argv`` and return its exit code."""
    try:
        with warnings.catch_warnings():
            # Our warnings (a skipped check, a secret-looking value) as one plain line each.
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _show_warning
            args = build_parser().parse_args(argv)
            return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"emr-cmk: error: {exc}", file=sys.stderr)
        return 2
    except ServiceFault as exc:
        print(f"emr-cmk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
