"""EMR Serverless on the local backend through boto3: encryption kept, jobs use the key."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import demo_app_id, key_arn, wait_for_job

pytestmark = pytest.mark.integration
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"


def start_job(emr, app_id: str, script: str, disk: dict | None = None) -> str:
    overrides = {"diskEncryptionConfiguration": disk} if disk is not None else {}
    return emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": {"entryPoint": f"local://{script}"}},
        configurationOverrides=overrides,
    )["jobRunId"]


def kms_events(backend, key: str, event_name: str) -> list[dict]:
    trail = backend.client("cloudtrail")
    pages = trail.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}]
    )
    records = [json.loads(e["CloudTrailEvent"]) for page in pages for e in page["Events"]]
    return [r for r in records if r["eventName"] == event_name]


def test_application_keeps_its_disk_encryption(backend, demo):
    emr = backend.client("emr-serverless")
    disk = {
        "encryptionKeyArn": key_arn(demo, "alias/emr-analytics"),
        "encryptionContext": {"project": "churn", "team": "risk"},
    }
    app_id = emr.create_application(
        name="kept",
        releaseLabel="emr-7.13.0",
        type="Spark",
        diskEncryptionConfiguration=disk,
        interactiveConfiguration={"livyEndpointEnabled": True},
    )["applicationId"]
    app = emr.get_application(applicationId=app_id)["application"]
    assert app["diskEncryptionConfiguration"] == disk
    assert app["interactiveConfiguration"]["livyEndpointEnabled"] is True


def test_alias_arn_is_rejected_and_leaves_no_application(backend):
    emr = backend.client("emr-serverless")
    before = {a["id"] for a in emr.list_applications()["applications"]}
    with pytest.raises(ClientError) as exc:
        emr.create_application(
            name="bad",
            releaseLabel="emr-7.13.0",
            type="Spark",
            diskEncryptionConfiguration={
                "encryptionKeyArn": f"arn:aws:kms:us-east-1:{ANALYTICS_ACCOUNT}:alias/emr-analytics"
            },
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "encryptionKeyArn" in str(exc.value)
    assert {a["id"] for a in emr.list_applications()["applications"]} == before


def test_job_with_session_key_makes_service_calls_with_its_context(backend, demo, job_script):
    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    key = key_arn(demo, "alias/emr-analytics")
    marker = f"run-{uuid.uuid4().hex[:8]}"
    run_id = start_job(
        emr, app_id, job_script, {"encryptionKeyArn": key, "encryptionContext": {"run": marker}}
    )
    assert wait_for_job(emr, app_id, run_id)["state"] == "SUCCESS"

    made = [
        r
        for r in kms_events(backend, key, "GenerateDataKey")
        if r["requestParameters"].get("encryptionContext", {}).get("run") == marker
    ]
    assert len(made) == 1
    record = made[0]
    assert record["userIdentity"] == {
        "type": "AWSService",
        "principalId": "emr-serverless.amazonaws.com",
        "invokedBy": "AWS Internal",
    }
    assert record["requestParameters"]["encryptionContext"] == {
        "applicationId": app_id,
        "run": marker,
    }
    assert record["requestParameters"]["keyId"] == key
    assert record["resources"][0]["ARN"] == key


def test_job_with_disabled_key_is_rejected_at_submission_naming_the_key(backend, demo, job_script):
    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    key = key_arn(demo, "alias/emr-disabled")
    before = len(emr.list_job_runs(applicationId=app_id, maxResults=50)["jobRuns"])
    with pytest.raises(ClientError) as refused:
        start_job(emr, app_id, job_script, {"encryptionKeyArn": key})
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ValidationException",
        400,
    )
    assert key in error["Error"]["Message"]
    assert "DisabledException" in error["Error"]["Message"]
    assert len(emr.list_job_runs(applicationId=app_id, maxResults=50)["jobRuns"]) == before


def test_job_whose_key_the_service_may_not_use_fails_naming_the_key(backend, demo, job_script):
    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    # The caller may use this key, so the submission passes; its policy forgets the service.
    key = key_arn(demo, "alias/emr-no-service-grant")
    run = wait_for_job(emr, app_id, start_job(emr, app_id, job_script, {"encryptionKeyArn": key}))
    assert run["state"] == "FAILED"
    assert key in run["stateDetails"]
    assert "AccessDeniedException" in run["stateDetails"]


def test_job_on_another_accounts_key_is_logged_in_both_accounts(backend, demo, job_script):
    from emr_cmk_notebook.local import SECURITY_ACCOUNT

    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    shared = demo["shared_key_arn"]
    marker = f"x-{uuid.uuid4().hex[:8]}"
    run_id = start_job(
        emr, app_id, job_script, {"encryptionKeyArn": shared, "encryptionContext": {"m": marker}}
    )
    assert wait_for_job(emr, app_id, run_id)["state"] == "SUCCESS"

    def copies(account: str) -> list[dict]:
        trail = backend.client("cloudtrail", account=account)
        events = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": shared}],
            MaxResults=50,
        )["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in events]
        return [
            r
            for r in records
            if r["eventName"] == "GenerateDataKey"
            and r["requestParameters"].get("encryptionContext", {}).get("m") == marker
        ]

    mine, theirs = copies(ANALYTICS_ACCOUNT), copies(SECURITY_ACCOUNT)
    assert len(mine) == len(theirs) == 1
    assert mine[0]["sharedEventID"] == theirs[0]["sharedEventID"]
    assert mine[0]["recipientAccountId"] == ANALYTICS_ACCOUNT
    assert theirs[0]["recipientAccountId"] == SECURITY_ACCOUNT


def test_lookup_events_refuses_two_attributes(backend):
    with pytest.raises(ClientError) as exc:
        backend.client("cloudtrail").lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "Decrypt"},
                {"AttributeKey": "ReadOnly", "AttributeValue": "true"},
            ]
        )
    assert exc.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_cloudtrail_log_files_are_delivered(backend, demo):
    backend.client("kms").generate_data_key(KeyId="alias/emr-analytics", KeySpec="AES_256")
    root = demo["cloudtrail_log_dir"]
    import gzip
    import pathlib

    folder = pathlib.Path(root) / "AWSLogs" / ANALYTICS_ACCOUNT / "CloudTrail" / "us-east-1"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        files = sorted(folder.rglob("*.json.gz"))
        names = {
            r["eventName"]
            for f in files
            for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]
        }
        if "GenerateDataKey" in names:
            break
        time.sleep(0.2)
    assert "GenerateDataKey" in names
    assert all(f.name.startswith(f"{ANALYTICS_ACCOUNT}_CloudTrail_us-east-1_") for f in files)
