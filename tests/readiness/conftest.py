"""Fixtures for readiness: a target that reaches the local backend as the demo analyst."""

from __future__ import annotations

import uuid

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import wait_for_job

SESSION_ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
NO_KMS_ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-no-kms-role"


@pytest.fixture
def target(backend, monkeypatch) -> AwsTarget:
    """Where readiness calls go: the local backend, with the analyst's credentials."""
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    return AwsTarget(region=backend.region, endpoint_url=backend.endpoint)


def run_job(
    backend, script: str, app_id: str, key_arn: str, role: str, timeout: float = 20.0
) -> dict:
    """Start a job with this disk key and role; the finished run, or the refusal as a dict."""
    from botocore.exceptions import ClientError

    emr = backend.client("emr-serverless")
    try:
        run_id = emr.start_job_run(
            applicationId=app_id,
            executionRoleArn=role,
            clientToken=str(uuid.uuid4()),
            jobDriver={"sparkSubmit": {"entryPoint": f"local://{script}"}},
            configurationOverrides={"diskEncryptionConfiguration": {"encryptionKeyArn": key_arn}},
        )["jobRunId"]
    except ClientError as exc:
        return {"state": "REFUSED", "stateDetails": str(exc)}
    return wait_for_job(emr, app_id, run_id, timeout)
