"""``%emr_session start|status|list|use|logs|verify|stop``: Livy or Spark Connect sessions."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError, add_context
from emr_cmk_notebook.sessions.request import SessionRequest, add_start_options

PARSER = MagicParser("%emr_session")
_actions = PARSER.add_subparsers(dest="action", metavar="ACTION", parser_class=MagicParser)
_actions.required = True

_start = _actions.add_parser("start", help="open a session encrypted with your KMS key")
_start.add_argument("--application-id", help="default: EmrCmk.default_application")
_start.add_argument("--role", help="execution role ARN (default: EmrCmk.default_role)")
_start.add_argument("--key", help="KMS key ARN or alias (default: EmrCmk.default_key)")
add_context(_start)
add_start_options(_start)
_start.add_argument(
    "--spark-name", default="spark", help="connect only: the variable for the SparkSession"
)
_start.add_argument("--keep", action="store_true", help="keep it running after the kernel exits")

_status = _actions.add_parser("status", help="state, disk key and where the key came from")
_status.add_argument("id", nargs="?")
_list = _actions.add_parser("list", help="your sessions on the application")
_list.add_argument("--application-id", help="default: the active session's application")
_use = _actions.add_parser("use", help="make a session the active one (attach to it)")
_use.add_argument("id")
_use.add_argument("--application-id", help="the application of a session started elsewhere")
_use.add_argument(
    "--spark-name", default="spark", help="Spark Connect: the variable for the SparkSession"
)
_logs = _actions.add_parser("logs", help="the tail of the session log")
_logs.add_argument("id", nargs="?")
_logs.add_argument("--size", type=int, default=100, help="how many lines (default 100)")
_verify = _actions.add_parser("verify", help="CloudTrail evidence of the key the session used")
_verify.add_argument("id", nargs="?")
_verify.add_argument("--key", help="the key it should have used (default: the session's key)")
_stop = _actions.add_parser(
    "stop", help="delete the active session, one by id, --all, or --orphans"
)
_stop.add_argument("id", nargs="?")
_stop.add_argument("--all", action="store_true", help="every session this kernel knows")
_stop.add_argument(
    "--orphans",
    action="store_true",
    help="sessions left running by kernels on this machine that no longer run",
)
_stop.add_argument("--dry-run", action="store_true", help="--orphans: only list them")
_stop.add_argument("--application-id", help="--orphans: the application (default: as list)")


def run(magics: Any, line: str) -> Any:
    if not line.strip():
        from emr_cmk_notebook.widgets.session_launcher import SessionLauncher

        return SessionLauncher.for_magics(magics)
    args = PARSER.parse(line)
    spark_name = getattr(args, "spark_name", "spark")
    if not spark_name.isidentifier():
        raise MagicUsageError(f"--spark-name {spark_name!r} is not a Python name")
    kernel = magics.kernel()
    sessions = kernel.manager
    if args.action == "start":
        return _start_session(magics, kernel, args)
    if args.action == "status":
        return sessions.status(args.id)
    if args.action == "list":
        return sessions.list(args.application_id or magics.default_application)
    if args.action == "use":
        info = kernel.use(args.id, args.application_id, args.spark_name)
        _say_bound(kernel, info)
        return info
    if args.action == "logs":
        return sessions.logs(args.id, args.size)
    if args.action == "verify":
        from emr_cmk_notebook.sessions.evidence import verify_session

        return verify_session(sessions.status(args.id), magics.target(), key=args.key)
    if sum((args.id is not None, args.all, args.orphans)) > 1:
        raise MagicUsageError("%emr_session stop: give one of a session id, --all, --orphans")
    for flag, given in (("--application-id", args.application_id), ("--dry-run", args.dry_run)):
        if given and not args.orphans:
            raise MagicUsageError(f"%emr_session stop: {flag} goes with --orphans")
    if args.orphans:
        _stop_orphans(sessions, args.application_id or magics.default_application, args.dry_run)
        return None
    stopped = kernel.stop(args.id, all_sessions=args.all)
    print(f"stopped session(s) {', '.join(map(str, stopped))}" if stopped else "no sessions")
    return None


def _stop_orphans(sessions: Any, application_id: str | None, dry_run: bool) -> None:
    from emr_cmk_notebook.sessions import StopFailed

    try:
        print(repr(sessions.stop_orphans(application_id, dry_run=dry_run)))
    except StopFailed as failed:
        print(repr(failed.orphans))
        raise


def _start_session(magics: Any, kernel: Any, args: Any) -> Any:
    from emr_cmk_notebook.magics.display import ProgressLine

    key = args.key or magics.default_key
    context = args.context
    if context is None and key:
        # The configured context belongs with a key; it is not applied to the application's.
        context = list(magics.default_context) or None
    app_id = args.application_id or magics.default_application
    with warnings.catch_warnings(record=True) as caught:
        # Ours (a secret-looking context, a skipped check) as lines; a library's deprecation
        # (sparkmagic's widgets on traitlets) stays hidden, as Python hides it.
        warnings.simplefilter("always", UserWarning)
        try:
            request = SessionRequest.from_options(
                args,
                app_id,
                args.role or magics.default_role,
                key,
                context,
                transport=magics.default_transport,
                keep=args.keep,
                timeout=magics.wait_timeout,
            )
            progress = ProgressLine(f"starting a session on {app_id}")
            info = kernel.start(request, progress=progress, spark_name=args.spark_name)
            # The line ends on the state the session reached, not on the last one it waited in.
            progress(f"session {info.id} {info.state}")
        finally:
            for warning in caught:
                print(f"{warning.message}", file=sys.stderr)
    _say_bound(kernel, info)
    return info


def _say_bound(kernel: Any, info: Any) -> None:
    name = kernel.bound_name(info)
    if name is not None:
        # Information, not a warning: stdout, so that no frontend shows it as an error.
        print(f"{name}: a SparkSession on session {info.id}")
