"""What one notebook kernel holds: its session manager, the names it bound in the user's
namespace (a Spark Connect session's ``spark``) and its sparkmagic registrations.

The ``%emr_session`` magic and the session launcher are views over one ``KernelSessions``, so a
session started from either is exposed, listed and stopped the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.manager import SessionManager, StopFailed
from emr_cmk_notebook.sessions.request import SessionRequest
from emr_cmk_notebook.sessions.results import SessionInfo
from emr_cmk_notebook.sessions.transport import Progress, quiet


class KernelSessions:
    """A kernel's sessions and everything it exposed for them."""

    def __init__(
        self,
        manager: SessionManager | None = None,
        *,
        target: AwsTarget | None = None,
        namespace: dict[str, Any] | None = None,
        shell: Any = None,
        on_spark: Callable[[Any, SessionInfo], None] | None = None,
    ):
        self.manager = manager if manager is not None else SessionManager(target)
        # Where a Spark Connect session's SparkSession is bound (the user namespace).
        self.namespace = namespace
        # The IPython shell whose sparkmagic magics get the Livy sessions.
        self.shell = shell
        # Told of each Spark Connect SparkSession bound here (the notebook shows its progress).
        self.on_spark = on_spark
        self.bound: dict[str, str] = {}
        self.registered: set[str] = set()

    def start(
        self, request: SessionRequest, *, progress: Progress = quiet, spark_name: str = "spark"
    ) -> SessionInfo:
        """Start a session and expose it: ``spark_name`` for Spark Connect, ``%%spark`` for Livy."""
        info = self.manager.open(request, progress=progress)
        self._expose(info, spark_name)
        return info

    def use(
        self, session_id: int | str, application_id: str | None = None, spark_name: str = "spark"
    ) -> SessionInfo:
        """Make a session active (attaching to it if need be) and expose it as ``start`` does."""
        info = self.manager.use(session_id, application_id)
        self._expose(info, spark_name)
        return info

    def stop(
        self, session_id: int | str | None = None, *, all_sessions: bool = False
    ) -> list[int | str]:
        """End sessions and take back what was exposed for them; the ids ended. A session that
        could not be ended raises ``StopFailed`` and keeps its names and registrations."""
        try:
            stopped = self.manager.stop(session_id, all_sessions=all_sessions)
        except StopFailed as failed:
            self._release(failed.stopped)
            raise
        self._release(stopped)
        return stopped

    def bound_name(self, info: SessionInfo) -> str | None:
        """The variable a session's SparkSession is bound to, if any."""
        return self.bound.get(str(info.id))

    def _expose(self, info: SessionInfo, spark_name: str) -> None:
        if info.transport == "connect":
            spark = self.manager.connect_session(info.id).spark
            if self.on_spark is not None and str(info.id) not in self.bound:
                self.on_spark(spark, info)
            if self.namespace is not None:
                self.namespace[spark_name] = spark
                self.bound[str(info.id)] = spark_name
            return
        from emr_cmk_notebook.integrations import sparkmagic

        if self.shell is not None and sparkmagic.available():
            sparkmagic.register_session(self.shell, self.manager, info)
            self.registered.add(str(info.id))

    def _release(self, session_ids: Iterable[int | str]) -> None:
        ids = [str(i) for i in session_ids]
        for session_id in ids:
            name = self.bound.pop(session_id, None)
            if name is not None and self.namespace is not None:
                self.namespace.pop(name, None)
        registered = [i for i in ids if i in self.registered]
        if registered:
            from emr_cmk_notebook.integrations import sparkmagic

            sparkmagic.forget_sessions(self.shell, registered)
            self.registered.difference_update(registered)
