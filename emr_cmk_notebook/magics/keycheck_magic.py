"""``%emr_key_check``: will this key, application and role let encrypted work start?"""

from __future__ import annotations

from typing import Any

from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError, add_context

PARSER = MagicParser("%emr_key_check")
PARSER.add_argument("--key", help="KMS key ARN or alias (default: EmrCmk.default_key)")
PARSER.add_argument("--application-id", help="default: EmrCmk.default_application")
PARSER.add_argument("--role", help="execution role ARN (default: EmrCmk.default_role)")
add_context(PARSER)
PARSER.add_argument(
    "--transport",
    choices=["livy", "connect", "job"],
    help="what you will start (default: EmrCmk.default_transport)",
)
PARSER.add_argument(
    "--apply",
    action="store_true",
    help="merge the key-policy fix into the key policy (shows a diff), then check again",
)


def run(magics: Any, line: str) -> Any:
    from emr_cmk_notebook.readiness import apply_fix, check_readiness

    args = PARSER.parse(line)
    key = args.key or magics.default_key
    app_id = args.application_id or magics.default_application
    role = args.role or magics.default_role
    missing = [
        n for n, v in (("--key", key), ("--application-id", app_id), ("--role", role)) if not v
    ]
    if missing:
        raise MagicUsageError(
            f"%emr_key_check: give {', '.join(missing)} (or set EmrCmk defaults with %config)"
        )
    context = args.context if args.context is not None else list(magics.default_context)
    target = magics.target()
    transport = args.transport or magics.default_transport
    report = check_readiness(key, app_id, role, context, target=target, transport=transport)
    if not args.apply or report.ready:
        return report
    applied = apply_fix(report, target=target)
    print(applied)
    return check_readiness(key, app_id, role, context, target=target, transport=transport)
