"""The Spark Connect transport (``StartSession``, emr-7.13.0+): a real ``SparkSession`` in the
notebook.

``start_connect`` checks which key will protect the session, passes the gate, starts the session,
waits for it and connects pyspark's Spark Connect client to it (``connect_session``); the token
lives in ``connect_token``, pyspark's patches in ``pyspark_compat``, listings in
``connect_listing``. The token is never printed.

Versions: the client's pyspark must match the server's Spark: 3.5.x for the emr-7.x releases,
4.0.x for emr-spark-8.x and for the local backend (whatever the release label: pyspark 4.0 is the
first whose wheel ships the Connect server).
"""

from __future__ import annotations

import ipaddress
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core import releases
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.conf import connect_properties, key_in_effect
from emr_cmk_notebook.sessions.connect_listing import apply_view, describe, list_connect
from emr_cmk_notebook.sessions.connect_session import (
    ENDED,
    ConnectSession,
    check_versions,
)
from emr_cmk_notebook.sessions.gate import pass_gate
from emr_cmk_notebook.sessions.pyspark_compat import client_spark
from emr_cmk_notebook.sessions.request import SessionRequest
from emr_cmk_notebook.sessions.results import SESSION_OVERRIDE, SessionInfo, SessionLog
from emr_cmk_notebook.sessions.transport import Progress, StatementProgress

# The local backend runs its own pyspark's Connect server (the `local` extra pins 4.0) for every
# release label.
LOCAL_SPARK = "4.0"
OVERRIDE_NOTE = (
    "AWS does not document spark.emr-serverless.disk.* properties for StartSession; "
    "the documented route is the application's key. Check with %emr_session verify"
)


def check_client(app: Any, local: bool) -> None:
    """Refuse, before anything starts, a pyspark that cannot talk to the session's Spark."""
    if local:
        server, where = LOCAL_SPARK, f"the local backend, which runs it for {app.release}"
    else:
        server, where = releases.spark_of(app.release), f"{app.release} on {app.id}"
    if server is not None:
        check_versions(client_spark(), server, where)


def is_loopback(endpoint: str) -> bool:
    """Whether the endpoint is on this machine (the local backend)."""
    host = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}").hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def start_connect(target: AwsTarget, request: SessionRequest, progress: Progress) -> ConnectSession:
    """Start a Spark Connect session and connect to it; nothing is left running on failure.

    With a key, the application's key must be that key (the documented route) unless
    ``session_key_override``; either way the gate runs first.
    """
    from emr_cmk_notebook import apps

    app = apps.get_application(target, request.application_id)
    _check_application(app)
    check_client(app, _local_target(target))
    encryption = request.encryption
    if encryption is not None:
        encryption = pass_gate(
            target, encryption, app.id, request.role_arn, transport="connect",
            skip_check=request.skip_check,
            also=None if request.session_key_override else _application_key_of(app),
        )  # fmt: skip
    override = encryption if request.session_key_override else None
    properties = connect_properties(request.conf, override)
    app = apps.ensure_started(
        target, app, may_start=request.start_application, timeout=request.timeout,
        progress=progress,
    )  # fmt: skip
    key = key_in_effect(properties, app.encryption)
    if key[0] == SESSION_OVERRIDE:
        warnings.warn(OVERRIDE_NOTE, UserWarning, stacklevel=2)
    call: dict[str, Any] = {
        "applicationId": app.id,
        "executionRoleArn": request.role_arn,
        "clientToken": str(uuid.uuid4()),
        "name": request.name,
    }
    tags = request.remote_tags()
    if tags:
        call["tags"] = tags
    if request.idle_timeout_minutes is not None:
        call["idleTimeoutMinutes"] = request.idle_timeout_minutes
    if properties:
        call["configurationOverrides"] = {
            "runtimeConfiguration": [{"classification": "spark-defaults", "properties": properties}]
        }
    began = time.time()
    started = target.client("emr-serverless").start_session(**call)
    info = request.started(started["sessionId"], "SUBMITTED", key, began)
    session = ConnectSession(target, info)
    try:
        session.wait_ready(request.timeout, progress)
        progress(f"session {session.id} connecting")
        session.connect()
    except BaseException:
        # Fail closed: a session nobody can use must not keep billing.
        _stop_after_failure(session)
        raise
    if request.keep:
        session.keep()
    return session


def _stop_after_failure(session: ConnectSession) -> None:
    try:
        session.stop()
    except Exception as exc:  # the start's own error matters more; this one is said too
        warnings.warn(
            f"session {session.id} could not be terminated ({exc}); it is terminated when "
            "Python exits, or stop it with %emr_session stop",
            UserWarning,
            stacklevel=3,
        )


