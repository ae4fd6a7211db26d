"""Running a job run's entry point for real: a Python script with local-mode Spark.

The script runs in its own process group with ``PYSPARK_SUBMIT_ARGS`` set, so a
``SparkSession.builder.getOrCreate()`` in it gets local mode with IO encryption on and a private
``spark.local.dir``, as the run's encrypted worker disks would be. ``s3://`` entry points are read
from the backend's S3.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emr_cmk_notebook.local.spark_driver import java_environment

Finished = Callable[[bool, str], None]
FetchS3 = Callable[[str, str, str], bytes]  # (account, bucket, key) -> bytes


def spark_submit_args(local_dir: Path, extra: str = "") -> str:
    """PYSPARK_SUBMIT_ARGS for one encrypted local-mode run."""
    confs = {
        "spark.io.encryption.enabled": "true",
        "spark.local.dir": str(local_dir),
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    parts = ["--master", "local[2]"]
    for name, value in confs.items():
        parts += ["--conf", f"{name}={value}"]
    return " ".join([shlex.join(parts), extra, "pyspark-shell"]).strip()


class LocalJobExecutor:
    """Starts, watches and cancels the processes of running job runs."""

    def __init__(self, work_root: Path, fetch_s3: FetchS3):
        self.work_root = Path(work_root)
        self.fetch_s3 = fetch_s3
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, run: Any, finished: Finished) -> None:
        """Run ``run``'s entry point; ``finished(ok, details)`` is called once it ends."""
        driver = (run.request.get("jobDriver") or {}).get("sparkSubmit") or {}
        work = Path(tempfile.mkdtemp(prefix=f"job-{run.id}-", dir=self._ensure_root()))
        try:
            script = self._script(run.account, driver.get("entryPoint", ""), work)
        except (OSError, ValueError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            finished(False, str(exc))
            return
        env = java_environment()
        env["PYSPARK_SUBMIT_ARGS"] = spark_submit_args(
            work / "spark-local", driver.get("sparkSubmitParameters", "")
        )
        with (work / "output.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(script), *driver.get("entryPointArguments", [])],
                cwd=work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with self._lock:
            self._processes[run.id] = process
        threading.Thread(
            target=self._watch, args=(run.id, process, work, finished), daemon=True
        ).start()

    def _ensure_root(self) -> Path:
        self.work_root.mkdir(parents=True, exist_ok=True)
        return self.work_root

    def _script(self, account: str, entry_point: str, work: Path) -> Path:
        if entry_point.startswith("s3://"):
            bucket, _, key = entry_point[len("s3://") :].partition("/")
            try:
                body = self.fetch_s3(account, bucket, key)
            except Exception as exc:
                raise ValueError(f"cannot read entry point {entry_point}: {exc}") from None
            script = work / Path(key).name
            script.write_bytes(body)
        else:
            path = entry_point
            for scheme in ("local://", "file://"):
                if path.startswith(scheme):
                    path = path[len(scheme) :]
            script = Path(path)
            if not script.is_file():
                raise ValueError(f"entry point {entry_point} not found")
        if script.suffix != ".py":
            raise ValueError(
                f"entry point {entry_point} is not a Python script; the local backend runs .py only"
            )
        return script

    def _watch(self, run_id: str, process: subprocess.Popen, work: Path, done: Finished) -> None:
        code = process.wait()
        with self._lock:
            self._processes.pop(run_id, None)
        tail = (work / "output.log").read_text(errors="replace").strip().splitlines()[-3:]
        shutil.rmtree(work, ignore_errors=True)
        if code == 0:
            done(True, "")
        else:
            done(False, f"entry point exited with code {code}: {' | '.join(tail)}"[:1000])

    def cancel(self, run_id: str) -> None:
        """Stop a run's process group."""
        with self._lock:
            process = self._processes.get(run_id)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop every running process."""
        with self._lock:
            running = list(self._processes)
        for run_id in running:
            self.cancel(run_id)
