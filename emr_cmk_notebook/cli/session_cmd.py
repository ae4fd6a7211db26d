"""``emr-cmk session start|list|status|verify|stop``: interactive sessions, from scripts.

The command ends when it has answered, so a session it starts is kept running (as with ``--keep``
in a notebook) and the output says how to stop it. Livy session ids are numbers; Spark Connect
session ids are not. ``stop --orphans`` ends what ``%emr_session stop --orphans`` ends: sessions
kernels of this user on this host left running when they died.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emr_cmk_notebook.cli.options import add_aws_options, progress, show


def register(sub: argparse._SubParsersAction) -> None:
    from emr_cmk_notebook.sessions.request import add_start_options

    session = sub.add_parser("session", help="interactive sessions (Livy or Spark Connect)")
    actions = session.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    start = actions.add_parser("start", help="start a session; it keeps running afterwards")
    start.add_argument("--application-id", required=True)
    start.add_argument("--role", required=True, help="execution role ARN")
    start.add_argument("--key", help="KMS key (ARN or alias)")
    start.add_argument("--context", action="append", metavar="K=V", help="context pair")
    add_start_options(start)
    add_aws_options(start)
    start.set_defaults(handler=_start)

    listing = actions.add_parser("list", help="your live sessions on an application")
    listing.add_argument("--application-id", required=True)
    add_aws_options(listing)
    listing.set_defaults(handler=_list)

    for name, handler, text in (
        ("status", _status, "a session's state, disk key and where the key came from"),
        ("verify", _verify, "CloudTrail evidence of the key the session used (exit 1 if not)"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("session_id")
        p.add_argument("--application-id", required=True)
        if name == "verify":
            p.add_argument("--key", help="the key it should have used (default: its key)")
        add_aws_options(p)
        p.set_defaults(handler=handler)

    stop = actions.add_parser(
        "stop",
        help="delete a Livy session or terminate a Spark Connect one; --orphans: those that "
        "kernels on this host left running when they died",
    )
    stop.add_argument("session_id", nargs="?")
    stop.add_argument(
        "--orphans",
        action="store_true",
        help="sessions left running by your kernels on this host that no longer run",
    )
    stop.add_argument("--dry-run", action="store_true", help="--orphans: only list them")
    stop.add_argument(
        "--application-id",
        help="the session's application; with --orphans, where to look besides the "
        "applications this host's notes name",
    )
    add_aws_options(stop)
    stop.set_defaults(handler=_stop)


def _manager(args: argparse.Namespace) -> Any:
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager

    return SessionManager(
        AwsTarget(profile=args.profile, region=args.region), cleanup_at_exit=False
    )


def _start(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.sessions.request import SessionRequest

    manager = _manager(args)
    request = SessionRequest.from_options(
        args, args.application_id, args.role, args.key, args.context, keep=True
    )
    info = manager.open(
        request, progress=progress(f"starting a session on {request.application_id}")
    )
    manager.disconnect(info.id)
    show(info, args.json)
    print(
        f"session {info.id} keeps running; stop it with: emr-cmk session stop {info.id} "
        f"--application-id {info.application_id}",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    show(_manager(args).list(args.application_id), args.json)
    return 0


def _status(args: argparse.Namespace) -> int:
    show(_manager(args).describe(args.application_id, args.session_id), args.json)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.sessions.evidence import verify_session

    manager = _manager(args)
    info = manager.describe(args.application_id, args.session_id)
    evidence = verify_session(info, manager.target, key=args.key)
    show(evidence, args.json)
    return 0 if evidence.verified else 1


def _stop(args: argparse.Namespace) -> int:
    from emr_cmk_notebook.cli import UsageError

    if (args.session_id is None) == (not args.orphans):
        raise UsageError("emr-cmk session stop: give a session id or --orphans")
    if args.orphans:
        return _stop_orphans(args)
    if args.dry_run:
        raise UsageError("emr-cmk session stop: --dry-run goes with --orphans")
    if not args.application_id:
        raise UsageError("emr-cmk session stop: a session id needs --application-id")
    manager = _manager(args)
    info = manager.attach(args.application_id, args.session_id, ended_ok=True)
    manager.stop(info.id)
    print(f"session {info.id}: {info.state}", file=sys.stderr)
    if args.json:
        show(info, True)
    return 0


def _stop_orphans(args: argparse.Namespace) -> int:
    """List the orphans and what became of each; a session that could not be ended is exit 1."""
    from emr_cmk_notebook.sessions import StopFailed

    try:
        show(_manager(args).stop_orphans(args.application_id, dry_run=args.dry_run), args.json)
    except StopFailed as failed:
        if failed.orphans is not None:
            show(failed.orphans, args.json)
        raise
    return 0
