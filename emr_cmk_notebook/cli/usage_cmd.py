"""``emr-cmk usage parse`` and ``usage fetch``: the KMS calls on a key, as a table, JSON or CSV."""

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
# Characters that make a spreadsheet read a CSV cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = frozenset("=+-@\t\r")


def register(subparsers: Any) -> None:
    """Add ``usage parse`` and ``usage fetch`` to the ``emr-cmk`` parser."""
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
    _register_fetch(actions)


def _register_fetch(actions: Any) -> None:
    fetch = actions.add_parser(
        "fetch",
        help="find every KMS call on a key in a time window",
        description=(
            "Find every KMS call on a key in a time window: from CloudTrail event history "
            "(lookup, the last 90 days), from the trail's S3 logs (athena: an s3:// PATH runs "
            "on Athena, a local folder or the local backend's logs run the same SQL with "
            "DuckDB) or from CloudTrail files (files PATH)."
        ),
    )
    fetch.add_argument("--key", required=True, help="the key ARN, key id or alias")
    window = fetch.add_mutually_exclusive_group()
    window.add_argument("--since", help="how far back from now (or --end): 30m, 12h, 7d, 2w")
    window.add_argument("--start", help="the window's start, ISO 8601 (UTC unless it says)")
    fetch.add_argument("--end", help="the window's end, ISO 8601 (default: now)")
    fetch.add_argument("--application-id", help="only calls for this EMR Serverless application")
    fetch.add_argument(
        "--region", action="append", dest="regions", metavar="R", help="a region (repeatable)"
    )
    fetch.add_argument(
        "--source",
        nargs="+",
        default=["lookup"],
        metavar="SOURCE [PATH]",
        help="lookup (default), athena [s3://BUCKET/PREFIX | FOLDER] or files PATH",
    )
    fetch.add_argument(
        "--owner-role-arn",
        help="a role in the key owner's account, to read its copies of cross-account calls",
    )
    fetch.add_argument("--profile", help="the AWS profile to use")
    output = fetch.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="print one JSON document: window, notes, summary, findings and rows",
    )
    output.add_argument(
        "--csv", dest="output", action="store_const", const="csv", help="print the rows as CSV"
    )
    fetch.set_defaults(handler=run_fetch, output="table")


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch the KMS calls on ``args.key`` and print them in the chosen form."""
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.core.errors import UserError
    from emr_cmk_notebook.usage.key_usage import SOURCES, KeyUsage

    source, *rest = args.source
    if source not in SOURCES or len(rest) > 1:
        raise UserError(
            f"--source {' '.join(args.source)!r} is not valid",
            hint="use lookup, athena [PATH] or files PATH",
        )
    usage = KeyUsage.fetch(
        args.key,
        since=args.since,
        start=args.start,
        end=args.end,
        application_id=args.application_id,
        source=source,
        path=rest[0] if rest else None,
        regions=args.regions,
        owner_role_arn=args.owner_role_arn,
        target=AwsTarget(profile=args.profile),
        progress=_progress_line() if sys.stderr.isatty() else None,
    )
    if args.output == "json":
        print(json.dumps(usage.to_dict(), indent=2, default=str))
    elif args.output == "csv":
        _print_csv(usage)
    else:
        _print_usage(usage)
    return 0


def _progress_line() -> Any:
    def show(state: Any) -> None:
        print(
            f"\r{state.account}/{state.region}: {state.calls} calls, {state.events} events,"
            f" {state.fraction:.0%} of the window",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _print_usage(usage: Any) -> None:
    from emr_cmk_notebook.usage.frame import iso_times

    print(usage.headline())
    for note in usage.notes:
        print(f"note: {note}")
    if usage.frame.empty:
        return
    summary = usage.summary()
    for column in ("first_use", "last_use"):
        summary[column] = iso_times(summary[column])
    print(summary.drop(columns=["application_id", "session"]).to_string(index=False))
    found = usage.findings()
    counts = found["finding"].value_counts()
    print(
        f"{len(found)} finding(s)" + "".join(f"; {name}: {count}" for name, count in counts.items())
    )


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
    from pandas.api.types import is_numeric_dtype

    from emr_cmk_notebook.usage.frame import iso_times

    table = usage.frame.copy()
    table["event_time"] = iso_times(table["event_time"])
    table["encryption_context"] = [
        None if context is None else json.dumps(context, sort_keys=True)
        for context in table["encryption_context"]
    ]
    for column in table.columns:
        if not is_numeric_dtype(table[column]):
            table[column] = table[column].astype(object).map(spreadsheet_safe)
    table.to_csv(sys.stdout, index=False, lineterminator="\n")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-``, ``@``, tab or CR
    (OWASP's CSV injection list) gets a single quote in front, so ``=HYPERLINK(...)`` stays text.

    CloudTrail fields such as the user agent and the encryption context are chosen by whoever
    made the call, so every text cell goes through this.
    """
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return f"'{value}"
    return value


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
