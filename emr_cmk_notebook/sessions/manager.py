"""Starting, attaching to, running in and stopping Livy sessions, failing closed on the disk key.

One ``SessionManager`` per kernel: it remembers the sessions it started and deletes them when the
Python process exits, unless they were started with ``keep=True``.
"""

from __future__ import annotations

import atexit
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core import releases
from emr_cmk_notebook.core.encryption import LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.core.errors import (
    CheckFailed,
    ServiceFault,
    SkippedCheckWarning,  # noqa: F401 -- part of this module's API
    UserError,
    warn_skipped_check,
)
from emr_cmk_notebook.sessions.conf import check_start, enforce, key_in_effect, mandatory_conf
from emr_cmk_notebook.sessions.livy import LivyClient, LivyError, LivyUnreachable
from emr_cmk_notebook.sessions.results import (
    SessionInfo,
    SessionList,
    SessionLog,
    StatementResult,
)
from emr_cmk_notebook.sessions.waiting import Backoff, failure_line

Progress = Callable[[str], None]
FAILED_STATES = frozenset({"error", "dead", "killed", "success"})
READY_STATES = frozenset({"idle"})
CREATE_ATTEMPTS = 3


class SessionFailed(ServiceFault):
    """A session ended before it was ready; the message is the log line that says why."""


def _quiet(_: str) -> None:
    return None


