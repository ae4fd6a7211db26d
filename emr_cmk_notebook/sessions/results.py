"""What sessions and statements return: objects that render themselves in a notebook."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from typing import Any

from emr_cmk_notebook.core.errors import EmrCmkError
from emr_cmk_notebook.core.resource_usage import usage_rows
from emr_cmk_notebook.sessions.owner import Owner

SESSION_OVERRIDE = "session override"
APPLICATION_DEFAULT = "application default"
AWS_OWNED = "AWS owned key"
# A line that states an error: ``ZeroDivisionError: division by zero``,
# ``org.apache.spark.SparkException: ...``; the last one in a Spark error is its root cause.
_ERROR_LINE = re.compile(r"^(?:[\w$]+\.)*\w*(?:Error|Exception)\w*: \S")
# The one line of a failed statement stays readable; the whole text is in the traceback.
ERROR_LINE_LIMIT = 400


class StatementFailed(EmrCmkError):
    """A statement ended with an error on the session; the message is ``ename: evalue``."""

    def __init__(self, result: StatementResult):
        self.result = result
        super().__init__(error_line(result.ename, result.evalue))


def error_line(ename: Any, evalue: Any) -> str:
    """``ename: evalue`` in one line: the first line of the value and, when the value is a Spark
    error wrapping others (a Python error in a task under Java's stack), the root error.

    ``Py4JJavaError: An error occurred while calling ... … ZeroDivisionError: division by zero``
    """
    lines = [" ".join(line.split()) for line in str(evalue or "").splitlines() if line.strip()]
    first = lines[0] if lines else ""
    root = next((line for line in reversed(lines[1:]) if _ERROR_LINE.match(line)), None)
    text = f"{ename}: {first}"
    if root is not None:
        # The root error is the point: the first line gives way to it when both are long.
        room = max(ERROR_LINE_LIMIT // 2, ERROR_LINE_LIMIT - len(root) - len(str(ename)) - 5)
        if len(first) > room:
            first = first[: room - 1] + "…"
        text = f"{ename}: {first} … {root}"
    text = " ".join(text.split())
    if len(text) > ERROR_LINE_LIMIT:
        text = text[: ERROR_LINE_LIMIT - 1] + "…"
    return text


@dataclass
class SessionInfo:
    """One session (Livy or Spark Connect): its state, its disk key and where that key came from."""

    # Livy session ids are numbers; sessions API (Spark Connect) ids are strings.
    id: int | str
    application_id: str
    state: str
    name: str | None = None
    # ``livy`` or ``connect`` (Spark Connect, the sessions API).
    transport: str = "livy"
    # The Livy session kind (pyspark, spark, sql...); None for a Spark Connect session.
    kind: str | None = "pyspark"
    role_arn: str | None = None
    key_arn: str | None = None
    key_source: str = AWS_OWNED
    context: dict[str, str] = field(default_factory=dict)
    spark_app_id: str | None = None
    keep: bool = False
    started_here: bool = False
    active: bool = False
    # Epoch seconds just before the create request (or the service's start time); None if unknown.
    started_at: float | None = None
    # Who started it, from its tags (Spark Connect) or its name (Livy); None if not said.
    owner: Owner | None = None
    idle_timeout_minutes: int | None = None
    # Epoch seconds since when the session has been idle; None while busy or unknown.
    idle_since: float | None = None
    dashboard: str | None = None
    # ``{"total": {...}, "billed": {...}}`` of vCPUHour, memoryGBHour, storageGBHour, where the
    # API gives them (Spark Connect sessions); None otherwise.
    utilization: dict[str, dict[str, float]] | None = None
    # Live, and started (not kept) by a kernel of this user on this host that no longer runs
    # (set by list).
    orphaned: bool = False

    def idle_minutes(self, now: float | None = None) -> float | None:
        """How long the session has been idle, in minutes (None when not idle or not known)."""
        if self.idle_since is None:
            return None
        return max(0.0, ((now or time.time()) - self.idle_since) / 60)

    def lifetime_rows(self) -> list[tuple[str, str]]:
        """When it started, how long it has been idle, when it ends, what it has used."""
        rows = [
            ("started at", _when(self.started_at)),
            ("idle since", _when(self.idle_since) if self.idle_since else "(not idle)"),
            (
                "idle timeout",
                f"{self.idle_timeout_minutes} min" if self.idle_timeout_minutes else "(not set)",
            ),
            ("dashboard", self.dashboard or "(none)"),
        ]
        rows += usage_rows(self.utilization)
        if self.owner is not None:
            rows.append(("started by", str(self.owner)))
        return rows

    def key_text(self) -> str:
        if not self.key_arn:
            return f"{AWS_OWNED} (no customer managed key)"
        return f"{self.key_arn} ({self.key_source})"

    def rows(self) -> list[tuple[str, str]]:
        context = ", ".join(f"{k}={v}" for k, v in self.context.items()) or "(none)"
        ending = "kept after the kernel exits" if self.keep else "deleted when the kernel exits"
        rows = [
            ("session", f"{self.id}" + (f" ({self.name})" if self.name else "")),
            ("application", self.application_id),
            ("state", self.state),
            ("disk key", self.key_text()),
            ("encryption context", context),
            ("execution role", self.role_arn or "(unknown)"),
        ]
        if self.transport == "connect":
            rows.append(("transport", "Spark Connect"))
        else:
            rows.append(("transport", f"Livy ({self.kind})"))
            rows.append(("Spark application", self.spark_app_id or "(not yet)"))
        rows.append(("lifetime", ending if self.started_here else "attached, not started here"))
        if self.orphaned:
            rows.append(("orphaned", "its kernel no longer runs: %emr_session stop --orphans"))
        return rows + self.lifetime_rows()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "application_id": self.application_id,
            "state": self.state,
            "kind": self.kind,
            "transport": self.transport,
            "role_arn": self.role_arn,
            "key_arn": self.key_arn,
            "key_source": self.key_source,
            "context": dict(self.context),
            "spark_app_id": self.spark_app_id,
            "keep": self.keep,
            "started_here": self.started_here,
            "started_at": self.started_at,
            "idle_since": self.idle_since,
            "idle_timeout_minutes": self.idle_timeout_minutes,
            "dashboard": self.dashboard,
            "utilization": self.utilization,
            "owner": str(self.owner) if self.owner else None,
            "orphaned": self.orphaned,
        }

    def __repr__(self) -> str:
        return "\n".join(f"{k:<19} {v}" for k, v in self.rows())

    def _repr_html_(self) -> str:
        from emr_cmk_notebook.render import table_html

        return table_html(self.rows(), "EMR Serverless session")


@dataclass
class SessionList:
    """The caller's sessions on an application."""

    sessions: list[SessionInfo]

    def to_frame(self) -> Any:
        import pandas as pd

        columns = [
            "id", "transport", "name", "state", "key_arn", "key_source", "started_here", "active",
            "owner", "orphaned",
        ]  # fmt: skip
        rows = [{**s.to_dict(), "active": s.active} for s in self.sessions]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.sessions]

    def _lines(self) -> list[str]:
        return [
            f"{'*' if s.active else ' '} {s.id!s:<16} {s.transport:<7} {s.state:<13} "
            f"{s.name or '-':<28} {s.key_text()}" + (" ORPHANED" if s.orphaned else "")
            for s in self.sessions
        ]

    def __repr__(self) -> str:
        return "\n".join(self._lines()) or "no sessions"

    def _repr_html_(self) -> str:
        if not self.sessions:
            return "<p>no sessions</p>"
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td><code>{html.escape(str(v))}</code></td>"
                for v in (
                    "*" if s.active else "",
                    s.id,
                    s.transport,
                    s.state + (" (orphaned)" if s.orphaned else ""),
                    s.name or "",
                    s.key_text(),
                )
            )
            + "</tr>"
            for s in self.sessions
        )
        head = (
            "<tr><th>active</th><th>id</th><th>transport</th><th>state</th><th>name</th>"
            "<th>disk key</th></tr>"
        )
        return f"<table>{head}{rows}</table>"


