"""The Livy transport: sessions on an application's Livy endpoint, failing closed on the key.

The session's key travels in its conf (``spark.emr-serverless.disk.*``), put there after any user
conf so nothing can drop it; a session that does not report the key asked for is deleted.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core import releases
from emr_cmk_notebook.core.encryption import LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.core.polling import Backoff, poll
from emr_cmk_notebook.core.progress import SparkProgress
from emr_cmk_notebook.sessions.conf import EXECUTION_ROLE, enforce, key_in_effect, mandatory_conf
from emr_cmk_notebook.sessions.gate import pass_gate
from emr_cmk_notebook.sessions.lifetime import ttl_minutes
from emr_cmk_notebook.sessions.livy import LivyClient, LivyError, LivyUnreachable
from emr_cmk_notebook.sessions.owner import Owner
from emr_cmk_notebook.sessions.request import SessionRequest
from emr_cmk_notebook.sessions.results import SessionInfo, SessionLog, StatementResult
from emr_cmk_notebook.sessions.transport import Progress, StatementProgress

FAILED_STATES = frozenset({"error", "dead", "killed", "success"})
READY_STATES = frozenset({"idle"})
STATEMENT_DONE = frozenset({"available", "error", "cancelled"})
CREATE_ATTEMPTS = 3
_FAILURE = re.compile(r"\b(ERROR|FATAL)\b|Exception\b|Error\b")


class SessionFailed(ServiceFault):
    """A session ended before it was ready; the message is the log line that says why."""


class LivyTransport:
    """Livy sessions behind the transport interface; one signed client per application."""

    name = "livy"

    def __init__(self, target_of: Callable[[], AwsTarget]):
        self._target_of = target_of
        self._clients: dict[tuple[AwsTarget, str], LivyClient] = {}

    def client(self, application_id: str) -> LivyClient:
        """The signed Livy client of an application at the current target (reused until
        ``%config EmrCmk.endpoint_url``, the profile or the region changes it)."""
        target = self._target_of()
        client = self._clients.get((target, application_id))
        if client is None:
            client = LivyClient.for_application(target, application_id)
            self._clients[(target, application_id)] = client
        return client

    # --- start -----------------------------------------------------------------------------------

    def start(self, request: SessionRequest, progress: Progress) -> SessionInfo:
        from emr_cmk_notebook import apps

        target = self._target_of()
        app = apps.get_application(target, request.application_id)
        if not app.livy_enabled:
            raise UserError(
                f"application {app.id} does not have the Livy endpoint enabled",
                hint=f"%emr_app update --application-id {app.id} --livy --restart",
            )
        encryption = request.encryption
        if encryption is not None:
            # to_livy_conf refuses a context the Livy form cannot carry, before anything starts.
            encryption = pass_gate(
                target, encryption, app.id, request.role_arn, transport="livy",
                skip_check=request.skip_check, also=DiskEncryption.to_livy_conf,
            )  # fmt: skip
        app = apps.ensure_started(
            target, app, may_start=request.start_application, timeout=request.timeout,
            progress=progress,
        )  # fmt: skip
        body: dict[str, Any] = {"kind": request.kind, "name": request.remote_name()}
        if request.idle_timeout_minutes is not None and _takes_ttl(app):
            body["ttl"] = f"{request.idle_timeout_minutes}m"
        body["conf"] = dict(request.conf)
        body = enforce(body, mandatory_conf(request.role_arn, encryption))
        key = key_in_effect(body["conf"], app.encryption)
        client = self.client(app.id)
        began = time.time()
        created = self._create(client, body)
        info = request.started(int(created["id"]), created.get("state", "starting"), key, began)
        try:
            ready = self._wait_ready(client, info, request.timeout, progress)
            _check_applied(ready, encryption)
        except BaseException:
            # Fail closed: a session that is not what was asked for must not stay alive.
            client.delete_session(info.id)
            raise
        info.state = ready.get("state", info.state)
        info.spark_app_id = ready.get("appId")
        return info

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
        states = iter([info.state])

        def state() -> str:
            return next(states, None) or client.session_state(info.id)

        def timed_out(last: str) -> BaseException:
            return SessionFailed(
                f"session {info.id} is still {last} after {timeout:.0f} s; it was deleted",
                operation="Livy",
            )

        # 50 ms doubling to 0.3 s for the first minute keeps the gap between "idle" on the
        # server and start returning small (a GET of the state is cheap); later, up to 2 s.
        last = poll(
            state,
            until=lambda s: s in READY_STATES | FAILED_STATES,
            backoff=Backoff(first=0.05, most=0.3, later=2.0, later_after=60.0),
            timeout=timeout,
            progress=lambda s: progress(f"session {info.id} {s}"),
            timed_out=timed_out,
        )
        if last in FAILED_STATES:
            why = failure_line(client.session_log(info.id, size=50))
            raise SessionFailed(
                f"session {info.id} on {info.application_id} is {last}: {why}", operation="Livy"
            )
        return client.get_session(info.id)

    # --- the other verbs -------------------------------------------------------------------------

    def attach(self, application_id: str, session_id: int | str) -> SessionInfo:
        from emr_cmk_notebook import apps

        app = apps.get_application(self._target_of(), application_id)
        return _info_from_view(app, self._get(app.id, int(session_id)))

    def ended(self, state: str) -> bool:
        return state in FAILED_STATES

    def status(self, info: SessionInfo) -> SessionInfo:
        view = self._get(info.application_id, int(info.id))
        info.state = view.get("state", info.state)
        info.spark_app_id = view.get("appId") or info.spark_app_id
        info.idle_timeout_minutes = ttl_minutes(view.get("ttl")) or info.idle_timeout_minutes
        info.dashboard = (view.get("appInfo") or {}).get("sparkUiUrl") or info.dashboard
        info.idle_since = self._idle_since(info) if info.state in READY_STATES else None
        return info

    def _idle_since(self, info: SessionInfo) -> float | None:
        """Livy says no idle time: the end of the last statement, else the session's start."""
        newest = self.client(info.application_id).statements(int(info.id), newest_first=True)
        completed = max((int(s.get("completed") or 0) for s in newest[:1]), default=0)
        return completed / 1000 if completed else info.started_at

    def logs(self, info: SessionInfo, size: int) -> SessionLog:
        return SessionLog(info.id, self.client(info.application_id).session_log(info.id, size))

    def run(
        self,
        info: SessionInfo,
        code: str,
        kind: str,
        progress: StatementProgress,
        timeout: float | None,
    ) -> StatementResult:
        client = self.client(info.application_id)
        statement = client.run_statement(int(info.id), code, kind)
        sid = int(statement["id"])
        first = iter([statement])

        def read() -> dict[str, Any]:
            return next(first, None) or client.get_statement(int(info.id), sid)

        def timed_out(_: dict[str, Any]) -> BaseException:
            client.cancel_statement(int(info.id), sid)
            return ServiceFault(f"statement still running after {timeout:.0f} s; cancelled")

        try:
            statement = poll(
                read,
                until=lambda s: s.get("state") in STATEMENT_DONE,
                backoff=Backoff(first=0.005, most=0.5),
                timeout=timeout,
                progress=lambda s: progress(statement_progress(s)),
                timed_out=timed_out,
            )
        except KeyboardInterrupt:
            client.cancel_statement(int(info.id), sid)
            raise
        return StatementResult.from_livy(int(info.id), statement)

    def cancel(self, info: SessionInfo, statement_id: int) -> None:
        self.client(info.application_id).cancel_statement(int(info.id), statement_id)

    def stop(self, info: SessionInfo) -> str:
        self.client(info.application_id).delete_session(int(info.id))
        return "deleted"

    def disconnect(self, info: SessionInfo) -> None:
        return None  # every Livy request stands alone: no connection is held open

    def list(self, app: Any) -> list[SessionInfo]:
        if not app.livy_enabled:
            return []
        return [_info_from_view(app, view) for view in self.client(app.id).list_sessions()]

    def _get(self, application_id: str, session_id: int) -> dict[str, Any]:
        try:
            return self.client(application_id).get_session(session_id)
        except LivyError as exc:
            if exc.status == 404:
                raise UserError(
                    f"session {session_id} was not found on {application_id}",
                    hint="%emr_session list shows your sessions",
                ) from None
            raise