class SessionManager:
    """The sessions of this kernel: start, attach, list, status, run, logs, stop."""

    def __init__(self, target: AwsTarget | None = None, *, cleanup_at_exit: bool = True):
        self.target = target or AwsTarget()
        self.active: SessionInfo | None = None
        self._known: dict[tuple[str, int], SessionInfo] = {}
        self._clients: dict[str, LivyClient] = {}
        self._connect: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._closed = False
        if cleanup_at_exit:
            atexit.register(self.close)

    # --- start ---------------------------------------------------------------------------------

    def start(
        self,
        application_id: str,
        role_arn: str | None,
        key: str | None = None,
        context: Mapping[str, str] | list[str] | None = None,
        *,
        name: str | None = None,
        idle_timeout_minutes: int | None = None,
        conf: Mapping[str, str] | None = None,
        kind: str = "pyspark",
        transport: str = "livy",
        keep: bool = False,
        skip_check: bool = False,
        start_application: bool = True,
        timeout: float = 900.0,
        progress: Progress = _quiet,
        session_key_override: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> SessionInfo:
        """Open a session whose worker disks use ``key`` (else the application's key)."""
        if transport == "connect":
            return self._start_connect(
                application_id, role_arn, key, context, name=name, tags=tags,
                idle_timeout_minutes=idle_timeout_minutes, conf=conf, keep=keep, timeout=timeout,
                progress=progress, session_key_override=session_key_override,
                skip_check=skip_check, start_application=start_application,
            )  # fmt: skip
        if transport != "livy":
            raise UserError(f"unknown transport {transport!r}", hint="use livy or connect")
        if session_key_override:
            raise UserError(
                "--session-key-override is for --transport connect; Livy sessions always "
                "carry the key in their conf"
            )
        if tags:
            raise UserError("--tag is for --transport connect; Livy sessions have no tags")
        role_arn = check_start(role_arn, key, context, idle_timeout_minutes)
        encryption = DiskEncryption.from_parts(key, context) if key else None
        if encryption is not None:
            for message in encryption.secret_warnings():
                warnings.warn(message, UserWarning, stacklevel=2)
        app = self._ready_application(application_id, start_application, timeout, progress)
        if encryption is not None:
            encryption = self._checked_key(encryption, app.id, role_arn, skip_check)
        body: dict[str, Any] = {"kind": kind, "name": name or f"emr-cmk-{uuid.uuid4().hex[:12]}"}
        if idle_timeout_minutes is not None and _takes_ttl(app):
            body["ttl"] = f"{idle_timeout_minutes}m"
        body["conf"] = dict(conf or {})
        body = enforce(body, mandatory_conf(role_arn, encryption))
        source, key_arn, pairs = key_in_effect(body["conf"], app.encryption)
        client = self._client(app.id)
        began = time.time()
        created = self._create(client, body)
        info = SessionInfo(
            id=int(created["id"]),
            application_id=app.id,
            state=created.get("state", "starting"),
            name=body["name"],
            kind=kind,
            role_arn=role_arn,
            key_arn=key_arn,
            key_source=source,
            context=pairs,
            keep=keep,
            started_here=True,
            started_at=began,
        )
        with self._lock:
            self._known[(app.id, info.id)] = info
        try:
            ready = self._wait_ready(client, info, timeout, progress)
            self._check_applied(ready, encryption)
        except BaseException:
            # Fail closed: a session that is not what was asked for must not stay alive.
            self._forget(info, delete=True)
            raise
        info.state = ready.get("state", info.state)
        info.spark_app_id = ready.get("appId")
        self._activate(info)
        return info

    def _start_connect(
        self,
        application_id: str,
        role_arn: str | None,
        key: str | None,
        context: Mapping[str, str] | list[str] | None,
        *,
        keep: bool,
        **options: Any,
    ) -> SessionInfo:
        from emr_cmk_notebook.sessions.connect import start_connect

        session = start_connect(self.target, application_id, role_arn, key, context, **options)
        if keep:
            session.keep()
        return self._adopt(session, keep=keep, started_here=True)

    def _adopt(self, session: Any, *, keep: bool, started_here: bool) -> SessionInfo:
        info = SessionInfo(
            id=session.id,
            application_id=session.application_id,
            state=session.state,
            name=session.name,
            kind="connect",
            role_arn=session.role_arn,
            key_arn=session.key_arn,
            key_source=session.key_source,
            context=dict(session.context),
            keep=keep,
            started_here=started_here,
            started_at=session.started_at,
        )
        with self._lock:
            self._connect[session.id] = session
            self._known[(info.application_id, info.id)] = info
        self._activate(info)
        return info

    def connect_session(self, session_id: int | str | None = None) -> Any:
        """The ``ConnectSession`` (with its ``spark``) of a Spark Connect session started here."""
        info = self._pick(session_id)
        session = self._connect.get(str(info.id))
        if session is None:
            raise UserError(f"session {info.id} is a Livy session, not a Spark Connect one")
        return session

    def _ready_application(
        self, application_id: str, may_start: bool, timeout: float, progress: Progress
    ) -> Any:
        from emr_cmk_notebook import apps

        if not application_id:
            raise UserError(
                "no application given",
                hint="pass --application-id or set EmrCmk.default_application",
            )
        app = apps.get_application(self.target, application_id)
        if not app.livy_enabled:
            raise UserError(
                f"application {app.id} does not have the Livy endpoint enabled",
                hint=f"%emr_app update --application-id {app.id} --livy --restart",
            )
        return apps.ensure_started(
            self.target, app, may_start=may_start, timeout=timeout, progress=progress
        )

    def _checked_key(
        self, encryption: DiskEncryption, application_id: str, role_arn: str, skip_check: bool
    ) -> DiskEncryption:
        from emr_cmk_notebook.keys import resolve

        resolved, facts = resolve(self.target.client("kms"), encryption)
        resolved.to_livy_conf()  # refuses a context the Livy form cannot carry, before starting
        if skip_check:
            warn_skipped_check(facts.arn, "session fails to start")
            return resolved
        problem = facts.problem()
        if problem:
            raise CheckFailed(problem, hint="choose an enabled symmetric encryption key")
        from emr_cmk_notebook.readiness import require_ready

        require_ready(resolved, application_id, role_arn, target=self.target, transport="livy")
        return resolved

    def _create(self, client: LivyClient, body: dict[str, Any]) -> dict[str, Any]:
        """POST the session; after a lost or failed answer, look it up by name before retrying."""
        backoff = Backoff(first=0.2, most=2.0)
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return client.create_session(body)
            except (LivyUnreachable, LivyError) as exc:
                if isinstance(exc, LivyError) and exc.code == "ValidationException":
                    # Refused at submission (e.g. a key the caller cannot use): nothing started.
                    raise UserError(str(exc)) from None
                transient = isinstance(exc, LivyUnreachable) or exc.status >= 500
                duplicate = isinstance(exc, LivyError) and "duplicate" in str(exc).lower()
                if not (transient or duplicate):
                    raise
                found = _by_name(client, body["name"])
                if found is not None:
                    return found
                if attempt == CREATE_ATTEMPTS:
                    raise
                time.sleep(backoff.next())
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_ready(
        self, client: LivyClient, info: SessionInfo, timeout: float, progress: Progress
    ) -> dict[str, Any]:
        # 50 ms doubling to 0.3 s for the first minute keeps the gap between "idle" on the
        # server and start returning small (a GET of the state is cheap); later, up to 2 s.
        backoff = Backoff(first=0.05, most=0.3, later=2.0, later_after=60.0)
        deadline = time.monotonic() + timeout
        state = info.state
        while True:
            if state in READY_STATES:
                return client.get_session(info.id)
            if state in FAILED_STATES:
                lines = client.session_log(info.id, size=50)
                why = failure_line(lines)
                raise SessionFailed(
                    f"session {info.id} on {info.application_id} is {state}: {why}",
                    operation="Livy",
                )
            if time.monotonic() > deadline:
                raise SessionFailed(
                    f"session {info.id} is still {state} after {timeout:.0f} s; it was deleted",
                    operation="Livy",
                )
            progress(f"session {info.id} {state}")
            time.sleep(backoff.next())
            state = client.session_state(info.id)

    def _check_applied(self, view: dict[str, Any], encryption: DiskEncryption | None) -> None:
        conf = view.get("conf")
        if encryption is None or not isinstance(conf, dict):
            return
        if conf.get(LIVY_KEY_ARN) != encryption.key_arn:
            raise SessionFailed(
                f"session {view.get('id')} does not report the requested disk key "
                f"{encryption.key_arn}; it was deleted rather than run on another key",
                operation="Livy",
            )

    # --- the other verbs -----------------------------------------------------------------------

    def attach(self, application_id: str, session_id: int) -> SessionInfo:
        """Use a session that exists already (not deleted at exit: this kernel did not start it)."""
        from emr_cmk_notebook import apps

        with self._lock:
            known = self._known.get((application_id, int(session_id)))
        if known is not None:
            self._activate(known)
            return self.status()
        app = apps.get_application(self.target, application_id)
        view = self._get(app.id, int(session_id))
        info = _info_from_view(app, view)
        if info.state in FAILED_STATES:
            raise UserError(f"session {info.id} is {info.state}; start a new one")
        with self._lock:
            self._known[(app.id, info.id)] = info
        self._activate(info)
        return info

    def list(self, application_id: str | None = None) -> SessionList:
        """The caller's sessions on an application (default: the active session's)."""
        from emr_cmk_notebook import apps

        application_id = application_id or (self.active.application_id if self.active else None)
        if not application_id:
            raise UserError(
                "no application given",
                hint="pass --application-id or set EmrCmk.default_application",
            )
        app = apps.get_application(self.target, application_id)
        infos = []
        views = self._client(app.id).list_sessions() if app.livy_enabled else []
        for view in views:
            with self._lock:
                known = self._known.get((app.id, int(view["id"])))
            info = known or _info_from_view(app, view)
            info.state = view.get("state", info.state)
            info.active = self.active is info
            infos.append(info)
        if app.sessions_enabled:
            from emr_cmk_notebook.sessions.connect import list_connect

            for listed in list_connect(self.target, app):
                with self._lock:
                    info = self._known.get((app.id, listed.id)) or listed
                info.state = listed.state
                info.active = self.active is info
                infos.append(info)
        return SessionList(infos)

    def status(self, session_id: int | None = None) -> SessionInfo:
        """The session's current state, its disk key and where the key came from."""
        info = self._pick(session_id)
        if info.kind == "connect":
            info.state = self.connect_session(info.id).view()["state"]
            info.active = self.active is info
            return info
        view = self._get(info.application_id, info.id)
        info.state = view.get("state", info.state)
        info.spark_app_id = view.get("appId") or info.spark_app_id
        info.active = self.active is info
        return info

    def logs(self, session_id: int | None = None, size: int = 100) -> SessionLog:
        """The last ``size`` lines of the session's log."""
        info = self._pick(session_id)
        if info.kind == "connect":
            raise UserError(
                f"session {info.id} is a Spark Connect session; the sessions API has no log",
                hint=(
                    "its Spark UI and logs are behind GetResourceDashboard (resourceType SESSION),"
                    " the launcher's dashboard link"
                ),
            )
        return SessionLog(info.id, self._client(info.application_id).session_log(info.id, size))

    def stop(self, session_id: int | None = None, *, all_sessions: bool = False) -> list[int]:
        """Delete one session (default: the active one) or every session this kernel knows."""
        with self._lock:
            targets = list(self._known.values()) if all_sessions else []
        if not all_sessions:
            targets = [self._pick(session_id)]
        for info in targets:
            self._forget(info, delete=True)
        return [info.id for info in targets]

    def run(
        self,
        code: str,
        *,
        kind: str = "pyspark",
        session_id: int | None = None,
        progress: Progress = _quiet,
        timeout: float | None = None,
    ) -> StatementResult:
        """Run ``code`` in the session and wait for its output (cancelled on Ctrl-C)."""
        info = self._pick(session_id)
        if info.kind == "connect":
            raise UserError(
                f"session {info.id} is a Spark Connect session", hint="use the spark variable"
            )
        client = self._client(info.application_id)
        statement = client.run_statement(info.id, code, kind)
        backoff = Backoff(first=0.005, most=0.5)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while statement.get("state") not in ("available", "error", "cancelled"):
                if deadline is not None and time.monotonic() > deadline:
                    client.cancel_statement(info.id, int(statement["id"]))
                    raise ServiceFault(f"statement still running after {timeout:.0f} s; cancelled")
                progress(f"statement {statement['id']} {statement.get('state')}")
                time.sleep(backoff.next())
                statement = client.get_statement(info.id, int(statement["id"]))
        except KeyboardInterrupt:
            client.cancel_statement(info.id, int(statement["id"]))
            raise
        return StatementResult.from_livy(info.id, statement)

    def use(self, session_id: int | str, application_id: str | None = None) -> SessionInfo:
        """Make a known session active, or attach to one on ``application_id``."""
        with self._lock:
            matches = [i for (_, sid), i in self._known.items() if str(sid) == str(session_id)]
        if matches and matches[0].kind == "connect":
            self._activate(matches[0])
            return matches[0]
        if not str(session_id).isdigit():  # sessions API ids are not numbers; Livy's are
            if application_id is None:
                raise UserError(
                    f"session {session_id} is not known here",
                    hint="pass --application-id to attach to it",
                )
            from emr_cmk_notebook.sessions.connect import attach_connect

            session = attach_connect(self.target, application_id, str(session_id))
            return self._adopt(session, keep=True, started_here=False)
        if application_id is None and len(matches) == 1:
            return self.attach(matches[0].application_id, int(session_id))
        if application_id is None:
            raise UserError(
                f"session {session_id} is not known here",
                hint="pass --application-id to attach to it",
            )
        return self.attach(application_id, int(session_id))

    def sessions(self) -> list[SessionInfo]:
        """The sessions this kernel started or attached to."""
        with self._lock:
            return list(self._known.values())

    def close(self) -> None:
        """Delete every session this kernel started, except kept ones (runs at exit)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            owned = [i for i in self._known.values() if i.started_here and not i.keep]
        for info in owned:
            try:
                self._forget(info, delete=True)
            except Exception as exc:  # one failure must not stop the others
                warnings.warn(f"could not delete session {info.id}: {exc}", stacklevel=1)

    def livy_client(self, application_id: str) -> LivyClient:
        """The signed Livy client of an application (one per application, reused)."""
        return self._client(application_id)

    # --- internals -----------------------------------------------------------------------------

    def _client(self, application_id: str) -> LivyClient:
        client = self._clients.get(application_id)
        if client is None:
            client = LivyClient.for_application(self.target, application_id)
            self._clients[application_id] = client
        return client

    def _get(self, application_id: str, session_id: int) -> dict[str, Any]:
        try:
            return self._client(application_id).get_session(session_id)
        except LivyError as exc:
            if exc.status == 404:
                raise UserError(
                    f"session {session_id} was not found on {application_id}",
                    hint="%emr_session list shows your sessions",
                ) from None
            raise

    def _pick(self, session_id: int | None) -> SessionInfo:
        if session_id is None:
            if self.active is None:
                raise UserError("no active session", hint="start one with %emr_session start")
            return self.active
        with self._lock:
            matches = [i for (_, sid), i in self._known.items() if str(sid) == str(session_id)]
        if len(matches) != 1:
            raise UserError(
                f"session {session_id} is not known here",
                hint="%emr_session use ID --application-id APP attaches to it",
            )
        return matches[0]

    def _activate(self, info: SessionInfo) -> None:
        with self._lock:
            for other in self._known.values():
                other.active = False
            info.active = True
            self.active = info

    def _forget(self, info: SessionInfo, *, delete: bool) -> None:
        with self._lock:
            self._known.pop((info.application_id, info.id), None)
            if self.active is info:
                self.active = None
        info.active = False
        connect = self._connect.pop(str(info.id), None) if info.kind == "connect" else None
        if connect is not None:
            info.state = connect.stop() if delete else info.state
            return
        if delete:
            self._client(info.application_id).delete_session(info.id)
            info.state = "killed"


def _takes_ttl(app: Any) -> bool:
    """Whether a Livy session on ``app`` may carry ``ttl``; says so in one line when not."""
    if releases.supports(app.release, releases.LIVY_TTL) is not False:
        return True
    warnings.warn(
        f"application {app.id} runs {app.release}, where a Livy session's idle timeout cannot be "
        f"set (ttl needs {releases.LIVY_TTL} or later): --idle-timeout is not applied and the "
        "session ends after AWS's default hour without statements",
        UserWarning,
        stacklevel=3,
    )
    return False


def _by_name(client: LivyClient, name: str) -> dict[str, Any] | None:
    try:
        sessions = client.list_sessions()
    except (LivyUnreachable, LivyError):
        return None
    live = [s for s in sessions if s.get("name") == name and s.get("state") not in FAILED_STATES]
    return live[0] if live else None


def _info_from_view(app: Any, view: dict[str, Any]) -> SessionInfo:
    from emr_cmk_notebook.sessions.conf import EXECUTION_ROLE

    conf = view.get("conf") if isinstance(view.get("conf"), dict) else {}
    source, key_arn, pairs = key_in_effect(conf, app.encryption)
    return SessionInfo(
        id=int(view["id"]),
        application_id=app.id,
        state=view.get("state", "unknown"),
        name=view.get("name"),
        kind=view.get("kind", "pyspark"),
        role_arn=conf.get(EXECUTION_ROLE),
        key_arn=key_arn,
        key_source=source,
        context=pairs,
        spark_app_id=view.get("appId"),
    )
