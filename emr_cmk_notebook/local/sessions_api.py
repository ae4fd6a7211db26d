"""The EMR Serverless sessions API of the local backend (emr-7.13.0+, Spark Connect).

``StartSession``, ``GetSession``, ``ListSessions``, ``TerminateSession`` and
``GetSessionEndpoint`` with the real states. A session first has the emulated service use its disk
key exactly as Livy sessions do (the application's ``diskEncryptionConfiguration``, or, as an
emulation assumption AWS does not document, the ``spark.emr-serverless.disk.*`` properties of a
``spark-defaults`` classification in ``runtimeConfiguration``), then starts a local Spark Connect
server behind a proxy that checks the ``authToken`` of ``GetSessionEndpoint``
(see ``connect_server.py``). As the API reference says, the application must be STARTED or have
auto-start enabled; StartSession then starts it and the session waits for it.
"""

from __future__ import annotations

import base64
import copy
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.local import usage
from emr_cmk_notebook.local.emr import Application, EmrServerless, KeyService
from emr_cmk_notebook.local.emr_jobs import (
    application_arn,
    key_failure,
    new_id,
    paginate,
    session_disk,
)
from emr_cmk_notebook.local.errors import AwsError, not_found, validation
from emr_cmk_notebook.local.session_host import SessionHost
from emr_cmk_notebook.local.settings import checked_setting
from emr_cmk_notebook.local.wire import ApiRequest

TOKEN_TTL_SECONDS = 3600.0
# How long a session waits for the application StartSession auto-started.
APPLICATION_START_TIMEOUT = 120.0
DEFAULT_IDLE_TIMEOUT_MINUTES = 60
LIVE_STATES = frozenset({"SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY"})
READY_STATES = frozenset({"STARTED", "IDLE", "BUSY"})
_SUMMARY_FIELDS = (
    "applicationId",
    "sessionId",
    "arn",
    "name",
    "state",
    "stateDetails",
    "releaseLabel",
    "executionRoleArn",
    "createdBy",
    "createdAt",
    "updatedAt",
)


@dataclass
class Session:
    """One session: what it was started with, where it is in its life, and its server."""

    account: str
    region: str
    app_id: str
    id: str
    request: dict[str, Any]
    created_by: str
    release_label: str
    # (key ARN, encryption context including applicationId), or None for an AWS owned key.
    disk: tuple[str, dict[str, str]] | None
    created_at: float
    state: str = "SUBMITTED"
    state_details: str = ""
    updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    idle_since: float | None = None
    server: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def arn(self) -> str:
        return f"{application_arn(self.region, self.account, self.app_id)}/sessions/{self.id}"

    def view(self) -> dict[str, Any]:
        """The ``Session`` shape GetSession answers with."""
        out: dict[str, Any] = {
            "applicationId": self.app_id,
            "sessionId": self.id,
            "arn": self.arn,
            "state": self.state,
            "releaseLabel": self.release_label,
            "executionRoleArn": self.request["executionRoleArn"],
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at or self.created_at,
            "idleTimeoutMinutes": self.request.get("idleTimeoutMinutes")
            or DEFAULT_IDLE_TIMEOUT_MINUTES,
            "tags": dict(self.request.get("tags") or {}),
            # Required by the model: present, and empty, while there is nothing to say.
            "stateDetails": self.state_details,
        }
        optional = {
            "name": self.request.get("name"),
            "configurationOverrides": copy.deepcopy(self.request.get("configurationOverrides")),
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "idleSince": self.idle_since,
        }
        out.update({k: v for k, v in optional.items() if v})
        if self.started_at is not None:
            until = self.ended_at or time.time()
            out.update(usage.figures(until - self.started_at, self._properties()))
        return out

    def _properties(self) -> dict[str, Any]:
        """The session's Spark properties (its spark-defaults runtime configuration)."""
        found: dict[str, Any] = {}
        overrides = self.request.get("configurationOverrides") or {}
        for item in overrides.get("runtimeConfiguration") or []:
            if item.get("classification") == "spark-defaults":
                found.update(item.get("properties") or {})
        return found

    def summary(self) -> dict[str, Any]:
        """The ``SessionSummary`` shape ListSessions answers with."""
        view = self.view()
        return {k: view[k] for k in _SUMMARY_FIELDS if k in view}


