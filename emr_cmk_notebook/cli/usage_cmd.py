"""``emr-cmk usage parse``: the KMS calls in a CloudTrail file, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# The readable table shows these columns for the first rows; --csv and --json give everything.
TABLE_COLUMNS = (
    "event_time",
    "event_name",
    "identity_type",
    "principal_arn",
    "invoked_by",
    "application_id",
    "key_arn",
    "error_code",
)
TABLE_ROWS = 50


def register(subparsers: Any) -> None:
    """Add ``usage parse`` to the ``emr-cmk`` parser."""
    usage = subparsers.add_parser(
        "usage",
        help="who used a KMS key, from CloudTrail records",
        description="Who used a KMS key, from CloudTrail records.",
    )
    actions = usage.add_subparsers(dest="usage_command", metavar="ACTION")
    actions.required = True
    parse = actions.add_parser(
        "parse",
        help="read the KMS calls in a CloudTrail file",
        description=(
            'Read a CloudTrail log file ({"Records": [...]}, gzip or not), a LookupEvents '
            'response ({"Events": [...]}) or JSON lines, and list its KMS calls. Other records '
            "and malformed ones are skipped and counted."
        ),
    )
    parse.add_argument("file", metavar="FILE", help="the CloudTrail file to read")
    output = parse.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="print the rows as a JSON list (times in ISO 8601 UTC, contexts as objects)",
    )
    output.add_argument(
        "--csv", dest="output", action="store_const", const="csv", help="print the rows as CSV"
    )
    output.add_argument(
        "--summary",
        dest="output",
        action="store_const",
        const="summary",
        help="print only the counts, the skipped counts and the time range, as JSON",
    )
    parse.set_defaults(handler=run_parse, output="table")


def run_parse(args: argparse.Namespace) -> int:
    """Read ``args.file`` and print its KMS calls in the chosen form."""
    from emr_cmk_notebook.usage.frame import read_file

    usage = read_file(args.file)
    if args.output == "summary":
        print(json.dumps(usage.summary(), indent=2))
    elif args.output == "json":
        print(json.dumps(usage.rows(), indent=2))
    elif args.output == "csv":
        _print_csv(usage)
    else:
        _print_table(usage)
    return 0


def _print_csv(usage: Any) -> None:
    from emr_cmk_notebook.usage.frame import iso_times

    table = usage.frame.copy()
    table["event_time"] = iso_times(table["event_time"])
    table["encryption_context"] = [
        None if context is None else json.dumps(context, sort_keys=True)
        for context in table["encryption_context"]
    ]
    table.to_csv(sys.stdout, index=False, lineterminator="\n")


def _print_table(usage: Any) -> None:
    from emr_cmk_notebook.usage.frame import iso_times

    print(usage.headline())
    if usage.frame.empty:
        return
    shown = usage.frame.loc[: TABLE_ROWS - 1, list(TABLE_COLUMNS)].copy()
    shown["event_time"] = iso_times(shown["event_time"])
    print(shown.to_string(index=False, na_rep="-"))
    hidden = usage.kms_records - len(shown)
    if hidden > 0:
        print(f"... and {hidden} more rows (--csv or --json prints them all)")
