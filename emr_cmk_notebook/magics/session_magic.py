"""``%emr_session start|status|list|use|logs|verify|stop``: Livy or Spark Connect sessions."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError, add_context

PARSER = MagicParser("%emr_session")
_actions = PARSER.add_subparsers(dest="action", metavar="ACTION", parser_class=MagicParser)
_actions.required = True

_start = _actions.add_parser("start", help="open a session encrypted with your KMS key")
_start.add_argument("--application-id", help="default: EmrCmk.default_application")
_start.add_argument("--role", help="execution role ARN (default: EmrCmk.default_role)")
_start.add_argument("--key", help="KMS key ARN or alias (default: EmrCmk.default_key)")
add_context(_start)
_start.add_argument("--name", help="session name (default: a unique one)")
_start.add_argument("--idle-timeout", type=int, metavar="MIN", help="end it after MIN idle minutes")
_start.add_argument("--transport", choices=["livy", "connect"], help="default: livy")
_start.add_argument("--conf", action="append", metavar="K=V", help="extra Spark property")
_start.add_argument("--tag", action="append", metavar="K=V", help="connect only: a session tag")
_start.add_argument(
    "--session-key-override",
    action="store_true",
    help="connect only: pass --key as spark.emr-serverless.disk.* (not documented by AWS)",
)
_start.add_argument(
    "--spark-name", default="spark", help="connect only: the variable for the SparkSession"
)
_start.add_argument("--skip-check", action="store_true", help="start without the key check")
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
_stop = _actions.add_parser("stop", help="delete the active session, one by id, or --all")
_stop.add_argument("id", nargs="?")
_stop.add_argument("--all", action="store_true", help="every session this kernel knows")


def manager(magics: Any) -> Any:
    """The kernel's SessionManager (one per EmrCmk instance), pointed at the current target."""
    from emr_cmk_notebook.sessions.manager import SessionManager

    current = magics.__dict__.get("_session_manager")
    if current is None:
        current = SessionManager(magics.target())
        magics.__dict__["_session_manager"] = current
    else:
        current.target = magics.target()
    return current


def run(magics: Any, line: str) -> Any:
    if not line.strip():
        from emr_cmk_notebook.widgets.session_launcher import SessionLauncher

        return SessionLauncher.for_magics(magics)
    args = PARSER.parse(line)
    spark_name = getattr(args, "spark_name", "spark")
    if not spark_name.isidentifier():
        raise MagicUsageError(f"--spark-name {spark_name!r} is not a Python name")
    sessions = manager(magics)
    if args.action == "start":
        return _start_session(magics, sessions, args)
    if args.action == "status":
        return sessions.status(args.id)
    if args.action == "list":
        return sessions.list(args.application_id or magics.default_application)
    if args.action == "use":
        info = sessions.use(args.id, args.application_id)
        if info.kind == "connect":
            _bind_spark(magics, sessions, info, args.spark_name)
        else:
            _register_with_sparkmagic(magics, info)
        return info
    if args.action == "logs":
        return sessions.logs(args.id, args.size)
    if args.action == "verify":
        from emr_cmk_notebook.sessions.evidence import verify_session

        return verify_session(sessions.status(args.id), magics.target(), key=args.key)
    if args.id is not None and args.all:
        raise MagicUsageError("%emr_session stop: give a session id or --all, not both")
    stopped = sessions.stop(args.id, all_sessions=args.all)
    _drop_spark(magics, stopped)
    _unregister_from_sparkmagic(magics, stopped)
    print(f"deleted session(s) {', '.join(map(str, stopped))}" if stopped else "no sessions")
    return None


def _start_session(magics: Any, sessions: Any, args: Any) -> Any:
    from emr_cmk_notebook.magics.display import ProgressLine

    key = args.key or magics.default_key
    context = args.context
    if context is None and key:
        # The configured context belongs with a key; it is not applied to the application's.
        context = list(magics.default_context) or None
    conf = dict(_pair(item) for item in args.conf or [])
    app_id = args.application_id or magics.default_application
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            info = sessions.start(
                app_id,
                args.role or magics.default_role,
                key,
                context,
                name=args.name,
                idle_timeout_minutes=args.idle_timeout,
                conf=conf,
                transport=args.transport or magics.default_transport,
                keep=args.keep,
                skip_check=args.skip_check,
                timeout=magics.wait_timeout,
                progress=ProgressLine(f"starting a session on {app_id}"),
                session_key_override=args.session_key_override,
                tags=dict(_pair(item, "--tag") for item in args.tag) if args.tag else None,
            )
        finally:
            for warning in caught:
                print(f"{warning.message}", file=sys.stderr)
    if info.kind == "connect":
        _bind_spark(magics, sessions, info, args.spark_name)
        return info
    _register_with_sparkmagic(magics, info)
    return info


def _bind_spark(magics: Any, sessions: Any, info: Any, name: str) -> None:
    """Put the session's SparkSession in the user namespace as ``name``."""
    magics.shell.user_ns[name] = sessions.connect_session(info.id).connect()
    magics.__dict__.setdefault("_spark_names", {})[str(info.id)] = name
    print(f"{name}: a SparkSession on session {info.id}", file=sys.stderr)


def _drop_spark(magics: Any, session_ids: list[Any]) -> None:
    """Remove the SparkSession variables of stopped Spark Connect sessions."""
    names = magics.__dict__.get("_spark_names", {})
    for session_id in session_ids:
        name = names.pop(str(session_id), None)
        if name is not None:
            magics.shell.user_ns.pop(name, None)


def _pair(item: str, option: str = "--conf") -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise MagicUsageError(f"%emr_session start: {option} {item!r} is not K=V")
    return name, value


def _register_with_sparkmagic(magics: Any, info: Any) -> None:
    from emr_cmk_notebook.integrations import sparkmagic

    if sparkmagic.available():
        sparkmagic.register_session(magics.shell, manager(magics), info)


def _unregister_from_sparkmagic(magics: Any, session_ids: list[int]) -> None:
    from emr_cmk_notebook.integrations import sparkmagic

    if sparkmagic.available():
        sparkmagic.forget_sessions(magics.shell, session_ids)
