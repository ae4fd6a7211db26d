"""``python -m emr_cmk_notebook.local.livy_runner``: one Livy session's Spark driver.

The backend starts this process, sends a ``start`` message with the Spark settings on stdin and
then one JSON message per line: ``run`` (a statement), ``cancel`` (the running statement) or
``stop``. Answers go back as JSON lines on the process's original stdout (``ready``, ``started``,
``progress``, ``result``, ``failed``); file descriptor 1 is pointed at stderr before the JVM
starts, so Spark's own output and log lines end up on stderr, which the backend keeps as the
session log.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import decimal
import io
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import IO, Any

SQL_MAX_ROWS = 1000
# The file name statements are compiled under; tracebacks and interrupts look for it.
STATEMENT_FILE = "<stdin>"
CANCEL_RETRY_SECONDS = 0.2
# How often the running statement's Spark jobs are read from Spark's status tracker.
PROGRESS_SECONDS = 0.25


class StatementCancelled(BaseException):
    """Raised in the statement's code when its cancel arrives (BaseException: user ``except
    Exception`` blocks must not swallow it)."""


class Channel:
    """JSON lines to the backend over a private copy of the original stdout."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(json.dumps(message, default=str) + "\n")
            self._stream.flush()


class Runner:
    """Runs statements one at a time in the main thread, in one namespace shared by all of them."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self.execution_count = 0
        self.spark: Any = None
        # The id of the statement running now, and whether its cancel has arrived.
        self.current: int | None = None
        self.cancelling = threading.Event()

    # --- control thread ----------------------------------------------------------------------

    def read_commands(self, stream: IO[str]) -> None:
        """Feed the main thread; cancel and stop are handled here so they work while it is busy."""
        for line in stream:
            message = json.loads(line)
            op = message.get("op")
            if op == "cancel":
                self.cancel(message["id"])
            elif op == "stop":
                break
            else:
                self.inbox.put(message)
        self.shutdown()

    def cancel(self, statement_id: int) -> None:
        if self.current != statement_id or self.cancelling.is_set():
            return
        self.cancelling.set()
        threading.Thread(target=self._keep_cancelling, args=(statement_id,), daemon=True).start()

    def _keep_cancelling(self, statement_id: int) -> None:
        # A job submitted just after a cancel would escape it, so cancel until the statement ends.
        main = threading.main_thread().ident
        while self.current == statement_id:
            if self.spark is not None:
                with contextlib.suppress(Exception):
                    self.spark.sparkContext.cancelJobGroup(_job_group(statement_id))
            if main is not None:
                signal.pthread_kill(main, signal.SIGINT)
            time.sleep(CANCEL_RETRY_SECONDS)

    def on_interrupt(self, signum: int, frame: Any) -> None:
        """Interrupt the statement's own code, never this runner's nor a py4j call."""
        if self.current is None or not self.cancelling.is_set():
            return
        in_statement = False
        while frame is not None:
            # Breaking a py4j call would leave its connection half-read; the job cancel ends it.
            if frame.f_globals.get("__name__", "").startswith("py4j"):
                return
            in_statement = in_statement or frame.f_code.co_filename == STATEMENT_FILE
            frame = frame.f_back
        if in_statement:
            raise StatementCancelled()

    def shutdown(self) -> None:
        """End the JVM first (it is our child), then this process, without waiting for Spark."""
        gateway = _gateway()
        proc = getattr(gateway, "proc", None)
        if proc is not None:
            proc.kill()
            proc.wait()
        os._exit(0)

    # --- main thread -------------------------------------------------------------------------

    def start(self, message: dict[str, Any]) -> None:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder
        for key, value in message["conf"].items():
            builder = builder.config(key, value)
        self.spark = builder.getOrCreate()
        sc = self.spark.sparkContext
        self.namespace.update({"spark": self.spark, "sc": sc, "sqlContext": _sql_context(sc)})
        signal.signal(signal.SIGINT, self.on_interrupt)
        self.channel.send({"event": "ready", "appId": sc.applicationId})

    def serve(self) -> None:
        while True:
            message = self.inbox.get()
            if message.get("op") == "run":
                self.run(message["id"], message["code"], message.get("kind", "pyspark"))

    def run(self, statement_id: int, code: str, kind: str) -> None:
        count, self.execution_count = self.execution_count, self.execution_count + 1
        self.cancelling.clear()
        self.current = statement_id
        self.spark.sparkContext.setJobGroup(_job_group(statement_id), code[:200], True)
        self.channel.send({"event": "started", "id": statement_id})
        threading.Thread(target=self._report_progress, args=(statement_id,), daemon=True).start()
        try:
            data = self.run_sql(code) if kind == "sql" else self.run_python(code)
            output: dict[str, Any] = {"status": "ok", "data": data}
        except BaseException as exc:
            output = _error_output(exc)
        finally:
            self.current = None
        cancelled = self.cancelling.is_set() and output["status"] == "error"
        output["execution_count"] = count
        self.channel.send(
            {"event": "result", "id": statement_id, "output": output, "cancelled": cancelled}
        )

    def _report_progress(self, statement_id: int) -> None:
        """Send the statement's tasks (done, total) whenever they change."""
        last = None
        while self.current == statement_id:
            with contextlib.suppress(Exception):  # a JVM that is going away reports nothing
                counts = job_group_progress(self.spark.sparkContext, _job_group(statement_id))
                if counts != last and self.current == statement_id:
                    self.channel.send({"event": "progress", "id": statement_id, **counts})
                    last = counts
            time.sleep(PROGRESS_SECONDS)

    def run_python(self, code: str) -> dict[str, Any]:
        """Run ``code``; its printed output plus the repr of a final expression is the text."""
        tree = ast.parse(code, filename=STATEMENT_FILE, mode="exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            exec(compile(tree, STATEMENT_FILE, "exec"), self.namespace)
            if last is not None:
                expression = ast.Expression(last.value)
                value = eval(compile(expression, STATEMENT_FILE, "eval"), self.namespace)
                if value is not None:
                    print(repr(value))
        return {"text/plain": captured.getvalue().rstrip("\n")}

    def run_sql(self, code: str) -> dict[str, Any]:
        """Run one SQL query; Livy's shape: ``application/json`` = ``{schema, data}``."""
        frame = self.spark.sql(code)
        rows = frame.take(SQL_MAX_ROWS)
        table = {
            "schema": json.loads(frame.schema.json()),
            "data": [[_jsonable(value) for value in row] for row in rows],
        }
        text = frame._jdf.showString(20, 20, False)
        return {"application/json": table, "text/plain": text.rstrip("\n")}


def job_group_progress(sc: Any, group: str) -> dict[str, list[int]]:
    """Spark's own count of a job group's tasks, ``{"tasks": [done, total]}`` over all its jobs'
    stages: what Livy makes a statement's ``progress`` from."""
    tracker = sc.statusTracker()
    jobs = [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(group)]
    stage_ids = {stage for job in jobs if job is not None for stage in job.stageIds}
    # A stage not submitted yet (or skipped) has no info: its tasks are not known yet.
    stages = [s for s in map(tracker.getStageInfo, stage_ids) if s is not None]
    return {"tasks": [sum(s.numCompletedTasks for s in stages), sum(s.numTasks for s in stages)]}


def _job_group(statement_id: int) -> str:
    return f"livy-statement-{statement_id}"


def _sql_context(sc: Any) -> Any:
    import warnings

    from pyspark.sql import SQLContext

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return SQLContext(sc)


def _gateway() -> Any:
    module = sys.modules.get("pyspark.context")
    return getattr(getattr(module, "SparkContext", None), "_gateway", None)


def _jsonable(value: Any) -> Any:
    """A SQL cell as Livy writes it: decimals as numbers, dates and times as text."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.datetime | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "asDict"):
        return _jsonable(value.asDict())
    return value


def _error_output(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, StatementCancelled | KeyboardInterrupt):
        return {"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
    frames = traceback.extract_tb(exc.__traceback__)
    # Only the user's own lines: frames before the first <stdin> one belong to this runner.
    first = next((i for i, f in enumerate(frames) if f.filename == STATEMENT_FILE), len(frames))
    lines = traceback.format_list(frames[first:])
    lines += traceback.format_exception_only(type(exc), exc)
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": lines,
    }


def main() -> None:
    # Keep the real stdout for messages; anything else written to fd 1 (the JVM's output
    # included, as it inherits it) goes to stderr, the session log.
    channel = Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    runner = Runner(channel)
    first = sys.stdin.readline()
    if not first:
        return
    threading.Thread(target=runner.read_commands, args=(sys.stdin,), daemon=True).start()
    try:
        runner.start(json.loads(first))
    except Exception as exc:
        channel.send({"event": "failed", "message": f"{type(exc).__name__}: {exc}"})
        runner.shutdown()
    runner.serve()


if __name__ == "__main__":
    main()