class SessionsApi(SessionHost):
    """Spark Connect sessions of every application of the local backend."""

    def __init__(self, emr: EmrServerless, keys: KeyService, work_dir: Path):
        super().__init__(emr, keys, work_dir)
        self.token_ttl = TOKEN_TTL_SECONDS
        # Seconds; 0 means each session's idleTimeoutMinutes.
        self.idle_timeout = 0.0
        self._sessions: dict[str, Session] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        emr.add_tagged_resources("sessions", self._tags_of)

    def operations(self) -> dict[str, Any]:
        """The EMR Serverless operations this module answers, for ``EmrServerless``."""
        return {
            "StartSession": self._start,
            "GetSession": self._get,
            "ListSessions": self._list,
            "TerminateSession": self._terminate,
            "GetSessionEndpoint": self._endpoint,
        }

    # --- settings and lifecycle ------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {
            "session_limit": self.session_limit,
            "session_token_ttl": self.token_ttl,
            "session_idle_timeout": self.idle_timeout,
        }

    def update_settings(
        self,
        *,
        session_limit: int | None = None,
        token_ttl: float | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        """Change the live-session limit, the auth token lifetime (s) and an idle timeout (s)."""
        if session_limit is not None:
            self.session_limit = checked_setting("session_limit", session_limit)
        if token_ttl is not None:
            self.token_ttl = checked_setting("session_token_ttl", token_ttl)
        if idle_timeout is not None:
            # 0 goes back to each session's own idleTimeoutMinutes.
            self.idle_timeout = checked_setting("session_idle_timeout", idle_timeout)

    def _take_all(self) -> list[Session]:
        sessions = self._all()
        self._sessions.clear()
        self._tokens.clear()
        return sessions

    def _all(self) -> list[Session]:
        return list(self._sessions.values())

    def _end(self, session: Session) -> None:
        self._stop(session, "")

    def processes(self) -> list[int]:
        """Process ids of the running Spark Connect servers."""
        with self._lock:
            servers = [s.server for s in self._sessions.values() if s.server is not None]
        return [server.pid for server in servers if server.pid is not None]

    # --- operations ------------------------------------------------------------------------------

    def _start(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        identity = request.identity
        app = self.emr.application_view(identity.account_id, request.region, data["applicationId"])
        token = (app["applicationId"], data["clientToken"])
        with self._lock:
            known = self._sessions.get(self._tokens.get(token, ""))
        if known is not None:
            return _started(known)
        _check_sessions_enabled(app)
        disk = self._disk(request, app, data)
        self.emr.start_for_work(
            identity.account_id, request.region, app["applicationId"], "sessions"
        )
        now = time.time()
        with self._lock:
            live = [
                s
                for s in self._sessions.values()
                if s.app_id == app["applicationId"] and s.state in LIVE_STATES
            ]
            if len(live) >= self.session_limit:
                raise AwsError(
                    "ServiceQuotaExceededException",
                    f"Application {app['applicationId']} already has {len(live)} active "
                    f"sessions, the most it can have ({self.session_limit}); terminate one",
                    402,
                )
            session = Session(
                account=identity.account_id,
                region=request.region,
                app_id=app["applicationId"],
                id=new_id(),
                request={k: v for k, v in data.items() if k != "applicationId"},
                created_by=identity.arn or f"arn:aws:iam::{identity.account_id}:root",
                release_label=app["releaseLabel"],
                disk=disk,
                created_at=now,
            )
            self._sessions[session.id] = session
            self._tokens[token] = session.id
        threading.Thread(
            target=self._launch, args=(session, app), name=f"session-{session.id}", daemon=True
        ).start()
        self._ensure_reaper()
        return _started(session)

    def _get(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        return {"session": self._session(request, data).view()}

    def _list(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        app = self.emr.application_view(
            request.identity.account_id, request.region, data["applicationId"]
        )
        states = set(data.get("states") or LIVE_STATES | {"FAILED", "TERMINATING", "TERMINATED"})
        after, before = data.get("createdAtAfter"), data.get("createdAtBefore")
        with self._lock:
            mine = [
                s
                for s in self._sessions.values()
                if s.app_id == app["applicationId"]
                and s.state in states
                and (after is None or s.created_at >= _epoch(after))
                and (before is None or s.created_at <= _epoch(before))
            ]
        mine.sort(key=lambda s: s.created_at, reverse=True)
        page, token = paginate([s.summary() for s in mine], data)
        return {"sessions": page, **({"nextToken": token} if token else {})}

    def _terminate(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        session = self._session(request, data)
        with session.lock:
            live = session.state in LIVE_STATES
            if live:
                _set_state(session, "TERMINATING", "Session termination requested")
        if live:
            threading.Thread(
                target=self._stop, args=(session, "Session terminated by request"), daemon=True
            ).start()
        return {"applicationId": session.app_id, "sessionId": session.id}

    def _endpoint(self, request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
        session = self._session(request, data)
        with session.lock:
            server = session.server
            if session.state not in READY_STATES or server is None or server.proxy is None:
                raise validation(
                    f"Session {session.id} is {session.state}; its endpoint is available once "
                    "it is STARTED or IDLE"
                )
            # Base64 with '+', '/' and '=' as real tokens can have: clients must percent-encode.
            token = base64.b64encode(secrets.token_bytes(50)).decode()
            expires_at = time.time() + self.token_ttl
            server.tokens.add(token, expires_at)
            port = server.proxy.port
        return {
            "applicationId": session.app_id,
            "sessionId": session.id,
            "endpoint": f"http://127.0.0.1:{port}",
            "authToken": token,
            "authTokenExpiresAt": expires_at,
        }

    # --- helpers ---------------------------------------------------------------------------------

    def _tags_of(self, app: Application, session_id: str) -> dict[str, str]:
        """A session's own tags, for TagResource, UntagResource and ListTagsForResource."""
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.app_id != app.id:
            raise not_found(f"Session {session_id} does not exist in application {app.id}")
        if not isinstance(session.request.get("tags"), dict):
            session.request["tags"] = {}
        return session.request["tags"]

    def _session(self, request: ApiRequest, data: dict[str, Any]) -> Session:
        with self._lock:
            session = self._sessions.get(data["sessionId"])
        if (
            session is None
            or session.app_id != data["applicationId"]
            or (session.account, session.region) != (request.identity.account_id, request.region)
        ):
            raise not_found(
                f"Session {data['sessionId']} does not exist in application {data['applicationId']}"
            )
        return session

    def _disk(
        self, request: ApiRequest, app: dict[str, Any], data: dict[str, Any]
    ) -> tuple[str, dict[str, str]] | None:
        """The key and context the service uses: the override properties', else the app's."""
        properties: dict[str, str] = {}
        overrides = data.get("configurationOverrides") or {}
        for item in overrides.get("runtimeConfiguration") or []:
            if item.get("classification") == "spark-defaults":
                properties.update(item.get("properties") or {})
        try:
            override = DiskEncryption.from_livy_conf(properties)
        except UserError as err:
            raise validation(str(err)) from None
        return session_disk(self.keys, request.identity, request.region, app, override)

    def _launch(self, session: Session, app: dict[str, Any]) -> None:
        with session.lock:
            _set_state(session, "STARTING")
        if not self._application_started(session):
            return
        problem = self.emr.execution_role_problem(session.request["executionRoleArn"])
        if problem:
            self._fail(session, problem)
            return
        if session.disk is not None:
            key_arn, context = session.disk
            try:
                self.keys.use_key_for_disks(
                    account_id=session.account,
                    region=session.region,
                    key_arn=key_arn,
                    encryption_context=context,
                    source_arn=app["arn"],
                    role_arn=session.request["executionRoleArn"],
                )
            except AwsError as err:
                self._fail(session, key_failure(key_arn, err))
                return
        try:
            from emr_cmk_notebook.local.connect_server import ConnectServer
        except ImportError:
            self._fail(
                session,
                "The local backend cannot run Spark Connect: install pyspark[connect] 4.0 "
                "in the backend's Python",
            )
            return
        server = ConnectServer(f"connect-{session.id}", self.work_dir, _spark_conf(session.request))
        with session.lock:
            if session.state != "STARTING":
                return
            session.server = server
        try:
            server.start(lambda count: self._activity(session, count))
        except RuntimeError as err:
            server.stop()
            self._fail(session, f"The Spark Connect server did not start: {err}")
            return
        with session.lock:
            if session.state != "STARTING":
                stopped = True
            else:
                stopped = False
                session.started_at = session.idle_since = time.time()
                _set_state(session, "STARTED")
        if stopped:
            server.stop()

    def _application_started(self, session: Session) -> bool:
        """Wait while StartSession's auto-start brings the application up; False if it did not."""
        deadline = time.monotonic() + APPLICATION_START_TIMEOUT
        while True:
            try:
                state = self.emr.application_view(session.account, session.region, session.app_id)[
                    "state"
                ]
            except AwsError:
                state = "TERMINATED"
            if state == "STARTED":
                return True
            with session.lock:
                if session.state != "STARTING":
                    return False
            if state != "STARTING" or time.monotonic() > deadline:
                self._fail(session, f"Application {session.app_id} is {state}, not STARTED")
                return False
            time.sleep(0.05)

    def _activity(self, session: Session, in_flight: int) -> None:
        with session.lock:
            if session.state not in READY_STATES:
                return
            if in_flight:
                session.idle_since = None
                _set_state(session, "BUSY")
            else:
                session.idle_since = time.time()
                _set_state(session, "IDLE")

    def _fail(self, session: Session, details: str) -> None:
        with session.lock:
            server, session.server = session.server, None
            session.ended_at = time.time()
            _set_state(session, "FAILED", details)
        if server is not None:
            server.stop()

    def _stop(self, session: Session, details: str) -> None:
        with session.lock:
            server, session.server = session.server, None
            if session.state in LIVE_STATES:
                _set_state(session, "TERMINATING", details)
        if server is not None:
            server.stop()
        with session.lock:
            if session.state != "FAILED":
                session.ended_at = time.time()
                _set_state(session, "TERMINATED", details or session.state_details)

    # --- idle timeout and lost servers -----------------------------------------------------------

    def _sweep(self, session: Session) -> None:
        with session.lock:
            server, idle_since = session.server, session.idle_since
            ready = session.state in READY_STATES
        if not ready or server is None:
            return
        if not server.alive():
            self._fail(session, "The Spark Connect server exited unexpectedly")
            return
        minutes = session.request.get("idleTimeoutMinutes") or DEFAULT_IDLE_TIMEOUT_MINUTES
        timeout = self.idle_timeout or minutes * 60
        if idle_since is not None and time.time() - idle_since > timeout:
            reason = f"Session was idle for more than {minutes} minutes"
            if self.idle_timeout:
                reason = f"Session was idle for more than {self.idle_timeout:g} s"
            with session.lock:
                _set_state(session, "TERMINATING", reason)
            threading.Thread(target=self._stop, args=(session, reason), daemon=True).start()


def _check_sessions_enabled(app: dict[str, Any]) -> None:
    if not (app.get("interactiveConfiguration") or {}).get("sessionEnabled"):
        raise validation(
            f"Application {app['applicationId']} does not have sessions enabled; set "
            "interactiveConfiguration.sessionEnabled to true with UpdateApplication "
            "(release emr-7.13.0 or later)"
        )


def _spark_conf(request: dict[str, Any]) -> dict[str, str]:
    """The session's ``spark-defaults`` without the service's own ``spark.emr-serverless.*``."""
    conf: dict[str, str] = {}
    overrides = request.get("configurationOverrides") or {}
    for item in overrides.get("runtimeConfiguration") or []:
        if item.get("classification") == "spark-defaults":
            conf.update(item.get("properties") or {})
    return {
        k: str(v)
        for k, v in conf.items()
        if k.startswith("spark.") and not k.startswith("spark.emr-serverless.")
    }


def _set_state(session: Session, state: str, details: str = "") -> None:
    session.state = state
    session.state_details = details
    session.updated_at = time.time()


def _started(session: Session) -> dict[str, Any]:
    return {"applicationId": session.app_id, "sessionId": session.id, "arn": session.arn}


def _epoch(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
