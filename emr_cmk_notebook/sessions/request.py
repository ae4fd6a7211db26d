"""``SessionRequest``: what a user asks a session to be, built and checked once, before any call.

The magic, the CLI, the launcher and ``SessionManager.start`` all build one with
``SessionRequest.build``; the transports read it and never check their inputs again.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.conf import check_role
from emr_cmk_notebook.sessions.owner import Owner
from emr_cmk_notebook.sessions.results import SessionInfo

TRANSPORTS = ("livy", "connect")
Pairs = Mapping[str, str] | Iterable[str] | None


def add_start_options(parser: argparse.ArgumentParser) -> None:
    """The start options ``%emr_session start`` and ``emr-cmk session start`` share (where the
    application, role and key come from differs: settings in a notebook, required in a script)."""
    parser.add_argument("--name", help="session name (default: a unique one)")
    parser.add_argument(
        "--idle-timeout", type=int, metavar="MIN", help="end it after MIN idle minutes"
    )
    parser.add_argument("--transport", choices=TRANSPORTS, help="default: livy")
    parser.add_argument("--conf", action="append", metavar="K=V", help="extra Spark property")
    parser.add_argument("--tag", action="append", metavar="K=V", help="connect only: a tag")
    parser.add_argument(
        "--session-key-override",
        action="store_true",
        help="connect only: pass --key as spark.emr-serverless.disk.* (not documented by AWS)",
    )
    parser.add_argument(
        "--skip-check", action="store_true", help="start without the readiness check"
    )


def pairs(items: Pairs, option: str) -> dict[str, str]:
    """``K=V`` items (or a mapping) as a dict; a one-line error naming ``option`` otherwise."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    found = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name:
            raise UserError(f"{option} {item!r} is not K=V")
        found[name] = value
    return found


def no_application() -> UserError:
    """The one line for a session command that names no application."""
    return UserError(
        "no application given",
        hint="pass --application-id (in a notebook, %config EmrCmk.default_application works too)",
    )


@dataclass(frozen=True)
class SessionRequest:
    """One session to start: where, as whom, with which key, and how it is run and ended."""

    application_id: str
    role_arn: str
    # The key and context asked for (not yet resolved to a key ARN); None for the application's.
    encryption: DiskEncryption | None = None
    transport: str = "livy"
    name: str = ""
    idle_timeout_minutes: int | None = None
    conf: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # The Livy session kind (pyspark, spark, sql...).
    kind: str = "pyspark"
    keep: bool = False
    skip_check: bool = False
    session_key_override: bool = False
    start_application: bool = True
    timeout: float = 900.0
    # Who starts it: in the Livy session name, in the Spark Connect tags.
    owner: Owner | None = None

    @classmethod
    def build(
        cls,
        application_id: str | None,
        role_arn: str | None,
        key: str | None = None,
        context: Pairs = None,
        *,
        transport: str = "livy",
        name: str | None = None,
        idle_timeout_minutes: int | None = None,
        conf: Pairs = None,
        tags: Pairs = None,
        kind: str = "pyspark",
        keep: bool = False,
        skip_check: bool = False,
        session_key_override: bool = False,
        start_application: bool = True,
        timeout: float = 900.0,
    ) -> SessionRequest:
        """The request, or a one-line error saying what to change (nothing is called yet)."""
        if transport not in TRANSPORTS:
            raise UserError(f"unknown transport {transport!r}", hint="use livy or connect")
        if transport == "livy" and session_key_override:
            raise UserError(
                "--session-key-override is for --transport connect; Livy sessions always "
                "carry the key in their conf"
            )
        tags = pairs(tags, "--tag")
        if transport == "livy" and tags:
            raise UserError("--tag is for --transport connect; Livy sessions have no tags")
        role_arn = check_role(role_arn)
        if idle_timeout_minutes is not None and idle_timeout_minutes < 1:
            raise UserError("--idle-timeout must be at least 1 minute")
        encryption = DiskEncryption.from_options(key, context)
        if session_key_override and not key:
            raise UserError("--session-key-override needs --key")
        if not application_id:
            raise no_application()
        return cls(
            application_id=application_id,
            role_arn=role_arn,
            encryption=encryption,
            transport=transport,
            name=name or f"emr-cmk-{uuid.uuid4().hex[:12]}",
            idle_timeout_minutes=idle_timeout_minutes,
            conf=pairs(conf, "--conf"),
            tags=tags,
            kind=kind,
            keep=keep,
            skip_check=skip_check,
            session_key_override=session_key_override,
            start_application=start_application,
            timeout=timeout,
            owner=Owner.here(keep=keep),
        )

    @classmethod
    def from_options(
        cls,
        options: argparse.Namespace,
        application_id: str | None,
        role_arn: str | None,
        key: str | None,
        context: Pairs,
        *,
        transport: str = "livy",
        **more: Any,
    ) -> SessionRequest:
        """The request for what ``add_start_options`` parsed, with the given application, role,
        key and context (``transport`` when the options name none)."""
        return cls.build(
            application_id,
            role_arn,
            key,
            context,
            name=options.name,
            idle_timeout_minutes=options.idle_timeout,
            conf=options.conf,
            tags=options.tag,
            transport=options.transport or transport,
            skip_check=options.skip_check,
            session_key_override=options.session_key_override,
            **more,
        )

    def remote_name(self) -> str:
        """The name the session is created with (a Livy name carries its owner)."""
        if self.transport == "livy" and self.owner is not None:
            return self.owner.stamp(self.name)
        return self.name

    def remote_tags(self) -> dict[str, str]:
        """The tags the session is created with (a Spark Connect session's carry its owner)."""
        return {**self.tags, **(self.owner.tags() if self.owner else {})}

    def started(
        self,
        session_id: int | str,
        state: str,
        key: tuple[str, str | None, dict[str, str]],
        started_at: float,
    ) -> SessionInfo:
        """What a user reads about the session this request started; ``key`` is what
        ``key_in_effect`` says protects it."""
        source, key_arn, pairs = key
        return SessionInfo(
            id=session_id,
            application_id=self.application_id,
            state=state,
            name=self.name,
            transport=self.transport,
            kind=self.kind if self.transport == "livy" else None,
            role_arn=self.role_arn,
            key_arn=key_arn,
            key_source=source,
            context=pairs,
            keep=self.keep,
            started_here=True,
            started_at=started_at,
            owner=self.owner,
            idle_timeout_minutes=self.idle_timeout_minutes,
        )
