"""One Livy session of the local backend: its state, statements and log, and the Spark driver
(``spark_driver``) it runs in.

A session first has the emulated service use its disk key (GenerateDataKey + Decrypt as
``emr-serverless.amazonaws.com``); only then does Spark start, in a child process of its own
process group with a private ``spark.local.dir``, so ending the session leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from emr_cmk_notebook.local.emr_jobs import key_failure
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.spark_driver import DEFAULT_SPARK_CONF, FORCED_SPARK_CONF, SparkDriver

FINAL_STATES = frozenset({"error", "dead", "killed", "success"})
LOG_LINES_KEPT = 10_000
LOG_LINES_IN_VIEW = 10
# Livy's limit on one message from the session (livy.rsc.rpc.max.size, RSCConf's default 50 MiB);
# a session's conf may set it, as Livy passes livy.rsc.* settings on to the session.
MESSAGE_LIMIT_SETTING = "livy.rsc.rpc.max.size"
DEFAULT_MESSAGE_LIMIT = 50 * 1024 * 1024
# Spark's own default for spark.redaction.regex.
_SECRET_NAME = re.compile(r"(?i)secret|password|token|access[.]key")
REDACTED = "*********(redacted)"


def redacted(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with the values of secret-looking settings hidden, as Spark's UI hides them."""
    return {k: REDACTED if _SECRET_NAME.search(k) else v for k, v in conf.items()}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _log_line(level: str, message: str) -> str:
    # Spark's console pattern, so service lines read like the driver's own.
    return f"{time.strftime('%y/%m/%d %H:%M:%S')} {level} EmrServerless: {message}"


@dataclass
class Statement:
    """One statement: the code, where it is in its life, and its output."""

    id: int
    code: str
    kind: str
    state: str = "waiting"
    output: dict[str, Any] | None = None
    started: int = 0
    completed: int = 0
    # Tasks of the statement's Spark jobs, done and in all, as its driver last reported them.
    tasks: tuple[int, int] = (0, 0)

    def view(self) -> dict[str, Any]:
        """The Livy statement object."""
        done = self.state in ("available", "error", "cancelled")
        finished, total = self.tasks
        return {
            "id": self.id,
            "code": self.code,
            "state": self.state,
            "output": self.output,
            # Livy's progress: completed tasks of the statement's jobs over their tasks.
            "progress": 1.0 if done else (finished / total if total else 0.0),
            "started": self.started,
            "completed": self.completed,
        }


@dataclass
class SessionSpec:
    """What a session was created with, after the endpoint checked it."""

    id: int
    app_id: str
    app_arn: str
    account: str
    region: str
    owner: str
    kind: str
    name: str | None
    conf: dict[str, str]
    spark_conf: dict[str, str]
    ttl: str | None
    ttl_seconds: float | None
    # (key ARN, encryption context including applicationId), or None for an AWS owned key.
    disk: tuple[str, dict[str, str]] | None


