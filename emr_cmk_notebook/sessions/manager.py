"""The sessions of one Python process (one kernel): start, attach, list, status, run, logs, stop.

The manager keeps what this process started or attached to and which session is active; the
transports (``livy``, ``connect``) do the work. Sessions started here are ended when the process
exits, unless started with ``keep=True``. A session that cannot be ended stays listed.
"""

from __future__ import annotations

import atexit
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import (
    ServiceFault,
    SkippedCheckWarning,  # noqa: F401 -- part of this module's API
    UserError,
)
from emr_cmk_notebook.sessions import ledger
from emr_cmk_notebook.sessions.connect import ConnectTransport
from emr_cmk_notebook.sessions.lifetime import dashboard_url, idle_too_long
from emr_cmk_notebook.sessions.livy import LivyClient
from emr_cmk_notebook.sessions.livy_transport import LivyTransport, SessionFailed
from emr_cmk_notebook.sessions.request import Pairs, SessionRequest, no_application
from emr_cmk_notebook.sessions.results import (
    OrphanedSessions,
    SessionInfo,
    SessionList,
    SessionLog,
    StatementResult,
)
from emr_cmk_notebook.sessions.transport import Progress, StatementProgress, Transport, quiet

__all__ = ["SessionFailed", "SessionManager", "StopFailed"]


class StopFailed(ServiceFault):
    """A session could not be ended; it is still running (and billed), and the manager keeps it
    in its list so that stopping it can be tried again."""

    def __init__(self, failures: Mapping[str, str], stopped: list[int | str]):
        self.failures = dict(failures)
        self.stopped = stopped
        # Set by ``stop_orphans``: every orphan it tried, each with what became of it.
        self.orphans: OrphanedSessions | None = None
        said = "; ".join(f"session {sid}: {why}" for sid, why in failures.items())
        still = "they are" if len(failures) > 1 else "it is"
        super().__init__(
            f"could not stop {said}; {still} still running (and billed)",
            operation="stop",
        )


