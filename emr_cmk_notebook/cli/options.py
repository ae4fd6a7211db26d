"""Options and output shared by the subcommands that call AWS and print a result."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """``--region``, ``--profile`` and ``--json``."""
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def target(args: argparse.Namespace) -> Any:
    """The AWS target the options name."""
    from emr_cmk_notebook.clients import AwsTarget

    return AwsTarget(profile=args.profile, region=args.region)


def show(result: Any, as_json: bool) -> None:
    """A result as one JSON document, or as the text it shows in a terminal."""
    print(json.dumps(result.to_dict(), indent=2, default=str) if as_json else repr(result))


def progress(label: str) -> Any:
    """Progress of long work on stderr, a line per step (stdout keeps the result alone)."""
    from emr_cmk_notebook.core.progress import ProgressLog

    return ProgressLog(label, lambda line: print(line, file=sys.stderr))
