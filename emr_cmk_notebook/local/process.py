"""Starting, finding and stopping the local backend process, talking to its admin API, and its
status as the short table ``emr-cmk local start|status`` and ``%emr_local`` show."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emr_cmk_notebook.core.errors import BackendNotRunning, UserError
from emr_cmk_notebook.core.paths import home

ANALYTICS_ACCOUNT = "111122223333"
SECURITY_ACCOUNT = "444455556666"
STATE_FILE = "local.json"


def _admin(endpoint: str, path: str, data: dict[str, Any] | None = None, timeout: float = 10.0):
    request = urllib.request.Request(
        f"{endpoint}/_local/{path}",
        data=None if data is None else json.dumps(data).encode(),
        method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise UserError(f"local backend refused {path}: {detail}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise BackendNotRunning(
            f"no local backend answers at {endpoint} ({exc})",
            hint="start one with `emr-cmk local start --detach` or `%emr_local start`",
        ) from None


class LocalBackend:
    """A running local backend: its endpoint, its credentials, clients and settings."""

    def __init__(self, endpoint: str, pid: int, data_dir: Path, process: Any = None):
        self.endpoint = endpoint
        self.pid = pid
        self.data_dir = Path(data_dir)
        self._process = process
        self._credentials: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<LocalBackend {self.endpoint} pid={self.pid}>"

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def owned(self) -> bool:
        """True when this Python started the backend (and so stops it on exit)."""
        return self._process is not None

    @property
    def region(self) -> str:
        return "us-east-1"

    def status(self) -> dict[str, Any]:
        """Endpoint, accounts, keys, roles, applications, CloudTrail log folder and settings."""
        return _admin(self.endpoint, "status")

    def settings(self, **changes: Any) -> dict[str, Any]:
        """Change settings (``faults=``, ``lookup_tps=``, ``state_delay=``, ``job_step_delay=``)."""
        return _admin(self.endpoint, "settings", changes)

    def reset(self) -> dict[str, Any]:
        """Forget every change and lay the seed anew."""
        return _admin(self.endpoint, "reset", {})

    def env(self, account: str = ANALYTICS_ACCOUNT) -> dict[str, str]:
        """Environment variables that point boto3 and the AWS CLI at this backend as ``account``."""
        if self._credentials is None:
            self._credentials = _admin(self.endpoint, "credentials")
        if account not in self._credentials:
            known = ", ".join(sorted(self._credentials)) or "none (started without a seed)"
            raise UserError(
                f"the local backend has no credentials for account {account}; known: {known}"
            )
        creds = self._credentials[account]
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": creds["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, account: str = ANALYTICS_ACCOUNT, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` talking to this backend as ``account``."""
        import boto3
        from botocore.config import Config

        env = self.env(account)
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=kwargs.pop("config", Config(retries={"mode": "standard"})),
            **kwargs,
        )

    def stop(self) -> None:
        """Stop the backend process and forget its state file."""
        with contextlib.suppress(UserError):
            _admin(self.endpoint, "shutdown", {}, timeout=3)
        _wait_gone(self.pid, self._process)
        state = home() / STATE_FILE
        if state.exists() and _read_state(state).get("pid") == self.pid:
            state.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, process: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(timeout=5)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_state(data: dict[str, Any]) -> None:
    """Register a running backend so `emr-cmk local status|env|stop` and attach() find it."""
    target = home() / STATE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as f:
        json.dump(data, f)
    os.replace(f.name, target)


def attach() -> LocalBackend:
    """The backend `emr-cmk local start` left running; BackendNotRunning if there is none."""
    state = _read_state(home() / STATE_FILE)
    if not state or not _alive(int(state.get("pid", 0))):
        (home() / STATE_FILE).unlink(missing_ok=True)
        raise BackendNotRunning(
            "no local backend is running",
            hint="start one with `emr-cmk local start --detach` or `%emr_local start`",
        )
    return LocalBackend(state["endpoint"], int(state["pid"]), Path(state["data_dir"]))


def running() -> LocalBackend | None:
    """The registered running backend, or None."""
    try:
        return attach()
    except BackendNotRunning:
        return None


def start(
    port: int = 0, seed: str | None = "demo", *, timeout: float = 60.0, keep: bool = False
) -> LocalBackend:
    """Start a backend on 127.0.0.1 in a child process and return once it answers.

    ``port=0`` picks a free port. Unless ``keep`` is true the backend stops when this Python exits.
    """
    existing = running()
    if existing is not None:
        raise UserError(
            f"a local backend is already running at {existing.endpoint} (pid {existing.pid})",
            hint="use it, or stop it first with `emr-cmk local stop`",
        )
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {port}")
    data_dir = new_run_dir()
    ready = data_dir / "ready.json"
    log = (data_dir / "backend.log").open("ab")
    command = [
        sys.executable,
        "-m",
        "emr_cmk_notebook.local.serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--ready-file",
        str(ready),
    ]
    if seed:
        command += ["--seed", seed]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            tail = (data_dir / "backend.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise UserError(f"the local backend did not start: {' '.join(tail) or 'no output'}")
        if time.monotonic() > deadline:
            process.kill()
            raise UserError(f"the local backend did not answer within {timeout:.0f} s")
        time.sleep(0.05)
    endpoint = json.loads(ready.read_text())["endpoint"]
    backend = LocalBackend(endpoint, process.pid, data_dir, process)
    write_state({"pid": process.pid, "endpoint": endpoint, "data_dir": str(data_dir)})
    if not keep:
        atexit.register(backend.stop)
    return backend


def new_run_dir() -> Path:
    """A fresh folder for one backend run's data (CloudTrail logs, sessions, jobs)."""
    runs = home() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="local-", dir=runs))


def stop() -> bool:
    """Stop the registered backend; False when none was running."""
    backend = running()
    if backend is None:
        return False
    backend.stop()
    return True


def ensure(seed: str | None = "demo") -> LocalBackend:
    """The running backend if there is one, else a new one that stops when this Python exits."""
    return running() or start(seed=seed)


def status_table(status: dict[str, Any]) -> str:
    """The short table ``emr-cmk local start|status`` print and ``%emr_local`` shows as text."""
    lines = [f"endpoint    {status['endpoint']}", f"region      {status['region']}"]
    for account in status.get("accounts", []):
        lines.append(f"account     {account['id']} ({account['name']})  {account['user_arn']}")
    for key in status.get("keys", []):
        lines.append(f"key         {key['alias']:<28} {key['state']:<9} {key['arn']}")
    for role in status.get("roles", []):
        lines.append(f"role        {role}")
    for app in status.get("applications", []):
        lines.append(
            f"application {app['name']:<12} {app['id']}  {app['releaseLabel']:<16} "
            f"{app['state']}  account {app['account']}"
        )
    if status.get("shared_key_arn"):
        lines.append(f"shared key  {status['shared_key_arn']}")
    lines.append(f"cloudtrail  {status['cloudtrail_log_dir']}")
    return "\n".join(lines)