def _check_application(app: Any) -> None:
    if releases.supports(app.release, releases.SESSIONS) is False:
        raise UserError(
            f"application {app.id} runs {app.release}; Spark Connect sessions need "
            f"{releases.SESSIONS} or later",
            hint=f"create an application on {releases.SESSIONS} or later, or use --transport livy",
        )
    if not app.sessions_enabled:
        raise UserError(
            f"application {app.id} does not have sessions enabled",
            hint=f"%emr_app update --application-id {app.id} --sessions --restart",
        )


def application_problem(app: Any) -> str | None:
    """Why an application cannot run Spark Connect sessions (one line), or None."""
    return _as_problem(_check_application, app)


def application_key_problem(app: Any, wanted: DiskEncryption) -> str | None:
    """Why ``wanted`` (a key ARN and context) is not the key the application's sessions use."""
    return _as_problem(_require_application_key, app, wanted)


def _as_problem(check: Callable[..., None], *args: Any) -> str | None:
    try:
        check(*args)
    except UserError as exc:
        return f"{exc}; {exc.hint}" if exc.hint else str(exc)
    return None


def _application_key_of(app: Any) -> Callable[[DiskEncryption], None]:
    return lambda wanted: _require_application_key(app, wanted)


def _require_application_key(app: Any, wanted: DiskEncryption) -> None:
    """The documented route: the session uses the application's key, so it must be ``wanted``."""
    current = app.encryption
    same = (
        current is not None
        and current.key == wanted.key_arn
        and dict(current.context) == dict(wanted.context)
    )
    if same:
        return

    def described(key: str, pairs: Mapping[str, str]) -> str:
        context = ", ".join(f"{k}={v}" for k, v in pairs.items())
        return f"{key} with context {context}" if context else key

    have = described(current.key, current.context) if current else "the AWS owned key"
    context = "".join(f" --context {k}={v}" for k, v in wanted.context.items())
    raise UserError(
        f"application {app.id} encrypts session disks with {have}, not "
        f"{described(wanted.key_arn, wanted.context)}; Spark Connect sessions use the "
        "application's key",
        hint=(
            f"%emr_app update --application-id {app.id} --key {wanted.key_arn}{context} --restart"
            " sets it; --session-key-override passes the key per session instead, which AWS "
            "does not document for StartSession"
        ),
    )


def _local_target(target: AwsTarget) -> bool:
    endpoint = target.endpoint_url
    if endpoint is None:
        from emr_cmk_notebook.clients import service_endpoint

        endpoint = service_endpoint("emr-serverless")
    return bool(endpoint) and is_loopback(endpoint)


class ConnectTransport:
    """Spark Connect sessions behind the transport interface; keeps the live ``ConnectSession``
    (and its ``spark``) of every session this process started or attached to."""

    name = "connect"

    def __init__(self, target_of: Callable[[], AwsTarget]):
        self._target_of = target_of
        self._sessions: dict[str, ConnectSession] = {}

    def start(self, request: SessionRequest, progress: Progress) -> SessionInfo:
        session = start_connect(self._target_of(), request, progress)
        self._sessions[session.id] = session
        return session.info

    def attach(self, application_id: str, session_id: int | str) -> SessionInfo:
        from emr_cmk_notebook import apps

        target = self._target_of()
        return describe(target, apps.get_application(target, application_id), str(session_id))

    def ended(self, state: str) -> bool:
        return state in ENDED

    def session(self, info: SessionInfo) -> ConnectSession:
        """The live session of ``info`` (one attached to is never terminated at exit)."""
        session = self._sessions.get(str(info.id))
        if session is None:
            session = ConnectSession(self._target_of(), info, owned=False)
            self._sessions[session.id] = session
        return session

    def status(self, info: SessionInfo) -> SessionInfo:
        return apply_view(info, self.session(info).view())

    def logs(self, info: SessionInfo, size: int) -> SessionLog:
        raise UserError(
            f"session {info.id} is a Spark Connect session; the sessions API has no log",
            hint=(
                "its Spark UI and logs are behind GetResourceDashboard (resourceType SESSION),"
                " the launcher's dashboard link"
            ),
        )

    def run(self, info: SessionInfo, code: str, kind: str, progress: StatementProgress,
            timeout: float | None) -> Any:  # fmt: skip
        raise _no_statements(info)

    def cancel(self, info: SessionInfo, statement_id: int) -> None:
        raise _no_statements(info)

    def stop(self, info: SessionInfo) -> str:
        session = self.session(info)
        state = session.stop()
        self._sessions.pop(session.id, None)
        return state

    def disconnect(self, info: SessionInfo) -> None:
        """Close this process's connection to the session only; it keeps running."""
        session = self._sessions.pop(str(info.id), None)
        if session is not None:
            session.keep()
            session.disconnect()

    def list(self, app: Any) -> list[SessionInfo]:
        if not app.sessions_enabled:
            return []
        return list_connect(self._target_of(), app)


def _no_statements(info: SessionInfo) -> UserError:
    return UserError(
        f"session {info.id} is a Spark Connect session: it runs no statements",
        hint="use the spark variable",
    )
