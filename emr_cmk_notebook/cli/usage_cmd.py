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
        help="read the KMS calls in CloudTrail files: a file, a trail folder or s3://",
        description=(
            'Read CloudTrail log files ({"Records": [...]}, gzip or not), LookupEvents '
            'responses ({"Events": [...]}) or JSON lines, and list their KMS calls. PATH is a '
            "file, a folder laid out like a trail bucket "
            "(AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/) or an s3://BUCKET/PREFIX of "
            "one; --since, --until, --account and --region skip the folders outside them before "
            "anything is read, and keep only the calls inside them. Files are read in parallel "
            "and the rows printed as they come, so memory stays bounded. Other records and "
            "malformed ones are skipped and counted."
        ),
    )
    parse.add_argument("path", metavar="PATH", help="a CloudTrail file, trail folder or s3:// URL")
    parse.add_argument(
        "--since", help="only calls from then on: a time (ISO 8601) or a duration back (7d, 12h)"
    )
    parse.add_argument("--until", help="only calls up to then: a time (ISO 8601, UTC unless said)")
    parse.add_argument(
        "--account",
        action="append",
        dest="accounts",
        metavar="ID",
        help="only this account's logs (repeatable)",
    )
    parse.add_argument(
        "--region",
        action="append",
        dest="regions",
        metavar="R",
        help="only this region's logs (repeatable)",
    )
    parse.add_argument("--profile", help="the AWS profile to read s3:// with")
    parse.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar (--json never shows one)"
    )
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
    fetch.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar (--json never shows one)"
    )
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
        progress_bar=None if args.quiet or args.output == "json" else progress_bar(),
    )
    if args.output == "json":
        print(json.dumps(usage.to_dict(), indent=2, default=str))
    elif args.output == "csv":
        _print_csv(usage)
    else:
        _print_usage(usage)
    return 0


def _print_usage(usage: Any) -> None:
    from emr_cmk_notebook.usage.frame import iso_times

    if usage.warning():
        print(f"warning: {usage.warning()}")
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
    """Read the files at ``args.path`` and print their KMS calls in the chosen form."""
    from emr_cmk_notebook.usage.stream import Tally, read_batches
    from emr_cmk_notebook.usage.trail_files import is_s3_url, list_log_files

    scope = _scope(args)
    s3 = _target(args).client("s3") if is_s3_url(args.path) else None
    warning = _trail_warning(args) if s3 is not None else None
    if warning and args.output != "table":
        print(f"emr-cmk: warning: {warning}", file=sys.stderr)
    files = list_log_files(args.path, scope, s3=s3)
    quiet = args.quiet or args.output == "json"
    batches = read_batches(files, scope, progress=None if quiet else progress_bar())
    tally = Tally()
    if args.output == "summary":
        for batch in batches:
            tally.add(batch)
        print(json.dumps(tally.summary(), indent=2))
    elif args.output == "json":
        _print_json_rows(batches)
    elif args.output == "csv":
        for number, frame in enumerate(_same_columns(batches)):
            _print_csv(frame, header=number == 0)
    else:
        if warning:
            print(f"warning: {warning}")
        _print_table(batches, tally)
    return 0


def _trail_warning(args: argparse.Namespace) -> str | None:
    """What the trails delivering to the bucket leave out, in one line (None: nothing known)."""
    from emr_cmk_notebook.usage.key_usage import trail_check
    from emr_cmk_notebook.usage.trail_files import bucket_of

    return trail_check(_target(args), args.regions, bucket_of(args.path)).line()


def progress_bar() -> Any:
    """A progress bar factory for the terminal: tqdm on stderr, shown only when it is a TTY."""
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)


def _target(args: argparse.Namespace) -> Any:
    from emr_cmk_notebook.clients import AwsTarget

    return AwsTarget(profile=args.profile)


def _scope(args: argparse.Namespace) -> Any:
    from emr_cmk_notebook.usage.trail_files import Scope

    since = until = None
    if args.since is not None or args.until is not None:
        from emr_cmk_notebook.usage.key_usage import parse_moment, since_moment

        until = parse_moment(args.until, "until") if args.until else None
        since = since_moment(args.since, until) if args.since is not None else None
    return Scope.of(
        since.to_pydatetime() if since is not None else None,
        until.to_pydatetime() if until is not None else None,
        args.accounts,
        args.regions,
    )


def _same_columns(batches: Any) -> Any:
    """Each batch as a ``UsageFrame`` with the first non-empty batch's columns.

    Rows stream file by file, so the ``ctx.*`` columns are those of the first file with KMS
    calls; a later file's other context keys are still in ``encryption_context``.
    """
    import pyarrow as pa

    from emr_cmk_notebook.usage.frame import UsageBatch, frame_of

    fields: list[Any] | None = None
    for batch in batches:
        table = batch.table
        if not table.num_rows:
            continue
        if fields is None:
            fields = list(table.schema)
        table = pa.table(
            [
                table.column(f.name) if f.name in table.column_names else pa.nulls(len(table))
                for f in fields
            ],
            schema=pa.schema(fields),
        )
        yield frame_of(UsageBatch(table))


def _print_json_rows(batches: Any) -> None:
    import textwrap

    opened = False
    for batch in _same_columns(batches):
        for row in batch.rows():
            print("[" if not opened else ",")
            print(textwrap.indent(json.dumps(row, indent=2), "  "), end="")
            opened = True
    print("\n]" if opened else "[]")


def _print_csv(usage: Any, header: bool = True) -> None:
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
    table.to_csv(sys.stdout, index=False, header=header, lineterminator="\n")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-``, ``@``, tab or CR
    (OWASP's CSV injection list) gets a single quote in front, so ``=HYPERLINK(...)`` stays text.

    CloudTrail fields such as the user agent and the encryption context are chosen by whoever
    made the call, so every text cell goes through this.
    """
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return f"'{value}"
    return value


def _print_table(batches: Any, tally: Any) -> None:
    from emr_cmk_notebook.usage.batch import UsageBatch, headline, iso_texts, join_batches

    shown: list[Any] = []
    kept = 0
    for batch in batches:
        tally.add(batch)
        if kept < TABLE_ROWS and batch.table.num_rows:
            part = batch.table.slice(0, TABLE_ROWS - kept)
            shown.append(UsageBatch(part))
            kept += part.num_rows
    print(headline(tally.summary()))
    if not kept:
        return
    table = join_batches(shown).table
    cells = {name: table.column(name).to_pylist() for name in TABLE_COLUMNS}
    cells["event_time"] = iso_texts(table.column("event_time")).to_pylist()
    print(_text_table(cells))
    hidden = tally.kms_records - kept
    if hidden > 0:
        print(f"... and {hidden} more rows (--csv or --json prints them all)")


def _text_table(cells: dict[str, list[Any]]) -> str:
    """Columns of text, right-aligned under their names; a gap shows as ``-``."""
    columns = {
        name: [name, *("-" if value is None else str(value) for value in values)]
        for name, values in cells.items()
    }
    widths = [max(len(text) for text in column) for column in columns.values()]
    rows = zip(*columns.values(), strict=True)
    return "\n".join(
        " ".join(text.rjust(width) for text, width in zip(row, widths, strict=True)) for row in rows
    )