def statement_progress(statement: dict[str, Any]) -> SparkProgress:
    """What Livy says of a running statement: its state and ``progress`` (0 to 1)."""
    fraction = statement.get("progress")
    return SparkProgress(
        state=str(statement.get("state")),
        fraction=float(fraction) if isinstance(fraction, int | float) else None,
    )


def _check_applied(view: dict[str, Any], encryption: DiskEncryption | None) -> None:
    conf = view.get("conf")
    if encryption is None or not isinstance(conf, dict):
        return
    if conf.get(LIVY_KEY_ARN) != encryption.key_arn:
        raise SessionFailed(
            f"session {view.get('id')} does not report the requested disk key "
            f"{encryption.key_arn}; it was deleted rather than run on another key",
            operation="Livy",
        )


def failure_line(lines: list[str]) -> str:
    """The most telling line of a log tail: its last error line, else its last line."""
    cleaned = [" ".join(line.split()) for line in lines if line.strip()]
    errors = [line for line in cleaned if _FAILURE.search(line)]
    if errors:
        return errors[-1]
    return cleaned[-1] if cleaned else "the session log is empty"


def _takes_ttl(app: Any) -> bool:
    """Whether a Livy session on ``app`` may carry ``ttl``; says so in one line when not."""
    if releases.supports(app.release, releases.LIVY_TTL) is not False:
        return True
    warnings.warn(
        f"application {app.id} runs {app.release}, where a Livy session's idle timeout cannot be "
        f"set (ttl needs {releases.LIVY_TTL} or later): --idle-timeout is not applied and the "
        "session ends after AWS's default hour without statements",
        UserWarning,
        stacklevel=4,
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
    conf = view.get("conf") if isinstance(view.get("conf"), dict) else {}
    source, key_arn, pairs = key_in_effect(conf, app.encryption)
    name, owner = Owner.split(view.get("name"))
    return SessionInfo(
        id=int(view["id"]),
        application_id=app.id,
        state=view.get("state", "unknown"),
        name=name,
        owner=owner,
        idle_timeout_minutes=ttl_minutes(view.get("ttl")),
        kind=view.get("kind", "pyspark"),
        role_arn=conf.get(EXECUTION_ROLE),
        key_arn=key_arn,
        key_source=source,
        context=pairs,
        spark_app_id=view.get("appId"),
    )
