"""One Spark Connect session's life: waiting for it, connecting pyspark to it, ending it.

``spark.stop()`` alone only disconnects; ``TerminateSession`` is what stops billing, so a session
started here is terminated on ``stop()`` and when the Python process exits (unless kept). A
TerminateSession that fails is raised, with the session id, and the session stays to be stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.core.polling import Backoff, poll
from emr_cmk_notebook.sessions import pyspark_compat
from emr_cmk_notebook.sessions.connect_listing import get_session
from emr_cmk_notebook.sessions.connect_token import SessionToken, connect_url
from emr_cmk_notebook.sessions.results import SessionInfo

Progress = Callable[[str], None]
READY = frozenset({"STARTED", "IDLE", "BUSY"})
ENDED = frozenset({"FAILED", "TERMINATING", "TERMINATED"})


class ConnectFailed(ServiceFault):
    """A Spark Connect session ended before it was ready, or could not be reached."""


def check_versions(client: str, server: str, where: str) -> None:
    """Refuse a client whose Spark ``major.minor`` differs from the server's."""
    if client != server:
        raise UserError(
            f"pyspark {client} cannot talk to Spark {server} ({where}): Spark Connect needs "
            "the same major.minor on both sides",
            hint=f"pip install 'pyspark[connect]=={server}.*' in this kernel's environment",
        )


class ConnectSession:
    """One Spark Connect session: what it is (``info``), its token, and its ``SparkSession``."""

    def __init__(self, target: AwsTarget, info: SessionInfo, *, owned: bool = True):
        self.target = target
        self.info = info
        self.id = str(info.id)
        self.application_id = info.application_id
        self.spark: Any = None
        self.token = SessionToken(target.client("emr-serverless"), self.application_id, self.id)
        self._lock = threading.Lock()
        self._stopped = False
        self.owned = owned
        if owned:
            atexit.register(self.stop)

    @property
    def state(self) -> str:
        return self.info.state

    def view(self) -> dict[str, Any]:
        """GetSession's ``session`` object (and the state it says, remembered)."""
        view = get_session(self.target, self.application_id, self.id)
        self.info.state = view["state"]
        return view

    def wait_ready(self, timeout: float, progress: Progress) -> dict[str, Any]:
        """Poll until STARTED/IDLE; a FAILED or TERMINATED session raises with its details."""

        def timed_out(view: dict[str, Any]) -> BaseException:
            return ConnectFailed(
                f"session {self.id} is still {view['state']} after {timeout:.0f} s; "
                "it was terminated",
                operation="StartSession",
            )

        # As for Livy: a GetSession is cheap, so poll often in the first minute.
        view = poll(
            self.view,
            until=lambda v: v["state"] in READY | ENDED,
            backoff=Backoff(first=0.05, most=0.3, later=2.0, later_after=60.0),
            timeout=timeout,
            progress=lambda v: progress(f"session {self.id} {v['state']}"),
            timed_out=timed_out,
        )
        if view["state"] in ENDED:
            details = view.get("stateDetails") or "no details given"
            raise ConnectFailed(
                f"session {self.id} on {self.application_id} is {view['state']}: {details}",
                operation="StartSession",
            )
        return view

    def connect(self) -> Any:
        """The ``SparkSession`` of this session (connected on first use)."""
        if self.spark is not None:
            return self.spark
        client = pyspark_compat.client_spark()
        token = self.token.current()
        from pyspark.sql.connect.session import SparkSession

        builder = pyspark_compat.channel_builder(
            connect_url(self.token.endpoint, token), self.token.current
        )
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
            set_policies([pyspark_compat.stop_retrying_when(self._ended_error)])
        pyspark_compat.make_active(spark)
        self.spark = spark
        return spark

    def ended(self) -> str | None:
        """Why the session can no longer run queries, or None while it is live."""
        try:
            view = self.view()
        except Exception:
            return None
        if view["state"] in ENDED:
            return f"{view['state']}: {view.get('stateDetails') or 'no details given'}"
        return None

    def _ended_error(self) -> BaseException | None:
        why = self.ended()
        if why is None:
            return None
        return ConnectFailed(
            f"session {self.id} is {why}; start a new session", operation="Spark Connect"
        )

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
        """Disconnect and TerminateSession; waits for TERMINATED; returns the last state seen.

        A TerminateSession that fails raises; the session is then still to be stopped (here,
        or at exit)."""
        with self._lock:
            if self._stopped:
                return self.state
        self.disconnect()
        self.info.state = terminate(self.target, self.application_id, self.id, timeout)
        with self._lock:
            self._stopped = True
        atexit.unregister(self.stop)
        return self.state

    def __repr__(self) -> str:  # never the token
        return f"<Spark Connect session {self.id} on {self.application_id}: {self.state}>"


def terminate(
    target: AwsTarget, application_id: str, session_id: str, timeout: float = 60.0
) -> str:
    """TerminateSession, then wait (up to ``timeout``) for TERMINATED; the last state seen."""
    state = get_session(target, application_id, session_id)["state"]
    if state not in ENDED:
        emr = target.client("emr-serverless")
        emr.terminate_session(applicationId=application_id, sessionId=session_id)
    return poll(
        lambda: get_session(target, application_id, session_id)["state"],
        until=lambda s: s in ("TERMINATED", "FAILED"),
        backoff=Backoff(first=0.05, most=0.5),
        timeout=timeout,
    )
