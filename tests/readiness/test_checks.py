"""The checks on facts as AWS would answer them: root causes, fixes, and checks beyond the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emr_cmk_notebook.readiness.calls import Unreadable
from emr_cmk_notebook.readiness.checks import run_checks
from emr_cmk_notebook.readiness.gather import Facts, Inputs
from emr_cmk_notebook.readiness.identity import IdentityPolicies
from emr_cmk_notebook.readiness.report import ReadinessReport

ACCOUNT = "111122223333"
REGION = "us-east-1"
APP = "00fabcdefghijklm"
APP_ARN = f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{APP}"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/emr-session-role"
USER = f"arn:aws:iam::{ACCOUNT}:user/newbie"
SERVICE = "emr-serverless.amazonaws.com"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": SERVICE}, "Action": "sts:AssumeRole"}
    ],
}
ROOT = {
    "Sid": "EnableIamPolicies",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
SERVICE_STATEMENT = {
    "Effect": "Allow",
    "Principal": {"Service": SERVICE},
    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
    "Resource": "*",
}
EVERYTHING = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
NO_KMS = {
    "Statement": [
        {"Effect": "Allow", "Action": ["emr-serverless:*", "iam:PassRole"], "Resource": "*"}
    ]
}
REFUSAL = (
    f"User: {USER} is not authorized to perform: kms:DescribeKey on resource: {KEY} because no "
    "identity-based policy allows the kms:DescribeKey action"
)


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def facts(
    *,
    key: Any = None,
    key_policy: Any = None,
    caller: str = USER,
    caller_policy: dict[str, Any] | None = EVERYTHING,
    role: Any = None,
    transport: str = "livy",
    asked: str = KEY,
) -> Facts:
    """What AWS would answer for a ready setup, with the parts a test changes."""
    key = key if key is not None else {"Arn": KEY, "KeyState": "Enabled", "KeyManager": "CUSTOMER"}
    readable = not isinstance(key, Unreadable)
    return Facts(
        inputs=Inputs(asked, APP, ROLE, {}, REGION, transport),
        caller={"Arn": caller, "Account": caller.split(":")[4]},
        key=key,
        application={"arn": APP_ARN, "name": "demo-app", "state": "STARTED"},
        role=role if role is not None else {"Arn": ROLE, "AssumeRolePolicyDocument": TRUST},
        key_policy=(key_policy or _policy(ROOT, SERVICE_STATEMENT)) if readable else None,
        grants=[] if readable else None,
        caller_policies=IdentityPolicies(
            None if caller_policy is None else (caller_policy,),
            "iam:GetUserPolicy failed: AccessDenied: not allowed" if caller_policy is None else "",
        ),
        role_policies=IdentityPolicies((EVERYTHING,), "read"),
        caller_simulation=None,
        role_simulation=None,
    )


def report(found: Facts) -> ReadinessReport:
    principal = found.caller_principal
    return ReadinessReport(
        key=found.inputs.key,
        key_arn=found.key_arn,
        application_id=APP,
        role_arn=ROLE,
        caller_arn=principal.caller_arn if principal else None,
        region=REGION,
        checks=run_checks(found),
        transport=found.inputs.transport,
    )


def statements(shown: ReadinessReport) -> list[dict[str, Any]]:
    return [dict(s) for fix in shown.fixes for s in fix.statements]


def test_a_ready_setup_passes_every_check():
    shown = report(facts())
    assert shown.ready and {c.status for c in shown.checks} == {"pass"}, shown.to_text()


def test_a_caller_refused_describe_key_is_one_root_cause_with_both_halves_of_the_fix():
    refused = Unreadable("kms:DescribeKey", "AccessDeniedException", REFUSAL)
    shown = report(facts(key=refused, asked="alias/emr-analytics", caller_policy=NO_KMS))
    assert not shown.ready
    [failed] = shown.failures
    assert failed.id == "caller_access" and "may not read the key" in failed.reason
    waiting = [c for c in shown.checks if c.reason == "waits on: caller can read the key"]
    assert {c.id for c in waiting} >= {"key_state", "key_spec", "service_access", "role_access"}
    # The raw refusal is said once, folded away from the reasons.
    assert all("AccessDenied" not in c.reason and "\n" not in c.reason for c in shown.checks)
    assert [c.id for c in shown.checks if "AccessDeniedException" in c.detail] == ["caller_access"]
    identity, key_policy = failed.fixes
    assert identity.kind == "user_policy" and identity.target == "newbie"
    assert identity.command.startswith("aws iam put-user-policy --user-name newbie ")
    assert identity.who == f"an IAM administrator of account {ACCOUNT}"
    assert {s["Resource"] for s in identity.statements} == {KEY}
    assert (
        key_policy.kind == "key_policy" and key_policy.who == f"the key owner (account {ACCOUNT})"
    )
    assert key_policy.statement["Principal"] == {"AWS": USER}
    assert "another account's key" in key_policy.note
    by_action = {a: s for s in statements(shown) for a in s["Action"]}
    assert "Condition" not in by_action["kms:DescribeKey"]
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        via = by_action[action]["Condition"]["StringEquals"]["kms:ViaService"]
        assert via == f"emr-serverless.{REGION}.amazonaws.com"
    html = shown._repr_html_()
    assert "<details><summary>What AWS said</summary>" in html and "AccessDeniedException" in html
    data = shown.to_dict()
    check = next(c for c in data["checks"] if c["id"] == "caller_access")
    assert "AccessDeniedException" in check["detail"]
    fix = check["fixes"][0]
    assert {"kind", "target", "statement", "command", "note", "who", "statements"} <= set(fix)


def test_an_assumed_role_caller_gets_a_role_policy_for_its_role():
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/data-scientist/alice"
    refused = Unreadable("kms:DescribeKey", "AccessDeniedException", REFUSAL)
    shown = report(facts(key=refused, caller=session))
    identity = shown.check("caller_access").fixes[0]
    assert identity.command.startswith("aws iam put-role-policy --role-name data-scientist ")
    key_side = shown.check("caller_access").fixes[1]
    assert key_side.statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:role/data-scientist"}


@pytest.mark.parametrize(
    "case",
    ["own account, no identity policy", "another account's key", "key policy unread"],
)
def test_no_fix_ties_describe_key_to_via_service(case):
    if case == "own account, no identity policy":
        found = facts(caller_policy=NO_KMS, key_policy=_policy(SERVICE_STATEMENT, ROOT))
    elif case == "another account's key":
        key = {"Arn": OTHER_KEY, "KeyState": "Enabled", "KeyManager": "CUSTOMER"}
        other_root = {**ROOT, "Principal": {"AWS": "arn:aws:iam::444455556666:root"}}
        found = facts(key=key, asked=OTHER_KEY, key_policy=_policy(other_root, SERVICE_STATEMENT))
    else:
        found = facts(caller_policy=NO_KMS)
        found.key_policy = Unreadable("kms:GetKeyPolicy", "AccessDeniedException", "no")
    shown = report(found)
    caller = shown.check("caller_access")
    assert caller.status in ("fail", "unknown") and caller.fixes, shown.to_text()
    described = [s for s in statements(shown) if "kms:DescribeKey" in s["Action"]]
    assert described and all("Condition" not in s for s in described)


@pytest.mark.parametrize("asked", ["alias/aws/ebs", "key-manager-aws"])
def test_an_aws_managed_key_is_refused_and_its_policy_never_changed(asked):
    key = {"Arn": KEY, "KeyState": "Enabled", "KeyManager": "AWS"}
    if asked == "key-manager-aws":
        asked = KEY
    shown = report(facts(key=key, asked=asked, key_policy=_policy(SERVICE_STATEMENT)))
    assert not shown.ready
    manager = shown.check("key_manager")
    assert manager.status == "fail" and "AWS managed key" in manager.reason
    assert "customer managed key" in manager.reason
    assert "put-key-policy" not in shown.to_text()
    assert all(fix.kind != "key_policy" for fix in shown.fixes)


def test_a_role_that_does_not_trust_the_service_fails_with_the_trust_fix():
    ec2 = {"Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}]}
    shown = report(facts(role={"Arn": ROLE, "AssumeRolePolicyDocument": ec2}))
    trust = shown.check("role_trust")
    assert not shown.ready and trust.status == "fail"
    [fix] = trust.fixes
    assert fix.kind == "trust_policy" and fix.statement["Principal"] == {"Service": SERVICE}
    assert fix.command.startswith("aws iam update-assume-role-policy --role-name emr-session-role")
    # The fix keeps what the role trusted before.
    assert "ec2.amazonaws.com" in fix.command


@pytest.mark.parametrize(
    ("account", "status"), [(ACCOUNT, "pass"), ("999988887777", "fail")], ids=["own", "other"]
)
def test_trust_conditions_are_evaluated_against_the_application(account, status):
    conditioned = {
        "Statement": [
            {**TRUST["Statement"][0], "Condition": {"StringEquals": {"aws:SourceAccount": account}}}
        ]
    }
    # URL-encoded, as IAM's API returns trust policies.
    from urllib.parse import quote

    raw = quote(json.dumps(conditioned))
    shown = report(facts(role={"Arn": ROLE, "AssumeRolePolicyDocument": raw}))
    assert shown.check("role_trust").status == status


def test_a_caller_without_pass_role_gets_the_pass_role_statement():
    policy = {
        "Statement": [{"Effect": "Allow", "Action": ["kms:*", "emr-serverless:*"], "Resource": "*"}]
    }
    shown = report(facts(caller_policy=policy))
    check = shown.check("caller_pass_role")
    assert not shown.ready and check.status == "fail" and "iam:PassRole" in check.reason
    [fix] = check.fixes
    assert fix.statement["Resource"] == ROLE
    assert fix.statement["Condition"] == {"StringEquals": {"iam:PassedToService": SERVICE}}


def test_pass_role_for_another_service_only_is_not_enough():
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": ["kms:*", "emr-serverless:*"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
            },
        ]
    }
    assert report(facts(caller_policy=policy)).check("caller_pass_role").status == "fail"


LIVY_ONLY = {
    "Statement": [
        {"Effect": "Allow", "Action": ["kms:*", "iam:PassRole"], "Resource": "*"},
        {"Effect": "Allow", "Action": "emr-serverless:AccessLivyEndpoints", "Resource": APP_ARN},
    ]
}


@pytest.mark.parametrize(
    ("transport", "status", "named"),
    [
        ("livy", "pass", "AccessLivyEndpoints"),
        ("connect", "fail", "emr-serverless:StartSession"),
        ("job", "fail", "emr-serverless:StartJobRun"),
    ],
)
def test_the_transport_decides_which_permissions_the_caller_needs(transport, status, named):
    shown = report(facts(caller_policy=LIVY_ONLY, transport=transport))
    check = shown.check("caller_transport")
    assert check.status == status and named in check.reason
    if status == "fail":
        [fix] = check.fixes
        assert named in fix.statement["Action"]
        assert fix.statement["Resource"] == [APP_ARN, f"{APP_ARN}/*"]


def test_unreadable_identity_policies_leave_caller_checks_unknown_in_one_line():
    shown = report(facts(caller_policy=None))
    for check_id in ("caller_pass_role", "caller_transport"):
        check = shown.check(check_id)
        assert check.status == "unknown" and "could not be read" in check.reason
        assert "AccessDenied" not in check.reason and "AccessDenied" in check.detail


def test_a_refusal_that_names_no_key_arn_grants_the_alias_the_caller_asked_for():
    refused = Unreadable("kms:DescribeKey", "AccessDeniedException", "Access denied")
    shown = report(facts(key=refused, asked="alias/emr-analytics", caller_policy=NO_KMS))
    identity, key_policy = shown.check("caller_access").fixes
    for statement in identity.statements:
        assert statement["Resource"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*"
        aliases = statement["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"]
        assert aliases == "alias/emr-analytics"
    assert key_policy.who == "the key owner" and "alias/emr-analytics" in key_policy.command


def test_a_role_in_another_account_is_not_judged_by_a_same_named_role():
    other = "arn:aws:iam::999988887777:role/emr-session-role"
    found = facts(role={"Arn": ROLE, "AssumeRolePolicyDocument": TRUST})
    found.inputs = Inputs(KEY, APP, other, {}, REGION, "livy")
    shown = report(found)
    assert shown.check("role_trust").status == "unknown"
    assert "999988887777" in shown.check("role_trust").reason


def test_a_principal_check_says_what_is_missing_in_one_sentence_and_keeps_the_engine_apart():
    found = facts(caller_policy=NO_KMS)
    s3_only = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    found.role_policies = IdentityPolicies((s3_only,), "read")
    shown = report(found)
    role = shown.check("role_access")
    assert role.reason == (
        f"{ROLE} may not call kms:GenerateDataKey, kms:Decrypt: no identity policy allows it"
    )
    assert "closest" in role.detail and ";" not in role.reason
    caller = shown.check("caller_access")
    assert caller.reason.startswith(f"{USER} may not call kms:DescribeKey")


@pytest.mark.parametrize(
    "metadata",
    [
        {"KeyState": "Enabled", "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"},
        {"KeyState": "PendingDeletion"},
        {"KeyState": "Enabled", "KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
        # What DescribeKey says of a key made before KeyState and KeySpec existed.
        {"Enabled": False, "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"},
        {"Enabled": True, "CustomerMasterKeySpec": "RSA_4096", "KeyUsage": "ENCRYPT_DECRYPT"},
    ],
)
def test_readiness_and_session_starts_read_describe_key_alike(metadata):
    from emr_cmk_notebook.keys import KeyFacts

    described = {"Arn": KEY, "KeyManager": "CUSTOMER", **metadata}
    shown = report(facts(key=described))
    readiness_says = {shown.check(c).status for c in ("key_state", "key_spec")} == {"pass"}
    # The session manager, the launcher and application updates refuse a key on this problem.
    assert readiness_says is (KeyFacts.of(described).problem() is None)
