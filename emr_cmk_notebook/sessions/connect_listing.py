"""What a user reads about Spark Connect sessions, from GetSession and ListSessions, without
connecting to them: state, execution role, and which key protects the worker disks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.resource_usage import utilization
from emr_cmk_notebook.sessions.conf import key_in_effect
from emr_cmk_notebook.sessions.lifetime import epoch
from emr_cmk_notebook.sessions.owner import Owner
from emr_cmk_notebook.sessions.results import SessionInfo

LIVE = ("SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY")


def key_of(app: Any, view: Mapping[str, Any]) -> tuple[str, str | None, dict[str, str]]:
    """Where a session's disk key comes from, the key ARN and its pairs, from its GetSession."""
    overrides = view.get("configurationOverrides") or {}
    properties: dict[str, Any] = {}
    for item in overrides.get("runtimeConfiguration") or []:
        if item.get("classification") == "spark-defaults":
            properties.update(item.get("properties") or {})
    return key_in_effect(properties, app.encryption)


def session_info(app: Any, view: Mapping[str, Any]) -> SessionInfo:
    """What a user reads about a Spark Connect session, from its GetSession view."""
    source, key_arn, pairs = key_of(app, view)
    info = SessionInfo(
        id=view["sessionId"],
        application_id=app.id,
        state=view["state"],
        name=view.get("name"),
        transport="connect",
        kind=None,
        role_arn=view.get("executionRoleArn"),
        key_arn=key_arn,
        key_source=source,
        context=pairs,
        owner=Owner.from_tags(view.get("tags")),
    )
    return apply_view(info, view)


def apply_view(info: SessionInfo, view: Mapping[str, Any]) -> SessionInfo:
    """``info`` with the state and lifetime GetSession says: started, idle since, timeout, usage."""
    info.state = view["state"]
    # When it was asked for (evidence of its key is searched from then on), not ``startedAt``.
    info.started_at = info.started_at or created(view)
    # A session with nothing running is STARTED until it first runs something, then IDLE.
    quiet = view["state"] in ("STARTED", "IDLE")
    info.idle_since = epoch(view.get("idleSince")) if quiet else None
    info.idle_timeout_minutes = view.get("idleTimeoutMinutes") or info.idle_timeout_minutes
    info.utilization = utilization(view)
    return info


def get_session(target: AwsTarget, application_id: str, session_id: str) -> dict[str, Any]:
    """GetSession's ``session`` object."""
    emr = target.client("emr-serverless")
    return emr.get_session(applicationId=application_id, sessionId=str(session_id))["session"]


def describe(target: AwsTarget, app: Any, session_id: str) -> SessionInfo:
    """A Spark Connect session's state and disk key, without connecting to it."""
    return session_info(app, get_session(target, app.id, session_id))


def created(view: Mapping[str, Any]) -> float | None:
    """When the session was created, in epoch seconds (None when not said)."""
    return epoch(view.get("createdAt"))


def list_connect(target: AwsTarget, app: Any) -> list[SessionInfo]:
    """The application's live Spark Connect sessions (a GetSession each, to read its key)."""
    emr = target.client("emr-serverless")
    found = []
    pages = emr.get_paginator("list_sessions").paginate(applicationId=app.id, states=list(LIVE))
    for page in pages:
        for summary in page["sessions"]:
            found.append(describe(target, app, summary["sessionId"]))
    return found