@dataclass
class OrphanedSessions:
    """Sessions kernels of this user on this host left running when they died, and what stopping
    them did: one line each with its id, transport, application, state and who started it."""

    sessions: list[SessionInfo]
    # False when they were only found (a dry run).
    stopping: bool = True
    # Session id -> why it could not be ended (it still runs, and bills).
    failures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stopping": self.stopping,
            "sessions": [
                {**s.to_dict(), "stopped": self._stopped(s), "error": self.failures.get(str(s.id))}
                for s in self.sessions
            ],
        }

    def _stopped(self, info: SessionInfo) -> bool:
        return self.stopping and str(info.id) not in self.failures

    def __repr__(self) -> str:
        if not self.sessions:
            return "no orphaned sessions"
        lines = []
        for s in self.sessions:
            failed = self.failures.get(str(s.id))
            lines.append(
                f"  {s.id!s:<16} {s.transport:<7} {s.application_id:<16} {s.state:<13} "
                f"started by {s.owner}" + (f"; NOT STOPPED: {failed}" if failed else "")
            )
        count = len(self.sessions)
        if not self.stopping:
            head = f"{count} orphaned session(s), not stopped (dry run):"
        elif self.failures:
            head = (
                f"stopped {count - len(self.failures)} of {count} orphaned session(s); "
                f"{len(self.failures)} still running (and billed):"
            )
        else:
            head = f"stopped {count} orphaned session(s):"
        return "\n".join([head, *lines])


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "(unknown)"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    return f"{stamp} ({max(0, time.time() - epoch) / 60:.0f} min ago)"


