"""The Livy endpoint of each local EMR Serverless application: ``{endpoint}/livy/{applicationId}``.

Every request must be SigV4-signed for ``emr-serverless`` by a caller allowed
``emr-serverless:AccessLivyEndpoints`` on the application (and ``iam:PassRole`` on the execution
role to create a session). The application must be the caller's,
have ``interactiveConfiguration.livyEndpointEnabled`` and be STARTED; sessions are visible only to
the principal that created them, at most ``session_limit`` live ones per application. Errors of
the AWS layer (signature, application) answer like EMR Serverless (``{"message"}`` plus
``x-amzn-ErrorType``); errors of the Livy layer answer like Livy (``{"msg"}``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from emr_cmk_notebook.core import releases
from emr_cmk_notebook.core.arns import role_arn_problem
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.local import accounts
from emr_cmk_notebook.local.emr import EmrServerless, KeyService
from emr_cmk_notebook.local.emr_jobs import session_disk
from emr_cmk_notebook.local.errors import AwsError, validation
from emr_cmk_notebook.local.identity import Identity
from emr_cmk_notebook.local.livy_session import (
    MESSAGE_LIMIT_SETTING,
    LivySession,
    SessionSpec,
    Statement,
)
from emr_cmk_notebook.local.session_host import SessionHost
from emr_cmk_notebook.local.settings import checked_setting
from emr_cmk_notebook.local.spark_driver import FORCED_SPARK_CONF
from emr_cmk_notebook.local.wire import ApiResponse, rest_json_error

PREFIX = "/livy/"
SERVICE = "emr-serverless"
# The IAM action every Livy endpoint request needs on the application.
ACCESS = "AccessLivyEndpoints"
EXECUTION_ROLE = "emr-serverless.session.executionRoleArn"
# Livy's livy.server.session.timeout default: idle sessions end after an hour.
IDLE_TIMEOUT_SECONDS = 3600.0
KINDS = ("pyspark", "sql")
_TTL = re.compile(r"\s*(\d+)\s*(ms|s|m|min|h|d)?\s*")
_TTL_UNITS = {"ms": 0.001, "s": 1, None: 0.001, "m": 60, "min": 60, "h": 3600, "d": 86400}
# Livy's request fields that map onto Spark settings.
_RESOURCE_FIELDS = {
    "driverMemory": "spark.driver.memory",
    "driverCores": "spark.driver.cores",
    "executorMemory": "spark.executor.memory",
    "executorCores": "spark.executor.cores",
    "numExecutors": "spark.executor.instances",
}
_SESSION_FIELDS = {"kind", "name", "conf", "ttl", "heartbeatTimeoutInSecond", *_RESOURCE_FIELDS}


class LivyError(Exception):
    """A Livy-level refusal: ``{"msg": ...}`` with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, data: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
    return ApiResponse(
        status,
        json.dumps(data, default=str).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def livy_url(endpoint: str, application: Mapping[str, Any]) -> str | None:
    """The local Livy URL of an application, or None when its Livy endpoint is off."""
    enabled = (application.get("interactiveConfiguration") or {}).get("livyEndpointEnabled")
    return f"{endpoint}{PREFIX}{application['applicationId']}" if enabled else None


class LivyEndpoint(SessionHost):
    """Livy sessions of every application of the local backend."""

    reaper_name = "livy-idle"

    def __init__(self, emr: EmrServerless, keys: KeyService, work_dir: Path):
        super().__init__(emr, keys, work_dir)
        self.idle_timeout = IDLE_TIMEOUT_SECONDS
        self.start_delay = 0.0
        self._sessions: dict[str, dict[int, LivySession]] = {}
        self._next_id: dict[str, int] = {}

    # --- settings and lifecycle ------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {
            "livy_session_limit": self.session_limit,
            "livy_idle_timeout": self.idle_timeout,
            "livy_start_delay": self.start_delay,
        }

    def update_settings(
        self,
        *,
        session_limit: int | None = None,
        idle_timeout: float | None = None,
        start_delay: float | None = None,
    ) -> None:
        """Change the live-session limit, the default idle timeout (s) and the start delay (s)."""
        if session_limit is not None:
            self.session_limit = checked_setting("livy_session_limit", session_limit)
        if idle_timeout is not None:
            self.idle_timeout = checked_setting("livy_idle_timeout", idle_timeout)
        if start_delay is not None:
            self.start_delay = checked_setting("livy_start_delay", start_delay)

    def _take_all(self) -> list[LivySession]:
        sessions = self._all()
        self._sessions.clear()
        self._next_id.clear()
        return sessions

    def _all(self) -> list[LivySession]:
        return [s for by_id in self._sessions.values() for s in by_id.values()]

    def _end(self, session: LivySession) -> None:
        session.stop()

    # --- HTTP ------------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, query_string: str, headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        """Answer one request to ``/livy/{applicationId}/...``."""
        try:
            signed, identity = accounts.authenticate(
                method, raw_path, query_string, headers, body, service=SERVICE
            )
            app_id, _, rest = raw_path[len(PREFIX) :].partition("/")
            self.emr.authorize(identity, signed.region, ACCESS, {"applicationId": app_id})
            app = self._usable_application(identity, signed.region, app_id)
            return self._route(method, "/" + rest, query_string, body, identity, app)
        except AwsError as err:
            return rest_json_error(err)
        except LivyError as err:
            return _json(err.status, {"msg": err.message})

    def _usable_application(self, identity: Identity, region: str, app_id: str) -> dict[str, Any]:
        app = self.emr.application_view(identity.account_id, region, app_id)
        if not (app.get("interactiveConfiguration") or {}).get("livyEndpointEnabled"):
            raise validation(
                f"Application {app_id} does not have the Livy endpoint enabled; set "
                "interactiveConfiguration.livyEndpointEnabled to true with UpdateApplication"
            )
        if app["state"] != "STARTED":
            raise validation(
                f"Application {app_id} is {app['state']}, not STARTED; start it with "
                "StartApplication before using its Livy endpoint"
            )
        return app

    def _route(
        self,
        method: str,
        path: str,
        query_string: str,
        body: bytes,
        identity: Identity,
        app: dict[str, Any],
    ) -> ApiResponse:
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "sessions":
            raise LivyError(404, f"Livy has no resource {path}")
        if len(parts) == 1:
            if method == "POST":
                session = self._create(identity, app, _body(body))
                headers = {"Location": f"/sessions/{session.id}"}
                return _json(201, session.view(), headers)
            if method == "GET":
                return _json(200, self._list(identity, app["applicationId"], query))
            raise LivyError(405, f"{method} is not allowed on /sessions")
        session = self._session(identity, app["applicationId"], parts[1])
        handler = _SESSION_ROUTES.get((method, *_shape(parts[2:])))
        if handler is None:
            raise LivyError(404, f"Livy has no resource {method} {path}")
        return handler(self, session, parts[2:], query, body)

    # --- sessions --------------------------------------------------------------------------------

    def _create(self, identity: Identity, app: dict[str, Any], data: dict[str, Any]) -> LivySession:
        unknown = sorted(set(data) - _SESSION_FIELDS)
        if unknown:
            raise LivyError(
                400,
                f"Unsupported field(s) {unknown} in the session request; the local Livy endpoint "
                f"takes {sorted(_SESSION_FIELDS)}",
            )
        kind = data.get("kind") or "pyspark"
        if kind not in KINDS:
            raise LivyError(400, f"Session kind {kind!r} is not supported here; use pyspark or sql")
        conf = _conf(data.get("conf"))
        role = conf.get(EXECUTION_ROLE)
        if not role:
            raise LivyError(
                400, f"conf must set {EXECUTION_ROLE} to the ARN of the session's execution role"
            )
        problem = role_arn_problem(role)
        if problem:
            raise LivyError(400, f"{EXECUTION_ROLE} {role!r} {problem}")
        if not conf.get(MESSAGE_LIMIT_SETTING, "1").isdigit():
            raise LivyError(400, f"conf {MESSAGE_LIMIT_SETTING} must be a number of bytes")
        ttl, ttl_seconds = _ttl(data.get("ttl"), app["releaseLabel"])
        region = app["arn"].split(":")[3]
        passed = {"applicationId": app["applicationId"], "executionRoleArn": role}
        self.emr.authorize(identity, region, ACCESS, passed)
        disk = self._disk(identity, app, conf)
        spark_conf = {k: v for k, v in conf.items() if k.startswith("spark.")}
        spark_conf = {
            k: v for k, v in spark_conf.items() if not k.startswith("spark.emr-serverless.")
        }
        for name, setting in _RESOURCE_FIELDS.items():
            if data.get(name) is not None:
                spark_conf[setting] = str(data[name])
        app_id = app["applicationId"]
        with self._lock:
            sessions = self._sessions.setdefault(app_id, {})
            live = [s for s in sessions.values() if s.live]
            if len(live) >= self.session_limit:
                raise LivyError(
                    400,
                    f"Application {app_id} already has {len(live)} active Livy sessions, the most "
                    f"it can have ({self.session_limit}); delete a session you no longer need",
                )
            name = data.get("name")
            if name is not None and any(s.spec.name == name for s in live):
                raise LivyError(400, f"Duplicate session name: {name}")
            session_id = self._next_id.get(app_id, 0)
            self._next_id[app_id] = session_id + 1
            spec = SessionSpec(
                id=session_id,
                app_id=app_id,
                app_arn=app["arn"],
                account=identity.account_id,
                region=app["arn"].split(":")[3],
                owner=identity.arn or f"arn:aws:iam::{identity.account_id}:root",
                kind=kind,
                name=name,
                conf=conf,
                spark_conf=spark_conf,
                ttl=ttl,
                ttl_seconds=ttl_seconds,
                disk=disk,
            )
            self.work_dir.mkdir(parents=True, exist_ok=True)
            session = LivySession(spec, self.work_dir)
            sessions[session_id] = session
        for key, value in spark_conf.items():
            forced = FORCED_SPARK_CONF.get(key)
            if forced is not None and forced != value:
                session.note(f"{key}={value} ignored: local sessions always run with {forced}")
        session.start(
            lambda: self.emr.execution_role_problem(role),
            self._disk_key_user(spec),
            self.start_delay,
        )
        self._ensure_reaper()
        return session

    def _disk(
        self, identity: Identity, app: dict[str, Any], conf: dict[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        """The key and context the service uses: the session's, else the application's."""
        try:
            own = DiskEncryption.from_livy_conf(conf)
        except UserError as err:
            raise LivyError(400, str(err)) from None
        region = app["arn"].split(":")[3]
        return session_disk(self.keys, identity, region, app, own)

    def _disk_key_user(self, spec: SessionSpec) -> Callable[[str, dict[str, str]], None]:
        def use(key_arn: str, context: dict[str, str]) -> None:
            self.keys.use_key_for_disks(
                account_id=spec.account,
                region=spec.region,
                key_arn=key_arn,
                encryption_context=context,
                source_arn=spec.app_arn,
                role_arn=spec.conf.get(EXECUTION_ROLE),
            )

        return use

    def _list(self, identity: Identity, app_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        start, size = _int(query, "from", 0), _int(query, "size", 100)
        with self._lock:
            mine = [
                s for s in self._sessions.get(app_id, {}).values() if s.spec.owner == identity.arn
            ]
        mine.sort(key=lambda s: s.id)
        return {
            "from": start,
            "total": len(mine),
            "sessions": [s.view() for s in mine[start : start + size]],
        }

    def _session(self, identity: Identity, app_id: str, text: str) -> LivySession:
        with self._lock:
            session = self._sessions.get(app_id, {}).get(int(text)) if text.isdigit() else None
        # Another principal's session answers exactly like one that does not exist.
        if session is None or session.spec.owner != identity.arn:
            raise LivyError(404, f"Session '{text}' not found.")
        return session

    def _delete(self, session: LivySession) -> None:
        session.stop("killed", f"Session {session.id} deleted by its owner")
        with self._lock:
            self._sessions.get(session.spec.app_id, {}).pop(session.id, None)

    # --- idle timeout ----------------------------------------------------------------------------

    def _sweep(self, session: LivySession) -> None:
        timeout = session.spec.ttl_seconds or self.idle_timeout
        if session.live and session.idle_for() > timeout:
            limit = session.spec.ttl or f"{self.idle_timeout:g}s"
            reason = f"Session {session.id} was idle for more than {limit}; stopping it"
            threading.Thread(target=session.stop, args=("dead", reason), daemon=True).start()


# --- session sub-resources --------------------------------------------------------------------


def _shape(parts: list[str]) -> tuple[str, ...]:
    """The route key of a path below ``/sessions/{id}``: numbers become ``#``."""
    return tuple("#" if p.isdigit() else p for p in parts)


def _get_session(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Any, b: bytes):
    return _json(200, s.view())


def _delete_session(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Any, b: bytes):
    ep._delete(s)
    return _json(200, {"msg": "deleted"})


def _get_state(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Any, b: bytes):
    return _json(200, {"id": s.id, "state": s.state})


def _get_log(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Mapping[str, str], b: bytes):
    start = _int(q, "from", None)
    return _json(200, s.log_page(start, _int(q, "size", None)))


def _list_statements(
    ep: LivyEndpoint, s: LivySession, parts: list[str], q: Mapping[str, str], b: bytes
):
    statements = s.statement_views()
    if q.get("order", "").strip().lower() == "desc":
        statements.reverse()
    start = _int(q, "from", 0)
    size = _int(q, "size", len(statements))
    return _json(
        200,
        {"total_statements": len(statements), "statements": statements[start : start + size]},
    )


def _post_statement(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Any, b: bytes):
    data = _body(b)
    code = data.get("code")
    if not isinstance(code, str) or not code.strip():
        raise LivyError(400, 'The statement needs "code": the text to run')
    kind = data.get("kind") or s.spec.kind
    if kind not in KINDS:
        raise LivyError(400, f"Statement kind {kind!r} is not supported here; use pyspark or sql")
    if s.state not in ("starting", "idle", "busy"):
        raise LivyError(
            400, f"Session {s.id} is {s.state}; statements run only in a starting, idle or busy one"
        )
    statement = s.submit(code, kind)
    return _json(201, statement.view(), {"Location": f"/sessions/{s.id}/statements/{statement.id}"})


def _statement(s: LivySession, text: str) -> Statement:
    statement = s.statements.get(int(text))
    if statement is None:
        raise LivyError(404, f"Statement '{text}' not found in session {s.id}.")
    return statement


def _get_statement(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Any, b: bytes):
    return _json(200, _statement(s, parts[1]).view())


def _cancel_statement(ep: LivyEndpoint, s: LivySession, parts: list[str], q: Any, b: bytes):
    s.cancel(_statement(s, parts[1]).id)
    return _json(200, {"msg": "canceled"})


_SESSION_ROUTES: dict[tuple[str, ...], Callable[..., ApiResponse]] = {
    ("GET",): _get_session,
    ("DELETE",): _delete_session,
    ("GET", "state"): _get_state,
    ("GET", "log"): _get_log,
    ("GET", "statements"): _list_statements,
    ("POST", "statements"): _post_statement,
    ("GET", "statements", "#"): _get_statement,
    ("POST", "statements", "#", "cancel"): _cancel_statement,
}


# --- request parsing --------------------------------------------------------------------------


def _body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise LivyError(400, f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LivyError(400, "The request body must be a JSON object")
    return data


def _conf(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LivyError(400, "conf must be an object of Spark setting names to values")
    conf = {}
    for key, item in value.items():
        if isinstance(item, dict | list) or item is None:
            raise LivyError(400, f"conf {key!r} must be a string, not {type(item).__name__}")
        conf[str(key)] = str(item).lower() if isinstance(item, bool) else str(item)
    return conf


def _ttl(value: Any, release: str) -> tuple[str | None, float | None]:
    """Livy's ``ttl`` ("30m", "1h", "90s"...) as text and seconds; AWS takes it from emr-7.8.0."""
    if value is None:
        return None, None
    if releases.supports(release, releases.LIVY_TTL) is False:
        raise LivyError(
            400,
            f"ttl cannot be set on release {release}; the session timeout can be changed from "
            f"{releases.LIVY_TTL} on",
        )
    match = _TTL.fullmatch(str(value))
    if match is None or int(match[1]) == 0:
        raise LivyError(
            400, f"ttl {value!r} is not a time like 30m, 2h or 90s (units: ms, s, m, min, h, d)"
        )
    return str(value), int(match[1]) * _TTL_UNITS[match[2]]


def _int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    if name not in query:
        return default
    try:
        return int(query[name])
    except ValueError:
        raise LivyError(400, f"{name} must be an integer, not {query[name]!r}") from None
