"""A new user's first day against the local backend: the check, its fix, and the gates.

Principals are made through the IAM API as the demo analyst, and the check runs with their own
access keys, so what is tested is what such a user would see.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emr_cmk_notebook import jobs
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.local import ANALYTICS_ACCOUNT, SECURITY_ACCOUNT
from emr_cmk_notebook.readiness import NotReady, check_readiness
from emr_cmk_notebook.readiness.fixes import Fix, merge
from emr_cmk_notebook.sessions.connect import start_connect
from emr_cmk_notebook.sessions.request import SessionRequest
from tests.conftest import demo_app_id, key_arn
from tests.readiness.conftest import SESSION_ROLE

pytestmark = pytest.mark.integration

KEY = "alias/emr-analytics"
NO_KMS = ["emr-serverless:*", "iam:PassRole", "iam:Get*", "iam:List*"]


def _allow(actions: list[str]) -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def principals(backend) -> Iterator[dict[str, Any]]:
    """Makes users (with access keys) and roles in the analytics account; removes them after."""
    iam = backend.client("iam")
    made: dict[str, Any] = {"users": [], "roles": [], "role_policies": []}

    def user(actions: list[str]) -> dict[str, str]:
        name = f"newbie-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="start-work", PolicyDocument=_allow(actions))
        made["users"].append(name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"name": name, "id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}

    def role(trust: dict[str, Any], actions: list[str]) -> str:
        name = f"role-{uuid.uuid4().hex[:8]}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName=name, PolicyName="work", PolicyDocument=_allow(actions))
        made["roles"].append(name)
        return arn["Arn"]

    made["user"], made["role"] = user, role
    yield made
    for name in made["users"]:
        for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy)
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)
    for name, policy in made["role_policies"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for name in made["roles"]:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)


def as_user(monkeypatch: pytest.MonkeyPatch, user: dict[str, str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", user["id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", user["secret"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def put_identity_policy(backend, fix: Fix) -> tuple[str, str]:
    """Run the printed ``aws iam put-user-policy`` / ``put-role-policy`` command, word for word."""
    words = shlex.split(fix.command)
    assert words[:2] == ["aws", "iam"] and words[2] in ("put-user-policy", "put-role-policy")
    args = dict(zip(words[3::2], words[4::2], strict=True))
    iam = backend.client("iam")
    if words[2] == "put-user-policy":
        iam.put_user_policy(
            UserName=args["--user-name"],
            PolicyName=args["--policy-name"],
            PolicyDocument=args["--policy-document"],
        )
        return args["--user-name"], args["--policy-name"]
    iam.put_role_policy(
        RoleName=args["--role-name"],
        PolicyName=args["--policy-name"],
        PolicyDocument=args["--policy-document"],
    )
    return args["--role-name"], args["--policy-name"]


def submit_job(target, app_id: str, role: str, script: str, key: str = KEY) -> jobs.JobView:
    encryption = DiskEncryption.from_parts(key, None)
    return jobs.submit(target, app_id, role, f"local://{script}", encryption=encryption)


def test_a_caller_without_kms_applies_the_printed_fix_and_runs_a_job(
    backend, demo, target, job_script, principals, monkeypatch
):
    app_id = demo_app_id(demo)
    as_user(monkeypatch, principals["user"](NO_KMS))
    before = check_readiness(KEY, app_id, SESSION_ROLE, target=target, transport="job")
    assert not before.ready
    assert [c.id for c in before.failures] == ["caller_access"], before.to_text()
    fixes = before.check("caller_access").fixes
    assert [f.kind for f in fixes] == ["user_policy", "key_policy"]
    put_identity_policy(backend, fixes[0])
    after = check_readiness(KEY, app_id, SESSION_ROLE, target=target, transport="job")
    assert after.ready, after.to_text()
    run = submit_job(target, app_id, SESSION_ROLE, job_script)
    done = jobs.wait(target, app_id, run.id, timeout=60)
    assert done.state == "SUCCESS" and done.key_arn == key_arn(demo, KEY)


def test_every_printed_fix_for_another_accounts_key_leads_to_ready_and_a_job_that_runs(
    backend, demo, target, job_script, principals, monkeypatch
):
    app_id = demo_app_id(demo)
    admin = backend.client("kms", account=SECURITY_ACCOUNT)
    service = {
        "Sid": "EmrServerless",
        "Effect": "Allow",
        "Principal": {"Service": "emr-serverless.amazonaws.com"},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ANALYTICS_ACCOUNT}},
    }
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{SECURITY_ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    # A security account's key that names neither the analytics account nor its users.
    policy = {"Version": "2012-10-17", "Statement": [root, service]}
    arn = admin.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    as_user(monkeypatch, principals["user"](NO_KMS))
    rounds = []
    for _ in range(3):
        shown = check_readiness(arn, app_id, SESSION_ROLE, target=target, transport="job")
        rounds.append(shown)
        if shown.ready:
            break
        for fix in shown.fixes:
            if fix.kind == "key_policy":
                current = json.loads(
                    admin.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
                )
                merged = merge(current, fix.statements)
                admin.put_key_policy(KeyId=arn, PolicyName="default", Policy=json.dumps(merged))
            else:
                placed = put_identity_policy(backend, fix)
                if fix.kind == "role_policy":
                    principals["role_policies"].append(placed)
    assert shown.ready, "\n\n".join(r.to_text() for r in rounds)
    # The caller reads the key directly: the fixes never tied DescribeKey to kms:ViaService.
    assert target.client("kms").describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    run = submit_job(target, app_id, SESSION_ROLE, job_script, key=arn)
    assert jobs.wait(target, app_id, run.id, timeout=60).state == "SUCCESS"


EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
CASES = {
    # case -> (the caller's actions or None for the demo analyst, the failing check)
    "role does not trust the service": (None, "role_trust"),
    "caller without PassRole": (["kms:*", "emr-serverless:*", "iam:Get*", "iam:List*"], None),
    "caller without the transport's permissions": (
        ["kms:*", "iam:PassRole", "iam:Get*", "iam:List*", "emr-serverless:GetApplication"],
        "caller_transport",
    ),
}


def _work(backend, app_id: str) -> tuple[int, int]:
    emr = backend.client("emr-serverless")
    runs = emr.list_job_runs(applicationId=app_id)["jobRuns"]
    sessions = emr.list_sessions(applicationId=app_id)["sessions"]
    return len(runs), len(sessions)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_gates_refuse_what_the_check_finds_before_anything_starts(
    backend, demo, target, job_script, principals, monkeypatch, case
):
    app_id = demo_app_id(demo)
    actions, failing = CASES[case]
    failing = failing or "caller_pass_role"
    role = SESSION_ROLE
    if actions is None:
        role = principals["role"](EC2_TRUST, ["kms:GenerateDataKey", "kms:Decrypt"])
    else:
        as_user(monkeypatch, principals["user"](actions))
    for transport in ("job", "connect"):
        shown = check_readiness(KEY, app_id, role, target=target, transport=transport)
        assert not shown.ready and shown.check(failing).status == "fail", shown.to_text()
        assert shown.check(failing).fixes, shown.to_text()
    before = _work(backend, app_id)
    with pytest.raises(NotReady) as refused:
        submit_job(target, app_id, role, job_script)
    assert refused.value.report.check(failing).status == "fail"
    with pytest.raises(NotReady) as refused:
        request = SessionRequest.build(
            app_id, role, KEY, transport="connect", session_key_override=True, timeout=30
        )
        start_connect(target, request, progress=print)
    assert refused.value.report.check(failing).status == "fail"
    assert refused.value.report.transport == "connect"
    assert _work(backend, app_id) == before
