"""The backend's own controls: fault injection, reset, stop, and how it refuses bad requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emr_cmk_notebook.core.errors import UserError

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


@pytest.fixture
def faults(backend):
    """Set faults for one test and always clear them afterwards."""

    def apply(**settings):
        backend.settings(faults={"seed": 7, **settings})

    yield apply
    backend.settings(faults={})


def test_injected_latency_slows_each_call(backend, faults):
    kms = backend.client("kms")
    kms.list_aliases()
    started = time.perf_counter()
    kms.list_aliases()
    baseline = time.perf_counter() - started
    faults(latency_ms=300, services=["kms"])
    started = time.perf_counter()
    kms.list_aliases()
    assert time.perf_counter() - started >= 0.3 > baseline


def test_injected_errors_are_5xx_that_boto3_retries(backend, faults):
    faults(error_rate=1.0, services=["kms"])
    kms = backend.client("kms", config=Config(retries={"mode": "standard", "max_attempts": 2}))
    with pytest.raises(ClientError) as exc:
        kms.list_keys()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] >= 1


def test_injected_throttling_only_hits_the_named_service(backend, faults):
    faults(throttle_rate=1.0, services=["emr-serverless"])
    emr = backend.client("emr-serverless", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        emr.list_applications()
    assert exc.value.response["Error"]["Code"] == "ThrottlingException"
    assert backend.client("kms").list_keys()["Keys"]


def test_bad_settings_are_refused(backend):
    with pytest.raises(UserError, match="throttle_rate"):
        backend.settings(faults={"throttle_rate": 2})
    with pytest.raises(UserError, match="unknown setting"):
        backend.settings(colour="blue")


def test_the_admin_api_refuses_settings_out_of_bounds_and_changes_nothing(backend):
    before = backend.status()["settings"]
    for changes, says in [
        ({"faults": {"latency_ms": 1e12}}, "latency_ms must be at least 0 and at most 60000"),
        ({"state_delay": -5}, "state_delay must be at least 0 and at most 3600, not -5"),
        ({"livy_session_limit": 2.5}, "livy_session_limit must be at least 1 and at most 25"),
        ({"session_idle_timeout": "soon"}, "session_idle_timeout must be at least 0"),
        ({"lookup_tps": True}, "lookup_tps must be more than 0 and at most 1000, not True"),
        # A good value next to a bad one: neither is applied.
        ({"state_delay": 1, "livy_start_delay": 4000}, "livy_start_delay must be at least 0"),
    ]:
        with pytest.raises(UserError) as refused:
            backend.settings(**changes)
        assert says in str(refused.value) and "\n" not in str(refused.value)
        assert backend.status()["settings"] == before


def test_unsigned_requests_are_refused(backend):
    request = urllib.request.Request(f"{backend.endpoint}/applications", method="GET")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 403


def test_reset_forgets_changes_and_lays_the_seed_again(tmp_path):
    from emr_cmk_notebook import local

    os.environ["EMR_CMK_HOME"], previous = str(tmp_path), os.environ.get("EMR_CMK_HOME")
    try:
        with local.start() as fresh:
            kms = fresh.client("kms")
            key_id = kms.create_key(Description="scratch")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName="alias/scratch", TargetKeyId=key_id)
            fresh.reset()
            aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
            assert "alias/scratch" not in aliases
            assert "alias/emr-analytics" in aliases
            pid = fresh.pid
        assert not Path(f"/proc/{pid}").exists()
        assert not (tmp_path / "local.json").exists()
    finally:
        if previous is None:
            os.environ.pop("EMR_CMK_HOME", None)
        else:
            os.environ["EMR_CMK_HOME"] = previous


def test_cli_without_a_backend_says_how_to_start_one(tmp_path):
    env = {**os.environ, "EMR_CMK_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(BIN / "emr-cmk"), "local", "status"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "emr-cmk local start" in done.stderr


def test_a_port_out_of_range_is_a_one_line_error(tmp_path):
    env = {**os.environ, "EMR_CMK_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(BIN / "emr-cmk"), "local", "start", "--port", "70000", "--detach"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--port" in done.stderr and "Traceback" not in done.stderr


def test_foreground_start_serves_until_terminated_and_cleans_up(tmp_path):
    import signal

    env = {**os.environ, "EMR_CMK_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [str(BIN / "emr-cmk"), "local", "start", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = server.stdout.readline()
        assert first.startswith("endpoint    http://127.0.0.1:")
        status = subprocess.run(
            [str(BIN / "emr-cmk"), "local", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert '"demo-app"' in status.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert not (tmp_path / "local.json").exists()
    finally:
        if server.poll() is None:
            server.kill()