class LivySession:
    """A session's state machine, statements and log; thread-safe."""

    def __init__(self, spec: SessionSpec, work_dir: Path):
        self.spec = spec
        self.id = spec.id
        self.state = "not_started"
        self.spark_app_id: str | None = None
        self.statements: dict[int, Statement] = {}
        self.log: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self.last_activity = time.monotonic()
        self.local_dir: Path | None = None
        self._work_dir = work_dir
        self._driver: SparkDriver | None = None
        self._lock = threading.RLock()
        self._stopped = threading.Event()

    # --- views ---------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.state not in FINAL_STATES

    def view(self) -> dict[str, Any]:
        """The Livy session object (secret-looking conf values hidden)."""
        with self._lock:
            return {
                "id": self.id,
                "name": self.spec.name,
                "appId": self.spark_app_id,
                "owner": self.spec.owner,
                "proxyUser": None,
                "state": self.state,
                "kind": self.spec.kind,
                "appInfo": {"driverLogUrl": None, "sparkUiUrl": None},
                "log": list(self.log)[-LOG_LINES_IN_VIEW:],
                "ttl": self.spec.ttl,
                "conf": redacted(self.spec.conf),
            }

    def log_page(self, start: int | None, size: int | None) -> dict[str, Any]:
        """``GET /sessions/{id}/log``: Livy's paging, the last ``size`` lines by default."""
        with self._lock:
            lines = list(self.log)
        size = 100 if size is None else size
        if size < 0:
            size = len(lines)
        if start is None or start < 0:
            start = max(0, len(lines) - size)
        return {
            "id": self.id,
            "from": start,
            "total": len(lines),
            "log": lines[start : start + size],
        }

    def statement_views(self) -> list[dict[str, Any]]:
        """Every statement, oldest first."""
        with self._lock:
            return [s.view() for s in sorted(self.statements.values(), key=lambda s: s.id)]

    def idle_for(self) -> float:
        """Seconds since the session last ran something (0 unless it is idle)."""
        with self._lock:
            return time.monotonic() - self.last_activity if self.state == "idle" else 0.0

    def note(self, message: str, level: str = "INFO") -> None:
        """Add a service line to the session log."""
        with self._lock:
            self.log.append(_log_line(level, message))

    # --- start -----------------------------------------------------------------------------------

    def start(
        self,
        assume_role: Callable[[], str | None],
        use_disk_key: Callable[[str, dict[str, str]], None],
        delay: float,
    ) -> None:
        """Begin starting in the background: the service assumes the execution role
        (``assume_role`` says why it cannot), uses the disk key, then starts the Spark driver."""
        with self._lock:
            self.state = "starting"
        threading.Thread(
            target=self._start,
            args=(assume_role, use_disk_key, delay),
            name=f"livy-start-{self.id}",
            daemon=True,
        ).start()

    def _start(
        self,
        assume_role: Callable[[], str | None],
        use_disk_key: Callable[[str, dict[str, str]], None],
        delay: float,
    ) -> None:
        problem = assume_role()
        if problem:
            self.note(problem, "ERROR")
            self._finish("dead")
            return
        disk = self.spec.disk
        if disk is None:
            self.note("Worker disks use an AWS owned key (no customer managed key configured)")
        else:
            key_arn, context = disk
            try:
                use_disk_key(key_arn, context)
            except AwsError as err:
                self.note(key_failure(key_arn, err), "ERROR")
                self._finish("dead")
                return
            self.note(
                f"Worker disks encrypted with KMS key {key_arn}, encryption context {context}"
            )
        with self._lock:
            if self._stopped.is_set():
                return
            self.local_dir = Path(
                tempfile.mkdtemp(prefix=f"livy-{self.spec.app_id}-{self.id}-", dir=self._work_dir)
            )
            try:
                self._driver = SparkDriver.launch()
            except OSError as exc:
                self.note(f"Could not start the Spark driver: {exc}", "ERROR")
                self._finish("dead")
                return
            driver = self._driver
        conf = {
            **DEFAULT_SPARK_CONF,
            **self.spec.spark_conf,
            **FORCED_SPARK_CONF,
            "spark.local.dir": str(self.local_dir),
            "spark.app.name": f"livy-session-{self.id}",
        }
        threading.Thread(target=self._read_log, args=(driver.process.stderr,), daemon=True).start()
        threading.Thread(
            target=self._read_events, args=(driver, delay), name=f"livy-{self.id}", daemon=True
        ).start()
        driver.send({"op": "start", "conf": conf})

    # --- driver events ---------------------------------------------------------------------------

    def _read_log(self, stream: IO[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                with self._lock:
                    self.log.append(line.rstrip("\n"))

    def _read_events(self, driver: SparkDriver, delay: float) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in driver.process.stdout:
                event = json.loads(line)
                kind = event["event"]
                if kind == "ready":
                    self._ready(event["appId"], delay)
                elif kind == "started":
                    self._statement_started(event["id"])
                elif kind == "progress":
                    self._statement_progress(event["id"], event["tasks"])
                elif kind == "result":
                    self._statement_done(event["id"], event["output"], event["cancelled"])
                elif kind == "failed":
                    self.note(f"Spark did not start: {event['message']}", "ERROR")
        code = driver.process.wait()
        if not self._stopped.is_set():
            self.note(f"The Spark driver exited unexpectedly with code {code}", "ERROR")
            self.stop("dead")

    def _ready(self, spark_app_id: str, delay: float) -> None:
        if delay > 0 and self._stopped.wait(delay):
            return
        with self._lock:
            self.spark_app_id = spark_app_id
            if self.state != "starting":
                return
            self.state = "idle"
            self.last_activity = time.monotonic()
        self.note(f"Session {self.id} is ready (Spark application {spark_app_id})")
        self._run_next()

    def _statement_started(self, statement_id: int) -> None:
        with self._lock:
            statement = self.statements[statement_id]
            if statement.state == "waiting":
                statement.state = "running"
            statement.started = _now_ms()

    def _statement_progress(self, statement_id: int, tasks: list[int]) -> None:
        with self._lock:
            statement = self.statements[statement_id]
            if statement.state in ("running", "cancelling"):
                statement.tasks = (int(tasks[0]), int(tasks[1]))

    def _statement_done(self, statement_id: int, output: dict[str, Any], cancelled: bool) -> None:
        with self._lock:
            statement = self.statements[statement_id]
            statement.output = self._within_message_limit(output)
            statement.completed = _now_ms()
            statement.state = "cancelled" if cancelled else "available"
            if self.state == "busy":
                self.state = "idle"
            self.last_activity = time.monotonic()
        self._run_next()

    def _within_message_limit(self, output: dict[str, Any]) -> dict[str, Any]:
        """The output, or the error Livy gives when it is larger than one message may be."""
        limit = int(self.spec.conf.get(MESSAGE_LIMIT_SETTING, DEFAULT_MESSAGE_LIMIT))
        size = len(json.dumps(output).encode())
        if size <= limit:
            return output
        return {
            "status": "error",
            "execution_count": output.get("execution_count"),
            "ename": "IllegalArgumentException",
            "evalue": f"Message ({size} bytes) exceeds maximum allowed size ({limit} bytes).",
            "traceback": [],
        }

    def _run_next(self) -> None:
        """Hand the oldest waiting statement to the driver when it has nothing to do."""
        with self._lock:
            if self.state != "idle" or self._driver is None:
                return
            waiting = [s for s in self.statements.values() if s.state == "waiting"]
            if not waiting:
                return
            statement = min(waiting, key=lambda s: s.id)
            self.state = "busy"
            self._driver.send(
                {"op": "run", "id": statement.id, "code": statement.code, "kind": statement.kind}
            )

    # --- statements ------------------------------------------------------------------------------

    def submit(self, code: str, kind: str) -> Statement:
        """Queue a statement; it runs once the statements before it are done."""
        with self._lock:
            statement = Statement(id=len(self.statements), code=code, kind=kind)
            self.statements[statement.id] = statement
            self.last_activity = time.monotonic()
        self._run_next()
        return statement

    def cancel(self, statement_id: int) -> None:
        """Cancel a waiting statement at once, or interrupt the running one."""
        with self._lock:
            statement = self.statements[statement_id]
            if statement.state == "waiting":
                statement.state = "cancelled"
                statement.completed = _now_ms()
            elif statement.state == "running" and self._driver is not None:
                statement.state = "cancelling"
                self._driver.send({"op": "cancel", "id": statement_id})

    # --- end -------------------------------------------------------------------------------------

    def stop(self, final_state: str = "killed", reason: str | None = None) -> None:
        """End the session: kill its process group and remove its local dir (idempotent)."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            if reason:
                self.log.append(_log_line("INFO", reason))
            self.state = "shutting_down"
            driver, self._driver = self._driver, None
        if driver is not None:
            driver.stop()
        self._finish(final_state)

    def _finish(self, final_state: str) -> None:
        self._stopped.set()
        if self.local_dir is not None:
            shutil.rmtree(self.local_dir, ignore_errors=True)
        with self._lock:
            for statement in self.statements.values():
                if statement.state in ("waiting", "running", "cancelling"):
                    statement.state = "cancelled"
                    statement.completed = _now_ms()
            self.state = final_state
