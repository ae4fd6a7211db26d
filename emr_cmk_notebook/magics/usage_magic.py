"""``%emr_key_usage``: who used the key, for which application and session, from CloudTrail."""

from __future__ import annotations

from typing import Any

from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError

PARSER = MagicParser("%emr_key_usage")
PARSER.add_argument("--key", help="key ARN, id or alias (default: EmrCmk.default_key)")
PARSER.add_argument("--since", help="window back from now, e.g. 30m, 12h, 7d (default 7d)")
PARSER.add_argument("--start", help="window start (ISO 8601 time)")
PARSER.add_argument("--end", help="window end (ISO 8601 time)")
PARSER.add_argument("--application-id", help="only this application's use")
PARSER.add_argument("--session", help="only this session's use (a session started here)")
PARSER.add_argument(
    "--source",
    nargs="+",
    metavar=("SOURCE", "PATH"),
    default=["lookup"],
    help="lookup (LookupEvents), athena [s3://BUCKET/PREFIX] or files PATH (a file, a trail"
    " folder or s3://BUCKET/PREFIX)",
)
PARSER.add_argument("--region", action="append", help="region to search (repeatable)")
PARSER.add_argument("--owner-role-arn", help="role in the key owner's account, for its copies")
PARSER.add_argument("-o", "--output", metavar="VAR", help="store the frame in this variable")
PARSER.add_argument("--no-cache", action="store_true", help="ignore the on-disk harvest cache")
PARSER.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(magics: Any, line: str) -> Any:
    from emr_cmk_notebook.usage.key_usage import KeyUsage

    args = PARSER.parse(line)
    key = args.key or magics.default_key
    if not key:
        raise MagicUsageError("%emr_key_usage: give --key (or set EmrCmk.default_key)")
    source, path = _source(args.source)
    since = args.since if args.since or args.start or args.end else "7d"
    usage = KeyUsage.fetch(
        key,
        since=since,
        start=args.start,
        end=args.end,
        application_id=args.application_id,
        session=args.session,
        source=source,
        path=path,
        regions=args.region,
        owner_role_arn=args.owner_role_arn,
        target=magics.target(),
        sessions=kernel_sessions(magics),
        expected_principals=[magics.default_role] if magics.default_role else [],
        cache=not args.no_cache,
        progress_bar=None if args.quiet else progress_bar(),
    )
    if args.output:
        magics.shell.user_ns[args.output] = usage.to_frame()
    return usage


def progress_bar() -> Any:
    """A progress bar factory: a notebook widget bar in Jupyter, a text bar elsewhere."""
    from functools import partial

    from tqdm.auto import tqdm

    return partial(tqdm, leave=False)


def _source(values: list[str]) -> tuple[str, str | None]:
    if len(values) > 2:
        raise MagicUsageError("%emr_key_usage: --source takes a source and at most one path")
    return values[0], values[1] if len(values) == 2 else None


def kernel_sessions(magics: Any) -> list[tuple[str, str, dict[str, str]]]:
    """Sessions started from this kernel, as (id, application id, context) for row matching."""
    sessions = magics.kernel().manager.sessions()
    return [(str(s.id), s.application_id, dict(s.context)) for s in sessions]
