"""Spark Connect sessions (``StartSession``, emr-7.13.0+): a real ``SparkSession`` in the notebook.

``start_connect`` checks which key will protect the session, starts it, waits for it, asks
``GetSessionEndpoint`` for the endpoint and an auth token, and connects pyspark's Spark Connect
client to ``sc://HOST:PORT/;use_ssl=...;x-aws-proxy-auth=TOKEN``. The token is read again before
every call and renewed before ``authTokenExpiresAt``, so an expiring token goes unnoticed. The
session is terminated on ``stop()`` and when the Python process exits (``spark.stop()`` alone
only disconnects; ``TerminateSession`` is what stops billing). The token is never printed.

Versions: the client's pyspark must match the server's Spark: 3.5.x for the emr-7.x releases,
4.0.x for emr-spark-8.x and for the local backend (whatever the release label: pyspark 4.0 is the
first whose wheel ships the Connect server).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import logging
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core import releases
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import ServiceFault, UserError, warn_skipped_check
from emr_cmk_notebook.sessions.conf import check_start, connect_properties, key_in_effect
from emr_cmk_notebook.sessions.results import SESSION_OVERRIDE, SessionInfo
from emr_cmk_notebook.sessions.waiting import Backoff

Progress = Callable[[str], None]
READY = frozenset({"STARTED", "IDLE", "BUSY"})
ENDED = frozenset({"FAILED", "TERMINATING", "TERMINATED"})
# The local backend runs its own pyspark's Connect server (the `local` extra pins 4.0) for every
# release label.
LOCAL_SPARK = "4.0"
# Renew the token when less than this share of its lifetime is left (at most 5 minutes before).
REFRESH_SHARE = 0.25
REFRESH_MOST_SECONDS = 300.0
OVERRIDE_NOTE = (
    "AWS does not document spark.emr-serverless.disk.* properties for StartSession; "
    "the documented route is the application's key. Check with %emr_session verify"
)
AUTH_HEADER = "x-aws-proxy-auth"


class ConnectFailed(ServiceFault):
    """A Spark Connect session ended before it was ready, or could not be reached."""


def _quiet(_: str) -> None:
    return None


def client_spark() -> str:
    """The installed pyspark's ``major.minor``; a one-line error when Connect cannot load."""
    try:
        import pyspark
        from pyspark.sql.connect.client import core  # noqa: F401 -- needs grpcio, pandas...
    except ImportError as exc:
        raise UserError(
            f"the Spark Connect client cannot load: {exc}",
            hint=(
                "pip install 'pyspark[connect]' (3.5.x for emr-7.x; 4.0.x for emr-spark-8.x and "
                "the local backend)"
            ),
        ) from None
    keep_release_pool()
    return ".".join(pyspark.__version__.split(".")[:2])


_TOKEN_FIELD = re.compile(r'("authToken"\s*:\s*")[^"]*(")')


class _RedactTokens(logging.Filter):
    """Blank ``authToken`` values in botocore's debug logs of response bodies."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "authToken" in message:
            record.msg, record.args = _TOKEN_FIELD.sub(r"\1(redacted)\2", message), ()
        return True


def redact_tokens_in_logs() -> None:
    """Keep GetSessionEndpoint's token out of botocore's DEBUG logs (it logs whole bodies)."""
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _RedactTokens) for f in logger.filters):
        logger.addFilter(_RedactTokens())


def keep_release_pool() -> None:
    """Stop one closed ``SparkSession`` from breaking every other one in the process.

    pyspark 3.5 and 4.0 share one ReleaseExecute thread pool among all Spark Connect clients and
    shut it down whenever any client closes, including from ``SparkSession.__del__`` when an old
    session is garbage collected. A query running on another session then fails with "cannot
    schedule new futures after shutdown". Keeping the pool for the life of the process avoids
    that; its idle threads are joined at exit as usual. Checked against pyspark 3.5 and 4.0.
    """
    from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator as It

    if getattr(It.shutdown, "_emr_cmk_kept", False):
        return

    def shutdown(cls: type) -> None:
        return None

    shutdown._emr_cmk_kept = True  # type: ignore[attr-defined]
    It.shutdown = classmethod(shutdown)  # type: ignore[method-assign, assignment]


def check_versions(client: str, server: str, where: str) -> None:
    """Refuse a client whose Spark ``major.minor`` differs from the server's."""
    if client != server:
        raise UserError(
            f"pyspark {client} cannot talk to Spark {server} ({where}): Spark Connect needs "
            "the same major.minor on both sides",
            hint=f"pip install 'pyspark[connect]=={server}.*' in this kernel's environment",
        )


