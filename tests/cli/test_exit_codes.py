"""One verdict, one exit code: "not ready" is 1 and bad input is 2 for every subcommand that
checks a key before starting work (DESIGN.md section 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import demo_app_id

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
NO_KMS_ROLE = "arn:aws:iam::111122223333:role/emr-no-kms-role"


def emr_cmk(backend, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "emr-cmk"), *args],
        env={**os.environ, **backend.env()},
        capture_output=True,
        text=True,
        timeout=300,
    )


def commands(app: str, key: str, role: str, job_script: str) -> dict[str, list[str]]:
    """The same key, application and role, given to each command that checks them."""
    common = ["--application-id", app, "--role", role, "--key", key]
    return {
        "key-check": ["key-check", *common],
        "session start": ["session", "start", *common],
        "job submit": ["job", "submit", *common, "--entry-point", job_script],
    }


@pytest.mark.parametrize(
    ("key", "role", "why"),
    [
        ("alias/emr-analytics", NO_KMS_ROLE, "emr-no-kms-role"),
        ("alias/emr-disabled", ROLE, "Disabled"),
    ],
)
def test_not_ready_is_exit_1_everywhere(backend, demo, job_script, key, role, why):
    app = demo_app_id(demo)
    emr = backend.client("emr-serverless")
    runs_before = len(emr.list_job_runs(applicationId=app)["jobRuns"])
    for name, args in commands(app, key, role, job_script).items():
        done = emr_cmk(backend, *args)
        assert done.returncode == 1, f"{name}: {done.returncode} {done.stderr}"
        assert "Traceback" not in done.stderr
        if name != "key-check":  # key-check prints its report; the others one line
            assert done.stderr.count("\n") == 1 and why in done.stderr, f"{name}: {done.stderr}"
            assert done.stdout == ""
    assert len(emr.list_job_runs(applicationId=app)["jobRuns"]) == runs_before


@pytest.mark.parametrize(
    "command", [["session", "start"], ["job", "submit", "--entry-point", "s3://b/j.py"]]
)
def test_a_context_without_a_key_is_the_same_line_everywhere(backend, demo, command):
    done = emr_cmk(
        backend, *command, "--application-id", demo_app_id(demo), "--role", ROLE,
        "--context", "project=x",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "emr-cmk: error: --context needs --key: the context belongs to a key\n"
    assert done.stdout == ""


def test_bad_input_is_exit_2_everywhere(backend, demo, job_script):
    role = "arn:aws:iam::111122223333:user/analyst"  # a user, not a role
    for name, args in commands(demo_app_id(demo), "alias/emr-analytics", role, job_script).items():
        done = emr_cmk(backend, *args)
        assert done.returncode == 2, f"{name}: {done.returncode} {done.stderr}"
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
