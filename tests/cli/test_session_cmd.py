"""`emr-cmk session ...` from a shell: start (kept running), list, status, verify, stop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import demo_app_id, key_arn, submitter_without_data_keys
from tests.sessions.conftest import session_role

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def emr_cmk(backend, *args: str, as_user: dict[str, str] | None = None):
    return subprocess.run(
        [str(BIN / "emr-cmk"), "session", *args],
        env={**os.environ, **backend.env(), **(as_user or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("transport", ["livy", "connect"])
def test_start_list_status_verify_stop(backend, demo, transport):
    app, role = demo_app_id(demo), session_role(demo)
    key = key_arn(demo, "alias/emr-analytics")
    start = ["start", "--application-id", app, "--role", role, "--transport", transport]
    if transport == "connect":  # the application has no key of its own: pass it per session
        start.append("--session-key-override")
    started = emr_cmk(backend, *start, "--key", key, "--context", "project=cli", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    session_id = str(info["id"])
    assert (info["transport"], info["key_arn"], info["context"]) == (
        transport,
        key,
        {"project": "cli"},
    )
    assert f"emr-cmk session stop {session_id} --application-id {app}" in started.stderr
    # Progress says what is happening and for how long, as the magic's progress line does.
    assert re.search(
        rf"^starting a session on {app}: session {session_id} \w+ \(\d+\.\d s\)$",
        started.stderr,
        re.M,
    ), started.stderr
    # A line when the step changes, not one each time the service is asked again.
    steps = re.findall(rf"^starting a session on {app}: (.*) \(", started.stderr, re.M)
    assert steps and len(steps) == len(set(steps)), steps
    try:
        listed = emr_cmk(backend, "list", "--application-id", app, "--json")
        assert session_id in [str(s["id"]) for s in json.loads(listed.stdout)]

        status = emr_cmk(backend, "status", session_id, "--application-id", app, "--json")
        shown = json.loads(status.stdout)
        assert (shown["key_arn"], shown["context"]) == (key, {"project": "cli"})

        verified = emr_cmk(backend, "verify", session_id, "--application-id", app, "--json")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["status"] == "verified"
    finally:
        stopped = emr_cmk(backend, "stop", session_id, "--application-id", app)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stderr.strip() in (
        f"session {session_id}: deleted",
        f"session {session_id}: TERMINATED",
    )
    listed = emr_cmk(backend, "list", "--application-id", app, "--json")
    assert session_id not in [str(s["id"]) for s in json.loads(listed.stdout)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "--application-id", "x", "--role", "r"], "not an IAM role ARN"),
        (["status", "00nosuchsession0", "--application-id", "00nosuchapp00000"], "no application"),
        (["start", "--application-id", "x"], "--role"),
    ],
)
def test_bad_input_is_exit_2_and_one_line(backend, args, message):
    done = emr_cmk(backend, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("transport", ["livy", "connect"])
def test_start_rejected_at_submission_is_one_line_and_leaves_nothing(backend, demo, transport):
    app, role = demo_app_id(demo), session_role(demo)
    key = key_arn(demo, "alias/emr-analytics")
    emr = backend.client("emr-serverless")
    sessions_before = emr.list_sessions(applicationId=app)["sessions"]
    user = submitter_without_data_keys(backend)
    listed_before = emr_cmk(backend, "list", "--application-id", app, "--json", as_user=user)
    start = ["start", "--application-id", app, "--role", role, "--transport", transport]
    if transport == "connect":
        start.append("--session-key-override")
    done = emr_cmk(backend, *start, "--key", key, "--skip-check", as_user=user)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert "ValidationException" in error or error.startswith("emr-cmk: error: StartSession: ")
    assert key in error and "kms:GenerateDataKey" in error
    assert emr.list_sessions(applicationId=app)["sessions"] == sessions_before
    listed = emr_cmk(backend, "list", "--application-id", app, "--json", as_user=user)
    assert listed.stdout == listed_before.stdout