def check_client(app: Any, local: bool) -> None:
    """Refuse, before anything starts, a pyspark that cannot talk to the session's Spark."""
    if local:
        server, where = LOCAL_SPARK, f"the local backend, which runs it for {app.release}"
    else:
        server, where = releases.spark_of(app.release), f"{app.release} on {app.id}"
    if server is not None:
        check_versions(client_spark(), server, where)


def connect_url(endpoint: str, token: str) -> str:
    """The ``sc://`` URL for an endpoint and token (port 443 and TLS unless the endpoint says)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    host = parts.hostname or endpoint
    port = parts.port or 443
    use_ssl = parts.scheme == "https" or parts.port is None
    flag = "true" if use_ssl else "false"
    return f"sc://{host}:{port}/;use_ssl={flag};x-aws-proxy-auth={quote(token, safe='')}"


def is_loopback(endpoint: str) -> bool:
    """Whether the endpoint is on this machine (the local backend)."""
    host = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}").hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ConnectSession:
    """One Spark Connect session started here: its key, its token, and its ``SparkSession``."""

    def __init__(
        self,
        target: AwsTarget,
        application_id: str,
        session_id: str,
        *,
        role_arn: str,
        name: str | None,
        key_arn: str | None,
        key_source: str,
        context: Mapping[str, str],
        started_at: float | None,
        owned: bool = True,
    ):
        self.target = target
        self.application_id = application_id
        self.id = session_id
        self.role_arn = role_arn
        self.name = name
        self.key_arn = key_arn
        self.key_source = key_source
        self.context = dict(context)
        self.started_at = started_at
        self.kind = "connect"
        self.state = "SUBMITTED"
        self.spark: Any = None
        redact_tokens_in_logs()
        self._emr = target.client("emr-serverless")
        self._token: str | None = None
        self._expires_at = 0.0
        self._issued_at = 0.0
        self._endpoint = ""
        self._lock = threading.Lock()
        self._stopped = False
        self.owned = owned
        if owned:
            atexit.register(self.stop)

    # --- state ---------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """GetSession's ``session`` object."""
        session = self._emr.get_session(applicationId=self.application_id, sessionId=self.id)
        self.state = session["session"]["state"]
        return session["session"]

    def wait_ready(self, timeout: float, progress: Progress = _quiet) -> dict[str, Any]:
        """Poll until STARTED/IDLE; a FAILED or TERMINATED session raises with its details."""
        # As for Livy: a GetSession is cheap, so poll often in the first minute.
        backoff = Backoff(first=0.05, most=0.3, later=2.0, later_after=60.0)
        deadline = time.monotonic() + timeout
        while True:
            view = self.view()
            if self.state in READY:
                return view
            if self.state in ENDED:
                details = view.get("stateDetails") or "no details given"
                raise ConnectFailed(
                    f"session {self.id} on {self.application_id} is {self.state}: {details}",
                    operation="StartSession",
                )
            if time.monotonic() > deadline:
                raise ConnectFailed(
                    f"session {self.id} is still {self.state} after {timeout:.0f} s; "
                    "it was terminated",
                    operation="StartSession",
                )
            progress(f"session {self.id} {self.state}")
            time.sleep(backoff.next())

    # --- token ---------------------------------------------------------------------------------

    def current_token(self) -> str:
        """The auth token, renewed with GetSessionEndpoint when it is close to expiring."""
        with self._lock:
            lifetime = self._expires_at - self._issued_at
            margin = min(REFRESH_MOST_SECONDS, REFRESH_SHARE * lifetime)
            if self._token is None or time.time() > self._expires_at - margin:
                self._refresh()
            assert self._token is not None
            return self._token

    def _refresh(self) -> None:
        answer = self._emr.get_session_endpoint(
            applicationId=self.application_id, sessionId=self.id
        )
        expires = answer["authTokenExpiresAt"]
        self._issued_at = time.time()
        self._expires_at = expires.timestamp() if hasattr(expires, "timestamp") else float(expires)
        self._token = answer["authToken"]
        self._endpoint = answer["endpoint"]

    # --- Spark -----------------------------------------------------------------------------------

    def connect(self) -> Any:
        """The ``SparkSession`` of this session (connected on first use)."""
        if self.spark is not None:
            return self.spark
        client = client_spark()
        token = self.current_token()
        from pyspark.sql.connect.session import SparkSession

        builder = _channel_builder(connect_url(self._endpoint, token), self.current_token)
        spark = SparkSession.builder.channelBuilder(builder).create()
        try:
            server = ".".join(spark.version.split(".")[:2])
        except Exception as exc:
            raise ConnectFailed(
                f"could not reach session {self.id} over Spark Connect: "
                f"{type(exc).__name__}; client pyspark {client}",
                operation="Spark Connect",
            ) from None
        check_versions(client, server, f"session {self.id}")
        set_policies = getattr(spark.client, "set_retry_policies", None)
        if set_policies is not None:
            set_policies([_session_aware_policy(self)])
        _make_active(spark)
        self.spark = spark
        return spark

    def ended(self) -> str | None:
        """Why the session can no longer run queries, or None while it is live."""
        try:
            view = self.view()
        except Exception:
            return None
        if self.state in ENDED:
            return f"{self.state}: {view.get('stateDetails') or 'no details given'}"
        return None

    # --- end -------------------------------------------------------------------------------------

    def keep(self) -> None:
        """Leave the session running when this process exits."""
        atexit.unregister(self.stop)

    def disconnect(self) -> None:
        """Close this process's connection only; the session keeps running."""
        spark, self.spark = self.spark, None
        if spark is not None:
            with contextlib.suppress(Exception):
                spark.stop()

    def stop(self, timeout: float = 60.0) -> str:
        """Disconnect and TerminateSession; waits for TERMINATED; returns the last state seen."""
        with self._lock:
            if self._stopped:
                return self.state
            self._stopped = True
        atexit.unregister(self.stop)
        self.disconnect()
        with contextlib.suppress(Exception):
            self.state = terminate(self.target, self.application_id, self.id, timeout)
        return self.state

    def __repr__(self) -> str:  # never the token
        return f"<Spark Connect session {self.id} on {self.application_id}: {self.state}>"


