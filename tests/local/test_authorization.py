"""EMR Serverless on the local backend refuses what AWS refuses: IAM permissions, passed roles,
execution roles the service cannot assume, and keys the caller cannot use at submission."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import demo_app_id, iam_user_with, key_arn, wait_for_job

pytestmark = pytest.mark.integration
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
PASS_ROLE = {
    "Effect": "Allow",
    "Action": "iam:PassRole",
    "Resource": ROLE,
    "Condition": {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}},
}


def allow(actions: str | list[str], resource: str = "*") -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def user_with(backend, *statements: dict) -> dict[str, str]:
    """A new IAM user of the analytics account with ``statements`` as its policy; boto3 keys."""
    env = iam_user_with(backend, *statements)
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def emr_as(backend, creds: dict[str, str]):
    return boto3.client(
        "emr-serverless", endpoint_url=backend.endpoint, region_name=backend.region, **creds
    )


def start_job(emr, app_id: str, script: str, role: str = ROLE, disk: dict | None = None) -> str:
    overrides = {"diskEncryptionConfiguration": disk} if disk else {}
    return emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=role,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": {"entryPoint": f"local://{script}"}},
        configurationOverrides=overrides,
    )["jobRunId"]


def denied(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException",
        403,
    )
    return error["Error"]["Message"]


def rejected(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ValidationException",
        400,
    )
    return error["Error"]["Message"]


def role_trusting(backend, principal: dict) -> str:
    iam = backend.client("iam")
    name = f"authz-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


# --- IAM permissions ----------------------------------------------------------------------------


def test_caller_without_emr_serverless_permissions_is_refused(backend, demo):
    emr = emr_as(backend, user_with(backend, allow("kms:*")))
    message = denied(emr.list_applications)
    assert "emr-serverless:ListApplications" in message
    assert ":user/user-" in message
    app_id = demo_app_id(demo)
    message = denied(lambda: emr.get_application(applicationId=app_id))
    assert f"arn:aws:emr-serverless:us-east-1:{ANALYTICS_ACCOUNT}:/applications/{app_id}" in message


def test_permissions_are_per_application_arn(backend, demo):
    app_id = demo_app_id(demo)
    app_arn = f"arn:aws:emr-serverless:us-east-1:{ANALYTICS_ACCOUNT}:/applications/{app_id}"
    emr = emr_as(backend, user_with(backend, allow("emr-serverless:GetApplication", app_arn)))
    assert emr.get_application(applicationId=app_id)["application"]["name"] == "demo-app"
    message = denied(lambda: emr.get_application(applicationId="00otherapplication"))
    assert "/applications/00otherapplication" in message


def test_explicit_deny_wins_over_an_allow(backend, demo):
    deny = {"Effect": "Deny", "Action": "emr-serverless:StartJobRun", "Resource": "*"}
    emr = emr_as(backend, user_with(backend, allow("emr-serverless:*"), PASS_ROLE, deny))
    assert "explicit deny" in denied(lambda: start_job(emr, demo_app_id(demo), "job.py"))


def test_start_job_run_needs_pass_role_to_emr_serverless(backend, demo, job_script):
    app_id = demo_app_id(demo)
    without = emr_as(backend, user_with(backend, allow("emr-serverless:*")))
    message = denied(lambda: start_job(without, app_id, job_script))
    assert "iam:PassRole" in message
    assert ROLE in message
    other_service = {**PASS_ROLE, "Condition": {"StringEquals": {"iam:PassedToService": "x.com"}}}
    elsewhere = emr_as(backend, user_with(backend, allow("emr-serverless:*"), other_service))
    assert "iam:PassRole" in denied(lambda: start_job(elsewhere, app_id, job_script))

    allowed = emr_as(backend, user_with(backend, allow("emr-serverless:*"), PASS_ROLE))
    run = wait_for_job(allowed, app_id, start_job(allowed, app_id, job_script))
    assert run["state"] == "SUCCESS", run["stateDetails"]


def test_start_session_needs_pass_role(backend, demo):
    emr = emr_as(backend, user_with(backend, allow("emr-serverless:*")))
    message = denied(
        lambda: emr.start_session(
            applicationId=demo_app_id(demo), executionRoleArn=ROLE, clientToken=str(uuid.uuid4())
        )
    )
    assert "iam:PassRole" in message


def test_assumed_role_session_is_authorised_by_its_roles_policies(backend, demo):
    iam = backend.client("iam")
    role_arn = role_trusting(backend, {"AWS": f"arn:aws:iam::{ANALYTICS_ACCOUNT}:root"})
    name = role_arn.rsplit("/", 1)[-1]
    statements = [allow("emr-serverless:ListApplications")]
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document)
    creds = backend.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="authz")[
        "Credentials"
    ]
    emr = emr_as(
        backend,
        {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        },
    )
    assert any(a["name"] == "demo-app" for a in emr.list_applications()["applications"])
    message = denied(lambda: emr.get_application(applicationId=demo_app_id(demo)))
    assert f":assumed-role/{name}/authz" in message


# --- the execution role's trust -----------------------------------------------------------------


def test_job_run_with_a_role_emr_serverless_cannot_assume_fails_naming_it(
    backend, demo, job_script
):
    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    untrusted = role_trusting(backend, {"Service": "glue.amazonaws.com"})
    run = wait_for_job(emr, app_id, start_job(emr, app_id, job_script, role=untrusted))
    assert run["state"] == "FAILED"
    assert untrusted in run["stateDetails"]
    assert "trust policy" in run["stateDetails"]
    assert "emr-serverless.amazonaws.com" in run["stateDetails"]

    missing = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/no-such-role-{uuid.uuid4().hex[:6]}"
    run = wait_for_job(emr, app_id, start_job(emr, app_id, job_script, role=missing))
    assert run["state"] == "FAILED"
    assert f"{missing} does not exist" in run["stateDetails"]


# --- the caller's key check at submission -------------------------------------------------------


def test_caller_without_kms_data_key_permission_is_rejected_at_submission(
    backend, demo, job_script
):
    app_id = demo_app_id(demo)
    key = key_arn(demo, "alias/emr-analytics")
    only_describe = allow("kms:DescribeKey")
    emr = emr_as(backend, user_with(backend, allow("emr-serverless:*"), PASS_ROLE, only_describe))
    message = rejected(lambda: start_job(emr, app_id, job_script, disk={"encryptionKeyArn": key}))
    assert key in message
    assert "kms:GenerateDataKey" in message
    assert emr.list_job_runs(applicationId=app_id, states=["SUBMITTED", "PENDING"])["jobRuns"] == []


@pytest.mark.parametrize(
    ("alias", "cause"),
    [("alias/emr-disabled", "DisabledException"), ("alias/emr-asymmetric", "KeyUsage")],
)
def test_unusable_key_rejects_start_session_and_nothing_is_left(backend, demo, alias, cause):
    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    key = key_arn(demo, alias)
    before = emr.list_sessions(applicationId=app_id)["sessions"]
    overrides = {
        "runtimeConfiguration": [
            {
                "classification": "spark-defaults",
                "properties": {"spark.emr-serverless.disk.encryptionKeyArn": key},
            }
        ]
    }
    message = rejected(
        lambda: emr.start_session(
            applicationId=app_id,
            executionRoleArn=ROLE,
            clientToken=str(uuid.uuid4()),
            configurationOverrides=overrides,
        )
    )
    assert key in message
    assert cause in message
    assert emr.list_sessions(applicationId=app_id)["sessions"] == before


# --- StartSession and the application's state ---------------------------------------------------


def stopped_application(emr, *, auto_start: bool) -> str:
    app_id = emr.create_application(
        name=f"authz-{uuid.uuid4().hex[:6]}",
        releaseLabel="emr-7.13.0",
        type="Spark",
        interactiveConfiguration={"sessionEnabled": True},
        autoStartConfiguration={"enabled": auto_start},
        clientToken=str(uuid.uuid4()),
    )["applicationId"]
    wait_application(emr, app_id, "CREATED")
    return app_id


def wait_application(emr, app_id: str, state: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while emr.get_application(applicationId=app_id)["application"]["state"] != state:
        assert time.monotonic() < deadline, f"application {app_id} never became {state}"
        time.sleep(0.05)


def test_start_session_auto_starts_a_created_application(backend):
    emr = backend.client("emr-serverless")
    app_id = stopped_application(emr, auto_start=True)
    # A role the service cannot assume ends the session before any Spark server starts.
    untrusted = role_trusting(backend, {"Service": "glue.amazonaws.com"})
    session_id = emr.start_session(
        applicationId=app_id, executionRoleArn=untrusted, clientToken=str(uuid.uuid4())
    )["sessionId"]
    wait_application(emr, app_id, "STARTED")
    deadline = time.monotonic() + 20
    while True:
        session = emr.get_session(applicationId=app_id, sessionId=session_id)["session"]
        if session["state"] == "FAILED" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert session["state"] == "FAILED"
    assert untrusted in session["stateDetails"]
    assert "trust policy" in session["stateDetails"]


def test_start_session_without_auto_start_on_a_created_application_is_refused(backend):
    emr = backend.client("emr-serverless")
    app_id = stopped_application(emr, auto_start=False)
    message = rejected(
        lambda: emr.start_session(
            applicationId=app_id, executionRoleArn=ROLE, clientToken=str(uuid.uuid4())
        )
    )
    assert "auto-start is disabled" in message
    assert emr.get_application(applicationId=app_id)["application"]["state"] == "CREATED"
    assert emr.list_sessions(applicationId=app_id)["sessions"] == []
