"""``%emr_local start|stop|status``: the embedded local backend from a notebook.

``start`` points this kernel's AWS clients at the backend (the same variables
``emr-cmk local env`` prints); ``stop`` puts the previous values back.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.magics.args import MagicParser
from emr_cmk_notebook.render import table_html

PARSER = MagicParser("%emr_local")
_actions = PARSER.add_subparsers(dest="action", metavar="ACTION", parser_class=MagicParser)
_actions.required = True
_start = _actions.add_parser(
    "start", help="start (or reuse) the backend and point AWS clients at it"
)
_start.add_argument("--seed", choices=["demo", "none"], default="demo")
_start.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
_start.add_argument("--keep", action="store_true", help="keep it running after the kernel exits")
_actions.add_parser("stop", help="stop the backend and restore the AWS variables")
_status = _actions.add_parser("status", help="what the backend holds")
_status.add_argument("--json", action="store_true")


@dataclass
class LocalStatus:
    """The local backend's status, rendered as tables."""

    status: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.status

    def __repr__(self) -> str:
        from emr_cmk_notebook.local.process import status_table

        return status_table(self.status)

    def _repr_html_(self) -> str:
        s = self.status
        rows = [("endpoint", s["endpoint"]), ("region", s["region"])]
        rows += [(f"account {a['name']}", a["id"]) for a in s.get("accounts", [])]
        rows += [
            (app["name"], f"{app['id']} ({app['state']})") for app in s.get("applications", [])
        ]
        keys = "".join(
            f"<tr><td><code>{html.escape(k['alias'])}</code></td><td>{html.escape(k['state'])}</td>"
            f"<td>{html.escape(k['key_spec'])}</td><td><code>{html.escape(k['arn'])}</code></td></tr>"
            for k in s.get("keys", [])
        )
        keys_table = (
            f"<table><tr><th>alias</th><th>state</th><th>spec</th><th>ARN</th></tr>{keys}</table>"
            if keys
            else ""
        )
        return table_html(rows, "Local backend") + keys_table


def run(magics: Any, line: str) -> Any:
    args = PARSER.parse(line)
    from emr_cmk_notebook.local import process

    if args.action == "start":
        backend = process.running()
        if backend is None:
            seed = None if args.seed == "none" else args.seed
            backend = process.start(args.port, seed, keep=args.keep)
        _point_at(magics, backend.env())
        return LocalStatus(backend.status())
    if args.action == "stop":
        stopped = process.stop()
        _restore(magics)
        print("local backend stopped" if stopped else "no local backend was running")
        return None
    status = process.attach().status()
    if args.json:
        print(json.dumps(status, indent=2))
        return None
    return LocalStatus(status)


# A profile or session token left in the kernel would override or spoil the local credentials.
UNSET_FOR_LOCAL = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE")


def _point_at(magics: Any, env: dict[str, str]) -> None:
    saved = magics.__dict__.setdefault("_saved_env", {})
    for name in (*env, *UNSET_FOR_LOCAL):
        saved.setdefault(name, os.environ.get(name))
    for name in UNSET_FOR_LOCAL:
        os.environ.pop(name, None)
    os.environ.update(env)


def _restore(magics: Any) -> None:
    for name, value in magics.__dict__.pop("_saved_env", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
