"""Magic arguments: shell-like splitting and an argparse parser whose errors are one line."""

from __future__ import annotations

import argparse
import shlex

from emr_cmk_notebook.core.errors import UserError


class MagicUsageError(UserError):
    """Wrong or missing magic arguments."""


class MagicParser(argparse.ArgumentParser):
    """An ArgumentParser that raises a one-line MagicUsageError instead of exiting."""

    def __init__(self, prog: str, **kwargs):
        super().__init__(prog=prog, add_help=True, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise MagicUsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        # --help prints its text and must not end the kernel.
        if message:
            raise MagicUsageError(message.strip())
        raise HelpShown()

    def parse(self, line: str) -> argparse.Namespace:
        """Parse a magic's argument line."""
        return self.parse_args(split(line, self.prog))


class HelpShown(Exception):
    """``--help`` was asked for and printed; nothing else to do."""


def split(line: str, prog: str) -> list[str]:
    """Split like a shell; an unclosed quote is a one-line usage error."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise MagicUsageError(f"{prog}: {exc} in {line!r}") from None


def subcommands(prog: str, names: dict[str, str]) -> tuple[MagicParser, argparse._SubParsersAction]:
    """A parser with required subcommands; ``names`` maps each subcommand to its help."""
    parser = MagicParser(prog)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=MagicParser)
    sub.required = True
    for name, text in names.items():
        sub.add_parser(name, help=text)
    return parser, sub


def add_context(parser: argparse.ArgumentParser) -> None:
    """The ``--context K=V`` option shared by every magic that takes an encryption context."""
    parser.add_argument(
        "--context",
        action="append",
        default=None,
        metavar="K=V",
        help="encryption context pair (repeatable, at most 8)",
    )
