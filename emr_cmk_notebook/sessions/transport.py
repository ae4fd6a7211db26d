"""The one interface both interactive transports (Livy, Spark Connect) offer the manager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from emr_cmk_notebook.core.progress import SparkProgress
from emr_cmk_notebook.sessions.request import SessionRequest
from emr_cmk_notebook.sessions.results import SessionInfo, SessionLog, StatementResult

Progress = Callable[[str], None]
# Where a running statement is, each time the transport reads it.
StatementProgress = Callable[[SparkProgress], None]


def quiet(_: object) -> None:
    """A progress callback that shows nothing."""
    return None


class Transport(Protocol):
    """How sessions of one transport are started, found, used and ended."""

    name: str

    def start(self, request: SessionRequest, progress: Progress) -> SessionInfo:
        """Start the session (after the gate) and wait until it is ready; nothing is left
        running when this fails."""

    def attach(self, application_id: str, session_id: int | str) -> SessionInfo:
        """A session that exists already, as it is now (nothing is connected yet)."""

    def ended(self, state: str) -> bool:
        """Whether a session in ``state`` can no longer run anything."""

    def status(self, info: SessionInfo) -> SessionInfo:
        """``info`` with its current state."""

    def logs(self, info: SessionInfo, size: int) -> SessionLog:
        """The last ``size`` lines of the session's log."""

    def run(
        self,
        info: SessionInfo,
        code: str,
        kind: str,
        progress: StatementProgress,
        timeout: float | None,
    ) -> StatementResult:
        """Run ``code`` and wait for its output (cancelled on Ctrl-C or after ``timeout``)."""

    def cancel(self, info: SessionInfo, statement_id: int) -> None:
        """Cancel a running statement."""

    def stop(self, info: SessionInfo) -> str:
        """End the session; its last state. Raises (with the id) when the service refuses."""

    def disconnect(self, info: SessionInfo) -> None:
        """Close this process's connection to the session and leave it running."""

    def list(self, app: object) -> list[SessionInfo]:
        """The caller's sessions of this transport on an application."""
