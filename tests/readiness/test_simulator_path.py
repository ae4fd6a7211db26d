"""Readiness asks IAM's policy simulator first, as on AWS, and reads the policies when refused."""

from __future__ import annotations

import json
import uuid

import pytest

from emr_cmk_notebook.readiness import check_readiness
from tests.conftest import demo_app_id
from tests.readiness.conftest import NO_KMS_ROLE, SESSION_ROLE

pytestmark = pytest.mark.integration

SIMULATED = "identity policies: simulated with iam:SimulatePrincipalPolicy; key policy: static"
STATIC = "identity policies: static; key policy: static"
# The demo analyst's permissions, less the simulator.
WITHOUT_SIMULATOR = [
    "kms:*",
    "emr-serverless:*",
    "iam:PassRole",
    "iam:List*",
    "iam:Get*",
    "sts:AssumeRole",
]


@pytest.fixture
def no_simulator_user(backend) -> dict[str, str]:
    """The access key of a new user who may not call iam:SimulatePrincipalPolicy."""
    iam = backend.client("iam")
    name = f"no-sim-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": WITHOUT_SIMULATOR, "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return iam.create_access_key(UserName=name)["AccessKey"]


@pytest.mark.parametrize("role", [SESSION_ROLE, NO_KMS_ROLE])
def test_the_simulator_and_the_policies_read_give_the_same_verdicts(
    demo, target, no_simulator_user, monkeypatch, role
):
    app_id = demo_app_id(demo)
    simulated = check_readiness("alias/emr-analytics", app_id, role, target=target)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", no_simulator_user["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", no_simulator_user["SecretAccessKey"])
    read = check_readiness("alias/emr-analytics", app_id, role, target=target)
    for check_id in ("caller_access", "role_access"):
        assert simulated.check(check_id).source == SIMULATED
        assert read.check(check_id).source == STATIC
    assert {c.id: c.status for c in simulated.checks} == {c.id: c.status for c in read.checks}
    assert simulated.ready is read.ready is (role == SESSION_ROLE)


def test_describe_key_is_simulated_without_the_encryption_context(
    demo, target, backend, monkeypatch
):
    """A real DescribeKey carries no encryption context, so a deny conditioned on the context
    refuses the session's GenerateDataKey and Decrypt but not the caller's DescribeKey."""
    iam = backend.client("iam")
    name = f"no-secret-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": [*WITHOUT_SIMULATOR, "iam:*"], "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:classification": "secret"}},
            },
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    access = iam.create_access_key(UserName=name)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", access["SecretAccessKey"])
    context = {"classification": "secret"}
    report = check_readiness(
        "alias/emr-analytics", demo_app_id(demo), SESSION_ROLE, context, target=target
    )
    caller = report.check("caller_access")
    assert report.check("key_found").status == "pass"  # the real DescribeKey went through
    assert caller.source == SIMULATED
    assert caller.status == "fail"
    assert "may not call kms:GenerateDataKey, kms:Decrypt:" in caller.reason
    assert "kms:DescribeKey" not in caller.reason + caller.detail
