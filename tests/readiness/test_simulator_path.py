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
