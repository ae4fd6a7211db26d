"""``%emr_app show|create|update``: an application's disk encryption and interactive settings."""

from __future__ import annotations

import argparse
from typing import Any

from emr_cmk_notebook.core.releases import FORMS
from emr_cmk_notebook.magics.args import MagicParser, MagicUsageError, add_context

PARSER = MagicParser("%emr_app")
_actions = PARSER.add_subparsers(dest="action", metavar="ACTION", parser_class=MagicParser)
_actions.required = True

_show = _actions.add_parser("show", help="an application's key, context and endpoints")
_show.add_argument("--application-id", help="default: EmrCmk.default_application")

_create = _actions.add_parser("create", help="create an application with a customer managed key")
_create.add_argument("--name", required=True)
_create.add_argument("--release", default="emr-7.13.0", help=f"release label: {FORMS}")
_create.add_argument("--type", default="SPARK", dest="engine")
_create.add_argument("--key", help="KMS key ARN or alias for worker disks")
add_context(_create)
_create.add_argument("--livy", action=argparse.BooleanOptionalAction, default=True)
_create.add_argument("--sessions", action=argparse.BooleanOptionalAction, default=False)

_update = _actions.add_parser("update", help="set or unset the key; turn endpoints on or off")
_update.add_argument("--application-id", help="default: EmrCmk.default_application")
_update.add_argument("--key", help="KMS key ARN or alias for worker disks")
add_context(_update)
_update.add_argument("--unset-key", action="store_true", help="go back to the AWS owned key")
_update.add_argument("--livy", action=argparse.BooleanOptionalAction, default=None)
_update.add_argument("--sessions", action=argparse.BooleanOptionalAction, default=None)
_update.add_argument("--restart", action="store_true", help="stop, update and start a running app")


def run(magics: Any, line: str) -> Any:
    from emr_cmk_notebook import apps
    from emr_cmk_notebook.core.encryption import DiskEncryption

    args = PARSER.parse(line)
    target = magics.target()
    if args.action == "show":
        return apps.get_application(target, args.application_id or magics.default_application)
    if args.action == "create":
        return apps.create_application(
            target,
            args.name,
            release=args.release,
            engine=args.engine,
            encryption=DiskEncryption.from_options(args.key, args.context),
            livy=args.livy,
            sessions=args.sessions,
        )
    app_id = args.application_id or magics.default_application
    if args.unset_key and (args.key or args.context):
        raise MagicUsageError("%emr_app update: --unset-key cannot go with --key or --context")
    encryption: Any = None  # --unset-key: back to the AWS owned key
    if not args.unset_key:
        asked = DiskEncryption.from_options(args.key, args.context)
        encryption = apps.UNCHANGED if asked is None else asked
    if encryption is apps.UNCHANGED and args.livy is None and args.sessions is None:
        raise MagicUsageError(
            "%emr_app update: nothing to change; give --key, --unset-key, --livy or --sessions"
        )
    from emr_cmk_notebook.magics.display import ProgressLine

    return apps.update_application(
        target,
        app_id,
        encryption=encryption,
        livy=args.livy,
        sessions=args.sessions,
        restart=args.restart,
        timeout=magics.wait_timeout,
        progress=ProgressLine(f"updating {app_id}"),
    )