class SessionManager:
    """The sessions of this kernel: start, attach, list, status, run, logs, stop."""

    def __init__(self, target: AwsTarget | None = None, *, cleanup_at_exit: bool = True):
        self.target = target or AwsTarget()
        self.active: SessionInfo | None = None
        self._known: dict[tuple[str, str], SessionInfo] = {}
        self._livy = LivyTransport(lambda: self.target)
        self._connect = ConnectTransport(lambda: self.target)
        self._transports: dict[str, Transport] = {"livy": self._livy, "connect": self._connect}
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
        context: Pairs = None,
        *,
        progress: Progress = quiet,
        **options: Any,
    ) -> SessionInfo:
        """Open a session whose worker disks use ``key`` (else the application's key); the
        options are those of ``SessionRequest.build``."""
        request = SessionRequest.build(application_id, role_arn, key, context, **options)
        return self.open(request, progress=progress)

    def open(self, request: SessionRequest, *, progress: Progress = quiet) -> SessionInfo:
        """Start the session ``request`` describes (after the gate) and make it the active one;
        its application may be given by name."""
        from emr_cmk_notebook import apps
        from emr_cmk_notebook.sessions.gate import require_role

        app = apps.get_application(self.target, request.application_id)
        require_role(self.target, request.role_arn, app.arn)
        request = replace(request, application_id=app.id)
        info = self._transports[request.transport].start(request, progress)
        self._remember(info)
        return info

    def connect_session(self, session_id: int | str | None = None) -> Any:
        """The ``ConnectSession`` of a Spark Connect session known here, its ``spark`` connected."""
        info = self._pick(session_id)
        if info.transport != "connect":
            raise UserError(f"session {info.id} is a Livy session, not a Spark Connect one")
        session = self._connect.session(info)
        session.connect()
        return session

    # --- finding sessions ----------------------------------------------------------------------

    def attach(
        self, application_id: str, session_id: int | str, *, ended_ok: bool = False
    ) -> SessionInfo:
        """Use a session that exists already (not ended at exit: this kernel did not start it);
        its application may be given by name."""
        from emr_cmk_notebook import apps

        with self._lock:
            known = self._known.get((application_id, str(session_id)))
        if known is None:
            application_id = apps.get_application(self.target, application_id).id
            with self._lock:
                known = self._known.get((application_id, str(session_id)))
        if known is not None:
            self._activate(known)
            return self.status()
        transport = self._transports[_transport_of(session_id)]
        info = transport.attach(application_id, session_id)
        if transport.ended(info.state) and not ended_ok:
            raise UserError(f"session {info.id} is {info.state}; start a new one")
        self._remember(info)
        return info

    def describe(self, application_id: str, session_id: int | str) -> SessionInfo:
        """A session's state and disk key, whatever its state, without using it."""
        return self._transports[_transport_of(session_id)].attach(application_id, session_id)

    def use(self, session_id: int | str, application_id: str | None = None) -> SessionInfo:
        """Make a known session active, or attach to one on ``application_id``."""
        with self._lock:
            matches = [i for i in self._known.values() if str(i.id) == str(session_id)]
        if application_id is None and len(matches) == 1:
            return self.attach(matches[0].application_id, session_id)
        if application_id is None:
            raise UserError(
                f"session {session_id} is not known here",
                hint="pass --application-id to attach to it",
            )
        return self.attach(application_id, session_id)

    def list(self, application_id: str | None = None) -> SessionList:
        """The caller's sessions on an application (default: the active session's)."""
        from emr_cmk_notebook import apps

        application_id = application_id or (self.active.application_id if self.active else None)
        if not application_id:
            raise no_application()
        app = apps.get_application(self.target, application_id)
        infos = []
        for transport in self._transports.values():
            for listed in transport.list(app):
                with self._lock:
                    info = self._known.get((app.id, str(listed.id))) or listed
                info.state = listed.state
                info.active = self.active is info
                info.orphaned = bool(
                    listed.owner and listed.owner.orphaned and not transport.ended(listed.state)
                )
                infos.append(info)
        return SessionList(infos)

    def orphans(self, application_id: str | None = None) -> list[SessionInfo]:
        """Live sessions on the application (and on those this machine's notes name) started by
        a kernel of this user on this host that no longer runs (the rule: ``Owner.orphaned``)."""
        apps = {e.application_id for e in ledger.orphans()}
        application_id = application_id or (self.active.application_id if self.active else None)
        if application_id:
            apps.add(application_id)
        if not apps:
            raise no_application()
        found = []
        for app in sorted(apps):
            orphaned = [i for i in self.list(app).sessions if i.orphaned]
            found += orphaned
            live = {str(i.id) for i in orphaned}
            for entry in ledger.orphans():
                if entry.application_id == app and entry.session_id not in live:
                    ledger.forget(app, entry.session_id)  # it ended some other way
        return found

    def stop_orphans(
        self, application_id: str | None = None, *, dry_run: bool = False
    ) -> OrphanedSessions:
        """End the orphaned sessions ``orphans`` finds (with ``dry_run``, only find them).
        ``StopFailed`` names those that could not be ended (each with its reason), after trying
        them all; its ``orphans`` says what became of each."""
        found = OrphanedSessions(self.orphans(application_id), stopping=not dry_run)
        if dry_run:
            return found
        try:
            self._stop(found.sessions)
        except StopFailed as failed:
            found.failures = failed.failures
            failed.orphans = found
            raise
        return found

    def sessions(self) -> list[SessionInfo]:
        """The sessions this kernel started or attached to."""
        with self._lock:
            return list(self._known.values())

    # --- using a session -----------------------------------------------------------------------

    def status(self, session_id: int | str | None = None) -> SessionInfo:
        """The session's current state, its disk key and where the key came from."""
        info = self._pick(session_id)
        transport = self._transports[info.transport]
        transport.status(info)
        if info.dashboard is None and not transport.ended(info.state):
            info.dashboard = dashboard_url(self.target, info)
        info.active = self.active is info
        return info

    def idle_too_long(self, minutes: float) -> list[SessionInfo]:
        """Sessions this kernel started that have been idle for more than ``minutes`` (their
        state is asked for only when they may be: a long while since their last known use)."""
        with self._lock:
            started = [i for i in self._known.values() if i.started_here]
        now = time.time()
        maybe = [i for i in started if now - (i.idle_since or i.started_at or now) > minutes * 60]
        for info in maybe:
            try:
                self._transports[info.transport].status(info)
            except Exception:  # a notice is not worth an error; status shows what is wrong
                info.idle_since = None
        return idle_too_long(maybe, minutes, now)

    def logs(self, session_id: int | str | None = None, size: int = 100) -> SessionLog:
        """The last ``size`` lines of the session's log."""
        info = self._pick(session_id)
        return self._transports[info.transport].logs(info, size)

    def run(
        self,
        code: str,
        *,
        kind: str = "pyspark",
        session_id: int | str | None = None,
        progress: StatementProgress = quiet,
        timeout: float | None = None,
    ) -> StatementResult:
        """Run ``code`` in the session and wait for its output (cancelled on Ctrl-C);
        ``progress`` sees where the statement is each time it is read."""
        info = self._pick(session_id)
        info.idle_since = None
        try:
            return self._transports[info.transport].run(info, code, kind, progress, timeout)
        finally:
            info.idle_since = time.time()

    def cancel(self, statement_id: int, session_id: int | str | None = None) -> None:
        """Cancel a running statement of the session (default: the active one)."""
        info = self._pick(session_id)
        self._transports[info.transport].cancel(info, statement_id)

    def dashboard_url(self, info: SessionInfo) -> str | None:
        """The session's dashboard (Spark UI and logs) URL, from GetResourceDashboard."""
        from emr_cmk_notebook.sessions.lifetime import dashboard_url

        return dashboard_url(self.target, info)

    def livy_client(self, application_id: str) -> LivyClient:
        """The signed Livy client of an application (one per application, reused)."""
        return self._livy.client(application_id)

    # --- ending sessions -----------------------------------------------------------------------

    def stop(
        self, session_id: int | str | None = None, *, all_sessions: bool = False
    ) -> list[int | str]:
        """End one session (default: the active one) or every session this kernel knows; the
        ids ended. ``StopFailed`` names those that could not be ended (they stay listed)."""
        with self._lock:
            targets = list(self._known.values()) if all_sessions else []
        if not all_sessions:
            targets = [self._pick(session_id)]
        return self._stop(targets)

    def _stop(self, targets: list[SessionInfo]) -> list[int | str]:
        stopped: list[int | str] = []
        failures: dict[str, str] = {}
        for info in targets:
            try:
                info.state = self._transports[info.transport].stop(info)
            except Exception as exc:
                failures[str(info.id)] = str(exc)
                continue
            self._forget(info)
            stopped.append(info.id)
        if failures:
            raise StopFailed(failures, stopped)
        return stopped

    def disconnect(self, session_id: int | str | None = None) -> SessionInfo:
        """Leave a session running and forget it here (it is not ended at exit)."""
        info = self._pick(session_id)
        self._transports[info.transport].disconnect(info)
        self._forget(info)
        return info

    def close(self) -> None:
        """End every session this kernel started, except kept ones (runs at exit)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            owned = [i for i in self._known.values() if i.started_here and not i.keep]
        try:
            self._stop(owned)
        except StopFailed as exc:
            warnings.warn(str(exc), stacklevel=1)

    # --- internals -----------------------------------------------------------------------------

    def _remember(self, info: SessionInfo) -> None:
        with self._lock:
            self._known[(info.application_id, str(info.id))] = info
        if info.started_here and info.owner is not None:
            ledger.record(info.application_id, info.id, info.owner)
        self._activate(info)

    def _pick(self, session_id: int | str | None) -> SessionInfo:
        if session_id is None:
            if self.active is None:
                raise UserError("no active session", hint="start one with %emr_session start")
            return self.active
        with self._lock:
            matches = [i for i in self._known.values() if str(i.id) == str(session_id)]
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

    def _forget(self, info: SessionInfo) -> None:
        with self._lock:
            self._known.pop((info.application_id, str(info.id)), None)
            if self.active is info:
                self.active = None
        info.active = False
        ledger.forget(info.application_id, info.id)


def _transport_of(session_id: int | str) -> str:
    """Livy session ids are numbers; sessions API (Spark Connect) ids are not."""
    return "livy" if str(session_id).isdigit() else "connect"