@dataclass
class SessionLog:
    """The tail of a session's log."""

    session_id: int
    lines: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "lines": list(self.lines)}

    def __repr__(self) -> str:
        return "\n".join(self.lines) or f"session {self.session_id}: the log is empty"


@dataclass
class StatementResult:
    """A statement's output: text, a JSON table, or an error with the remote traceback."""

    session_id: int
    statement_id: int
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] = field(default_factory=list)
    started_ms: int = 0
    completed_ms: int = 0

    @classmethod
    def from_livy(cls, session_id: int, statement: dict[str, Any]) -> StatementResult:
        output = statement.get("output") or {}
        if statement.get("state") == "cancelled":
            output = {
                "status": "error",
                "ename": "Cancelled",
                "evalue": "the statement was cancelled",
            }
        return cls(
            session_id=session_id,
            statement_id=int(statement["id"]),
            status=output.get("status", "error"),
            data=dict(output.get("data") or {}),
            ename=output.get("ename"),
            evalue=output.get("evalue"),
            traceback=list(output.get("traceback") or []),
            started_ms=int(statement.get("started") or 0),
            completed_ms=int(statement.get("completed") or 0),
        )

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str:
        """The plain-text output (what the statement printed, and its last expression)."""
        return str(self.data.get("text/plain", ""))

    @property
    def table(self) -> dict[str, Any] | None:
        """The ``application/json`` table (``{schema, data}``) of a SQL statement, if any."""
        table = self.data.get("application/json")
        return table if isinstance(table, dict) and "data" in table else None

    @property
    def server_seconds(self) -> float:
        """How long the statement ran on the session, by the server's clock."""
        if not (self.started_ms and self.completed_ms):
            return 0.0
        return (self.completed_ms - self.started_ms) / 1000.0

    def traceback_text(self) -> str:
        """The remote traceback as text (the session's, not this kernel's)."""
        return "".join(line if line.endswith("\n") else line + "\n" for line in self.traceback)

    def raise_for_error(self) -> StatementResult:
        """Raise StatementFailed when the statement failed; return self otherwise."""
        if not self.ok:
            raise StatementFailed(self)
        return self

    def to_frame(self) -> Any:
        """The JSON table as a pandas DataFrame (columns named and typed by its schema)."""
        table = self.table
        if table is None:
            raise EmrCmkError(
                "this statement returned no table; run SQL with --sql, or end a pyspark cell "
                "with a DataFrame and use -o"
            )
        return table_to_frame(table)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "statement_id": self.statement_id,
            "status": self.status,
            "data": self.data,
            "ename": self.ename,
            "evalue": self.evalue,
            "traceback": self.traceback,
        }

    def __repr__(self) -> str:
        if not self.ok:
            return f"{self.ename}: {self.evalue}\n{self.traceback_text()}".rstrip()
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        if self.ok and self.table is not None:
            bundle["text/html"] = table_to_frame(self.table).to_html(max_rows=50)
        return bundle


# Spark SQL type names and the pandas dtypes that hold them without loss.
_DTYPES = {
    "long": "Int64",
    "integer": "Int32",
    "short": "Int16",
    "byte": "Int8",
    "double": "float64",
    "float": "float32",
    "boolean": "boolean",
    "string": "string",
}


def table_to_frame(table: dict[str, Any]) -> Any:
    """A Livy ``{schema, data}`` table as a pandas DataFrame."""
    import pandas as pd

    fields = (table.get("schema") or {}).get("fields") or []
    columns = [f["name"] for f in fields]
    rows = table.get("data") or []
    if not columns and rows:
        columns = [f"_{i + 1}" for i in range(len(rows[0]))]
    frame = pd.DataFrame(rows, columns=columns)
    for f in fields:
        dtype = _DTYPES.get(f.get("type")) if isinstance(f.get("type"), str) else None
        if dtype:
            frame[f["name"]] = frame[f["name"]].astype(dtype)
    return frame
