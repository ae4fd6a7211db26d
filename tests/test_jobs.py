"""Job runs with job-level keys against the local backend (Python API, magic and CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from emr_cmk_notebook import jobs
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.encryption import DiskEncryption, SecretInContextWarning
from emr_cmk_notebook.core.errors import SkippedCheckWarning, UserError
from emr_cmk_notebook.readiness import NotReady
from tests.conftest import demo_app_id, key_arn, submitter_without_data_keys

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
BIN = Path(sys.executable).parent


@pytest.fixture
def target(backend, monkeypatch):
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    return AwsTarget()


def test_job_key_overrides_and_is_shown_with_its_origin(target, demo, job_script):
    app = demo_app_id(demo)
    enc = DiskEncryption.parse("key=alias/emr-analytics env=prod")
    view = jobs.submit(target, app, ROLE, job_script, encryption=enc, name="prod-job")
    done = jobs.wait(target, app, view.id, timeout=30)
    assert done.state == "SUCCESS"
    assert done.key_arn == key_arn(demo, "alias/emr-analytics")
    assert done.key_origin == "job override"
    assert done.context == {"env": "prod"}
    # What GetJobRun says the run used, billed for at least a minute.
    assert "total usage" in repr(done) and "vCPU-hours" in repr(done)
    assert done.utilization["billed"]["vCPUHour"] > done.utilization["total"]["vCPUHour"]


def test_job_without_key_says_aws_owned_key(target, demo, job_script):
    view = jobs.submit(target, demo_app_id(demo), ROLE, job_script)
    assert view.key_origin == "AWS owned key"
    assert view.key_arn is None


def test_disabled_key_is_refused_before_submission(target, demo, job_script):
    app = demo_app_id(demo)
    before = len(jobs.list_jobs(target, app).jobs)
    with pytest.raises(UserError) as exc:
        jobs.submit(target, app, ROLE, job_script, encryption=DiskEncryption("alias/emr-disabled"))
    assert key_arn(demo, "alias/emr-disabled") in str(exc.value)
    assert "Disabled" in str(exc.value)
    assert len(jobs.list_jobs(target, app).jobs) == before


def test_production_and_development_jobs_are_told_apart_in_the_usage_frame(
    backend, target, demo, job_script
):
    from emr_cmk_notebook.usage import parse_records

    app = demo_app_id(demo)
    run = uuid.uuid4().hex[:8]
    for env in ("prod", "dev"):
        enc = DiskEncryption.from_parts("alias/emr-analytics", [f"env={env}", f"run={run}"])
        view = jobs.submit(target, app, ROLE, job_script, encryption=enc)
        jobs.wait(target, app, view.id, timeout=30)
    events = backend.client("cloudtrail").lookup_events(
        LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": key_arn(demo, "alias/emr-analytics")}
        ],
        MaxResults=50,
    )
    frame = parse_records(events).frame
    ours = frame[(frame["ctx.run"] == run) & (frame["event_name"] == "GenerateDataKey")]
    assert sorted(ours["ctx.env"]) == ["dev", "prod"]
    assert set(ours["identity_type"]) == {"AWSService"}
    assert set(ours["application_id"]) == {app}


def job_cli(backend, *args: str, as_user: dict[str, str] | None = None):
    """``emr-cmk job ARGS`` against the backend, as a user's shell runs it."""
    return subprocess.run(
        [str(BIN / "emr-cmk"), "job", *args],
        env={**os.environ, **backend.env(), **(as_user or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_job_cli_submit_wait_json(backend, demo, job_script):
    done = job_cli(
        backend, "submit", "--application-id", demo_app_id(demo), "--role", ROLE,
        "--entry-point", job_script, "--key", "alias/emr-analytics", "--context", "env=ci",
        "--wait", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["state"] == "SUCCESS" and view["context"] == {"env": "ci"}


def test_readiness_gate_refuses_a_role_that_cannot_use_the_key(target, demo, job_script):
    app = demo_app_id(demo)
    no_kms = "arn:aws:iam::111122223333:role/emr-no-kms-role"
    enc = DiskEncryption("alias/emr-analytics")
    before = len(jobs.list_jobs(target, app).jobs)
    with pytest.raises(NotReady) as exc:
        jobs.submit(target, app, no_kms, job_script, encryption=enc)
    assert "is not ready" in str(exc.value) and "emr-no-kms-role" in str(exc.value)
    assert not exc.value.report.ready
    assert len(jobs.list_jobs(target, app).jobs) == before

    with pytest.warns(SkippedCheckWarning, match="the key check was skipped"):
        skipped = jobs.submit(target, app, no_kms, job_script, encryption=enc, check=False)
    with pytest.raises(jobs.JobFailed, match="AccessDeniedException"):
        jobs.wait(target, app, skipped.id, timeout=30)


def test_job_runs_pass_the_sessions_gate_so_a_secret_looking_context_is_warned_about(
    target, demo, job_script
):
    app = demo_app_id(demo)
    no_kms = "arn:aws:iam::111122223333:role/emr-no-kms-role"
    enc = DiskEncryption.from_parts("alias/emr-analytics", {"db_password": "hunter2"})
    before = len(jobs.list_jobs(target, app).jobs)
    with (
        pytest.warns(SecretInContextWarning, match="db_password") as shown,
        pytest.raises(NotReady),
    ):
        jobs.submit(target, app, no_kms, job_script, encryption=enc)
    assert all("hunter2" not in str(w.message) for w in shown)
    assert len(jobs.list_jobs(target, app).jobs) == before


def test_job_cli_says_in_one_line_that_the_check_was_skipped(backend, demo, job_script):
    done = job_cli(
        backend, "submit", "--application-id", demo_app_id(demo), "--role", ROLE,
        "--entry-point", job_script, "--key", "alias/emr-analytics", "--skip-check", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("emr-cmk: WARNING: the key check was skipped for arn:aws:kms:")
    assert done.stderr.count("\n") == 1
    assert json.loads(done.stdout)["state"] in ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING")


def test_job_cli_refuses_the_context_key_the_service_owns(backend, target, demo, job_script):
    app = demo_app_id(demo)
    before = len(jobs.list_jobs(target, app).jobs)
    done = job_cli(
        backend, "submit", "--application-id", app, "--role", ROLE, "--entry-point", job_script,
        "--key", "alias/emr-analytics", "--context", "applicationId=00other",
    )  # fmt: skip
    assert done.returncode == 2
    assert "error: encryption context key applicationId belongs to EMR Serverless" in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert len(jobs.list_jobs(target, app).jobs) == before


def test_an_empty_job_override_removes_the_application_key_for_that_run(target, job_script):
    from emr_cmk_notebook import apps

    # An application key the service may not use: a run that uses it fails.
    enc = DiskEncryption.from_parts("alias/emr-no-service-grant")
    app = apps.create_application(target, f"empty-{uuid.uuid4().hex[:6]}", encryption=enc)
    inherits = jobs.submit(target, app.id, ROLE, job_script, check=False)
    assert (inherits.key_arn, inherits.key_origin) == (app.encryption.key, "application default")
    with pytest.raises(jobs.JobFailed):
        jobs.wait(target, app.id, inherits.id, timeout=30)

    emr = target.client("emr-serverless")
    started = emr.start_job_run(
        applicationId=app.id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": {"entryPoint": job_script}},
        configurationOverrides={"diskEncryptionConfiguration": {}},
    )
    done = jobs.wait(target, app.id, started["jobRunId"], timeout=30)
    assert done.state == "SUCCESS"
    assert (done.key_arn, done.key_origin) == (None, "job override")
    assert "AWS owned key (job override)" in repr(done)


def test_job_rejected_at_submission_is_one_line_and_leaves_no_run(backend, demo, job_script):
    app = demo_app_id(demo)
    key = key_arn(demo, "alias/emr-analytics")
    emr = backend.client("emr-serverless")
    before = len(emr.list_job_runs(applicationId=app, maxResults=50)["jobRuns"])
    done = job_cli(
        backend, "submit", "--application-id", app, "--role", ROLE, "--entry-point", job_script,
        "--key", key, "--skip-check", as_user=submitter_without_data_keys(backend),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    warning, error = done.stderr.strip().splitlines()
    assert "the key check was skipped" in warning
    assert error.startswith("emr-cmk: error: StartJobRun: Unable to use KMS key " + key)
    assert "kms:GenerateDataKey" in error
    assert len(emr.list_job_runs(applicationId=app, maxResults=50)["jobRuns"]) == before