def key_of(app: Any, view: Mapping[str, Any]) -> tuple[str, str | None, dict[str, str]]:
    """Where a session's disk key comes from, the key ARN and its pairs, from its GetSession."""
    overrides = view.get("configurationOverrides") or {}
    properties: dict[str, Any] = {}
    for item in overrides.get("runtimeConfiguration") or []:
        if item.get("classification") == "spark-defaults":
            properties.update(item.get("properties") or {})
    return key_in_effect(properties, app.encryption)


def terminate(
    target: AwsTarget, application_id: str, session_id: str, timeout: float = 60.0
) -> str:
    """TerminateSession, then wait (up to ``timeout``) for TERMINATED; the last state seen."""
    from emr_cmk_notebook import apps

    emr = target.client("emr-serverless")
    get = emr.get_session
    state = apps._call("GetSession", get, applicationId=application_id, sessionId=session_id)[
        "session"
    ]["state"]
    if state not in ENDED:
        apps._call("TerminateSession", emr.terminate_session, applicationId=application_id,
                   sessionId=session_id)  # fmt: skip
    deadline = time.monotonic() + timeout
    while state not in ("TERMINATED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.2)
        state = get(applicationId=application_id, sessionId=session_id)["session"]["state"]
    return state


def session_info(app: Any, view: Mapping[str, Any]) -> SessionInfo:
    """What a user reads about a Spark Connect session, from its GetSession view."""
    source, key_arn, pairs = key_of(app, view)
    return SessionInfo(
        id=view["sessionId"],
        application_id=app.id,
        state=view["state"],
        name=view.get("name"),
        kind="connect",
        role_arn=view.get("executionRoleArn"),
        key_arn=key_arn,
        key_source=source,
        context=pairs,
        started_at=_created(view),
    )


def describe(target: AwsTarget, application_id: str, session_id: str) -> SessionInfo:
    """A Spark Connect session's state and disk key, without connecting to it."""
    from emr_cmk_notebook import apps

    app = apps.get_application(target, application_id)
    view = apps._call("GetSession", target.client("emr-serverless").get_session,
                      applicationId=app.id, sessionId=session_id)["session"]  # fmt: skip
    return session_info(app, view)


def _created(view: Mapping[str, Any]) -> float | None:
    created = view.get("createdAt")
    if created is None:
        return None
    return created.timestamp() if hasattr(created, "timestamp") else float(created)


def attach_connect(target: AwsTarget, application_id: str, session_id: str) -> ConnectSession:
    """A running Spark Connect session started elsewhere, connected (never terminated at exit)."""
    from emr_cmk_notebook import apps

    app = apps.get_application(target, application_id)
    view = apps._call(
        "GetSession",
        target.client("emr-serverless").get_session,
        applicationId=app.id,
        sessionId=str(session_id),
    )["session"]
    if view["state"] not in READY:
        raise UserError(
            f"session {session_id} is {view['state']}; only a STARTED or IDLE session can be used",
            hint="start a new one with %emr_session start --transport connect",
        )
    source, key_arn, pairs = key_of(app, view)
    session = ConnectSession(
        target, app.id, view["sessionId"], role_arn=view.get("executionRoleArn", ""),
        name=view.get("name"), key_arn=key_arn, key_source=source, context=pairs,
        started_at=_created(view), owned=False,
    )  # fmt: skip
    session.state = view["state"]
    session.connect()
    return session


def list_connect(target: AwsTarget, app: Any) -> list[SessionInfo]:
    """The application's live Spark Connect sessions (a GetSession each, to read its key)."""
    from emr_cmk_notebook import apps

    emr = target.client("emr-serverless")
    live = ["SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY"]
    found = []
    for page in emr.get_paginator("list_sessions").paginate(applicationId=app.id, states=live):
        for summary in page["sessions"]:
            view = apps._call("GetSession", emr.get_session, applicationId=app.id,
                              sessionId=summary["sessionId"])["session"]  # fmt: skip
            found.append(session_info(app, view))
    return found


def _make_active(spark: Any) -> None:
    """Make ``spark`` the session pyspark's helpers use (``udf``, ``SparkSession.active()``).

    pyspark only makes a new session active when none is, so after a session ends (idle timeout,
    server gone) the old one would stay active and those helpers would retry against it.
    """
    from pyspark.sql.connect.session import SparkSession

    with SparkSession._lock:
        SparkSession._default_session = spark
        SparkSession._active_session.session = spark


def _session_aware_policy(session: ConnectSession) -> Any:
    """pyspark's default retries (about ten minutes), cut short once the session has ended."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    class SessionAwarePolicy(DefaultPolicy):
        def can_retry(self, e: BaseException) -> bool:
            if not super().can_retry(e):
                return False
            why = session.ended()
            if why is not None:
                raise ConnectFailed(
                    f"session {session.id} is {why}; start a new session",
                    operation="Spark Connect",
                )
            return True

    return SessionAwarePolicy()


class _FreshMetadata(list):  # type: ignore[type-arg]
    """gRPC metadata whose ``x-aws-proxy-auth`` is read when it is sent, not when it was made.

    pyspark keeps the metadata of a running query for its later ReattachExecute and
    ReleaseExecute calls; a plain list would send the token the query started with, which may
    have expired by then.
    """

    def __init__(self, kept: list[tuple[str, str]], token: Callable[[], str]):
        super().__init__([*kept, (AUTH_HEADER, "")])
        self._kept = kept
        self._token = token

    def __iter__(self) -> Any:
        yield from self._kept
        yield (AUTH_HEADER, self._token())

    def __repr__(self) -> str:  # never the token
        return f"{[k for k, _ in self._kept] + [AUTH_HEADER]!r}"


def _channel_builder(url: str, token: Callable[[], str]) -> Any:
    """A channel builder whose ``x-aws-proxy-auth`` is read again for every call."""
    try:
        from pyspark.sql.connect.client import DefaultChannelBuilder as Base
    except ImportError:  # pyspark 3.5 names the default builder ChannelBuilder
        from pyspark.sql.connect.client import ChannelBuilder as Base

    class FreshTokenChannelBuilder(Base):
        def metadata(self) -> list[tuple[str, str]]:
            kept = [(k, v) for k, v in super().metadata() if k != AUTH_HEADER]
            return _FreshMetadata(kept, token)

    return FreshTokenChannelBuilder(url)


def start_connect(
    target: AwsTarget,
    application_id: str,
    role_arn: str | None,
    key: str | None = None,
    context: Mapping[str, str] | list[str] | None = None,
    *,
    session_key_override: bool = False,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    idle_timeout_minutes: int | None = None,
    conf: Mapping[str, str] | None = None,
    skip_check: bool = False,
    start_application: bool = True,
    timeout: float = 900.0,
    progress: Progress = _quiet,
) -> ConnectSession:
    """Start a Spark Connect session and connect to it; nothing is left running on failure.

    With ``key``, the application's key must be ``key`` (the documented route) unless
    ``session_key_override``; either way the readiness check runs first unless ``skip_check``.
    """
    from emr_cmk_notebook import apps

    role_arn = check_start(role_arn, key, context, idle_timeout_minutes)
    if session_key_override and not key:
        raise UserError("--session-key-override needs --key")
    if not application_id:
        raise UserError(
            "no application given", hint="pass --application-id or set EmrCmk.default_application"
        )
    app = apps.get_application(target, application_id)
    _check_application(app)
    check_client(app, _local_target(target))
    encryption = DiskEncryption.from_parts(key, context) if key else None
    if encryption is None:
        properties = connect_properties(conf, None)
    else:
        for message in encryption.secret_warnings():
            warnings.warn(message, UserWarning, stacklevel=2)
        encryption = apps.resolve_encryption(target, encryption)
        properties = connect_properties(conf, encryption if session_key_override else None)
        if not session_key_override:
            _require_application_key(app, encryption)
        _gate(target, encryption, app.id, role_arn, skip_check)
    app = apps.ensure_started(
        target, app, may_start=start_application, timeout=timeout, progress=progress
    )
    source, key_arn, pairs = key_in_effect(properties, app.encryption)
    if source == SESSION_OVERRIDE:
        warnings.warn(OVERRIDE_NOTE, UserWarning, stacklevel=2)
    request: dict[str, Any] = {
        "applicationId": app.id,
        "executionRoleArn": role_arn,
        "clientToken": str(uuid.uuid4()),
        "name": name or f"emr-cmk-{uuid.uuid4().hex[:12]}",
    }
    if tags:
        request["tags"] = dict(tags)
    if idle_timeout_minutes is not None:
        request["idleTimeoutMinutes"] = idle_timeout_minutes
    if properties:
        request["configurationOverrides"] = {
            "runtimeConfiguration": [{"classification": "spark-defaults", "properties": properties}]
        }
    began = time.time()
    started = apps._call("StartSession", target.client("emr-serverless").start_session, **request)
    session = ConnectSession(
        target,
        app.id,
        started["sessionId"],
        role_arn=role_arn,
        name=request["name"],
        key_arn=key_arn,
        key_source=source,
        context=pairs,
        started_at=began,
    )
    try:
        session.wait_ready(timeout, progress)
        progress(f"session {session.id} connecting")
        session.connect()
    except BaseException:
        # Fail closed: a session nobody can use must not keep billing.
        session.stop()
        raise
    return session


def _gate(
    target: AwsTarget, encryption: DiskEncryption, app_id: str, role_arn: str, skip: bool
) -> None:
    if skip:
        warn_skipped_check(encryption.key_arn, "session fails to start")
        return
    from emr_cmk_notebook.readiness import require_ready

    require_ready(encryption, app_id, role_arn, target=target, transport="connect")


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
