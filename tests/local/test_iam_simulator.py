"""IAM's policy simulator on the local backend: SimulatePrincipalPolicy over boto3 and loopback."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import key_arn

pytestmark = pytest.mark.integration

SECURITY_ACCOUNT = "444455556666"
ANALYST = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:user/analyst"
SESSION_ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
NO_KMS_ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-no-kms-role"
VIA_EMR = "emr-serverless.us-east-1.amazonaws.com"
# AWS CLI example "To simulate the effects of all IAM policies..." (simulate-custom-policy):
# AWS answers StartPosition Line 1 Column 38 and EndPosition Line 1 Column 167 for it.
AWS_EXAMPLE_POLICY = (
    '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",'
    '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def statement(effect: str, action: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": "*", **extra}


@pytest.fixture
def iam(backend: Any) -> Any:
    return backend.client("iam")


@pytest.fixture
def new_role(iam: Any):
    """Make a role with one inline policy; its ARN."""

    def make(policy: str) -> str:
        name = f"sim-{uuid.uuid4().hex[:8]}"
        trust = document(
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        )
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=policy)
        return arn

    return make


def decisions(answer: dict[str, Any]) -> dict[str, str]:
    return {r["EvalActionName"]: r["EvalDecision"] for r in answer["EvaluationResults"]}


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]


def test_a_user_policy_allows_and_names_the_statement(iam, demo):
    key = key_arn(demo, "alias/emr-analytics")
    answer = iam.simulate_principal_policy(
        PolicySourceArn=ANALYST, ActionNames=["kms:Decrypt"], ResourceArns=[key]
    )
    [result] = answer["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert answer["IsTruncated"] is False
    [matched] = result["MatchedStatements"]
    assert (matched["SourcePolicyId"], matched["SourcePolicyType"]) == ("analyst-policy", "user")
    # The seeded policy is one line long.
    start, end = matched["StartPosition"], matched["EndPosition"]
    assert start["Line"] == end["Line"] == 1 and start["Column"] < end["Column"]
    [per_key] = result["ResourceSpecificResults"]
    assert (per_key["EvalResourceName"], per_key["EvalResourceDecision"]) == (key, "allowed")
    assert result["EvalResourceName"] == "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}"


def test_a_role_gets_allowed_only_for_the_keys_its_policy_names(iam, demo):
    ready, other = key_arn(demo, "alias/emr-analytics"), key_arn(demo, "alias/emr-disabled")
    actions = ["kms:GenerateDataKey", "kms:Decrypt"]
    on_ready = iam.simulate_principal_policy(
        PolicySourceArn=SESSION_ROLE, ActionNames=actions, ResourceArns=[ready]
    )
    assert decisions(on_ready) == dict.fromkeys(actions, "allowed")
    assert on_ready["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyType"] == "role"
    on_both = iam.simulate_principal_policy(
        PolicySourceArn=SESSION_ROLE, ActionNames=actions, ResourceArns=[ready, other]
    )
    # One result per action, with the most restrictive decision and each key's own.
    assert decisions(on_both) == dict.fromkeys(actions, "implicitDeny")
    per_key = on_both["EvaluationResults"][0]["ResourceSpecificResults"]
    assert [r["EvalResourceDecision"] for r in per_key] == ["allowed", "implicitDeny"]


def test_a_role_without_kms_is_implicitly_denied_with_no_statement(iam, demo):
    answer = iam.simulate_principal_policy(
        PolicySourceArn=NO_KMS_ROLE,
        ActionNames=["kms:Decrypt"],
        ResourceArns=[key_arn(demo, "alias/emr-analytics")],
    )
    [result] = answer["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["MatchedStatements"] == []


def test_an_explicit_deny_wins_and_is_the_only_statement_named(iam, demo, new_role):
    role = new_role(
        document(statement("Allow", "kms:*"), statement("Deny", "kms:Decrypt", Sid="NoDecrypt"))
    )
    answer = iam.simulate_principal_policy(
        PolicySourceArn=role,
        ActionNames=["kms:Decrypt", "kms:GenerateDataKey"],
        ResourceArns=[key_arn(demo, "alias/emr-analytics")],
    )
    assert decisions(answer) == {"kms:Decrypt": "explicitDeny", "kms:GenerateDataKey": "allowed"}
    [deny] = answer["EvaluationResults"][0]["MatchedStatements"]
    # The deny is the second statement of the indented document: it starts on line 9.
    assert deny["SourcePolicyId"] == "inline" and deny["StartPosition"]["Line"] == 9


def test_a_condition_is_met_only_with_the_context_entry_it_tests(iam, demo, new_role):
    via = {"StringEquals": {"kms:ViaService": VIA_EMR}}
    role = new_role(document(statement("Allow", "kms:Decrypt", Condition=via)))
    key = key_arn(demo, "alias/emr-analytics")
    bare = iam.simulate_principal_policy(
        PolicySourceArn=role, ActionNames=["kms:Decrypt"], ResourceArns=[key]
    )
    [result] = bare["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["ResourceSpecificResults"][0]["MissingContextValues"] == ["kms:ViaService"]
    entry = {"ContextKeyName": "kms:ViaService", "ContextKeyValues": [VIA_EMR]}
    given = iam.simulate_principal_policy(
        PolicySourceArn=role,
        ActionNames=["kms:Decrypt"],
        ResourceArns=[key],
        ContextEntries=[{**entry, "ContextKeyType": "string"}],
    )
    assert decisions(given) == {"kms:Decrypt": "allowed"}
    assert given["EvaluationResults"][0]["MissingContextValues"] == []


def test_group_policies_count_for_their_users(iam):
    name = f"sim-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.create_group(GroupName=name)
    iam.add_user_to_group(GroupName=name, UserName=name)
    policy = document(statement("Allow", "s3:GetObject"))
    iam.put_group_policy(GroupName=name, PolicyName="readers", PolicyDocument=policy)
    user = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:user/{name}"
    answer = iam.simulate_principal_policy(
        PolicySourceArn=user, ActionNames=["s3:GetObject", "s3:PutObject"]
    )
    assert decisions(answer) == {"s3:GetObject": "allowed", "s3:PutObject": "implicitDeny"}
    [matched] = answer["EvaluationResults"][0]["MatchedStatements"]
    assert (matched["SourcePolicyId"], matched["SourcePolicyType"]) == ("readers", "group")
    assert answer["EvaluationResults"][0]["EvalResourceName"] == "*"


def test_policy_input_list_adds_policies_with_positions_as_aws_counts_them(iam):
    def simulate(when: str) -> dict[str, Any]:
        return iam.simulate_principal_policy(
            PolicySourceArn=NO_KMS_ROLE,
            ActionNames=["dynamodb:CreateBackup"],
            PolicyInputList=[AWS_EXAMPLE_POLICY],
            ContextEntries=[
                {
                    "ContextKeyName": "aws:CurrentTime",
                    "ContextKeyValues": [when],
                    "ContextKeyType": "date",
                }
            ],
        )["EvaluationResults"][0]

    later = simulate("2019-04-25T11:00:00Z")
    assert later["EvalDecision"] == "allowed"
    assert later["MatchedStatements"] == [
        {
            "SourcePolicyId": "PolicyInputList.1",
            "SourcePolicyType": "none",
            "StartPosition": {"Line": 1, "Column": 38},
            "EndPosition": {"Line": 1, "Column": 167},
        }
    ]
    assert simulate("2014-04-25T11:00:00Z")["EvalDecision"] == "implicitDeny"


def test_a_key_policy_counts_only_when_given_as_resource_policy(iam, demo):
    key = key_arn(demo, "alias/emr-no-service-grant")
    service_only = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "emr-serverless.amazonaws.com"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    names_analyst = document(
        {"Effect": "Allow", "Principal": {"AWS": ANALYST}, "Action": "kms:*", "Resource": "*"}
    )

    def simulate(**extra: Any) -> dict[str, Any]:
        return iam.simulate_principal_policy(
            PolicySourceArn=ANALYST, ActionNames=["kms:Decrypt"], ResourceArns=[key], **extra
        )

    assert decisions(simulate()) == {"kms:Decrypt": "allowed"}
    # A key policy that does not let the account decide makes the identity policy not count.
    assert decisions(simulate(ResourcePolicy=service_only)) == {"kms:Decrypt": "implicitDeny"}
    named = simulate(ResourcePolicy=names_analyst)
    assert decisions(named) == {"kms:Decrypt": "allowed"}
    types = {s["SourcePolicyType"] for s in named["EvaluationResults"][0]["MatchedStatements"]}
    assert "resource" in types


def test_caller_arn_is_who_the_resource_policy_sees(iam, demo):
    name = f"sim-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = document(statement("Allow", "kms:Decrypt"))
    iam.put_user_policy(UserName=name, PolicyName="decrypt", PolicyDocument=policy)
    names_analyst = document(
        {"Effect": "Allow", "Principal": {"AWS": ANALYST}, "Action": "kms:*", "Resource": "*"}
    )

    def simulate(**extra: Any) -> dict[str, str]:
        return decisions(
            iam.simulate_principal_policy(
                PolicySourceArn=f"arn:aws:iam::{ANALYTICS_ACCOUNT}:user/{name}",
                ActionNames=["kms:Decrypt"],
                ResourceArns=[key_arn(demo, "alias/emr-analytics")],
                ResourcePolicy=names_analyst,
                **extra,
            )
        )

    assert simulate() == {"kms:Decrypt": "implicitDeny"}
    assert simulate(CallerArn=ANALYST) == {"kms:Decrypt": "allowed"}
    session = f"arn:aws:sts::{ANALYTICS_ACCOUNT}:assumed-role/emr-session-role/s"
    error = refused(lambda: simulate(CallerArn=session))
    assert error["Code"] == "InvalidInput" and "CallerArn" in error["Message"]


def test_a_resource_policy_cannot_be_simulated_for_a_role(iam, demo):
    error = refused(
        lambda: iam.simulate_principal_policy(
            PolicySourceArn=SESSION_ROLE,
            ActionNames=["kms:Decrypt"],
            ResourcePolicy=document(
                {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}
            ),
        )
    )
    assert error["Code"] == "InvalidInput" and "roles" in error["Message"]


def test_a_permissions_boundary_limits_what_the_policies_allow(iam, demo):
    answer = iam.simulate_principal_policy(
        PolicySourceArn=ANALYST,
        ActionNames=["kms:Decrypt", "kms:DescribeKey"],
        ResourceArns=[key_arn(demo, "alias/emr-analytics")],
        PermissionsBoundaryPolicyInputList=[document(statement("Allow", "kms:DescribeKey"))],
    )
    assert decisions(answer) == {"kms:Decrypt": "implicitDeny", "kms:DescribeKey": "allowed"}
    detail = [r["PermissionsBoundaryDecisionDetail"] for r in answer["EvaluationResults"]]
    assert detail == [
        {"AllowedByPermissionsBoundary": False},
        {"AllowedByPermissionsBoundary": True},
    ]


def test_a_roles_own_permissions_boundary_applies(iam, demo, new_role):
    role = new_role(document(statement("Allow", "kms:*")))
    boundary = iam.create_policy(
        PolicyName=f"sim-boundary-{uuid.uuid4().hex[:8]}",
        PolicyDocument=document(statement("Allow", "kms:GenerateDataKey")),
    )["Policy"]["Arn"]
    iam.put_role_permissions_boundary(
        RoleName=role.rsplit("/", 1)[-1], PermissionsBoundary=boundary
    )
    answer = iam.simulate_principal_policy(
        PolicySourceArn=role,
        ActionNames=["kms:GenerateDataKey", "kms:Decrypt"],
        ResourceArns=[key_arn(demo, "alias/emr-analytics")],
    )
    assert decisions(answer) == {"kms:GenerateDataKey": "allowed", "kms:Decrypt": "implicitDeny"}


def test_results_come_in_pages_of_max_items(iam):
    actions = ["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"]
    first = iam.simulate_principal_policy(PolicySourceArn=ANALYST, ActionNames=actions, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 2
    rest = iam.simulate_principal_policy(
        PolicySourceArn=ANALYST, ActionNames=actions, MaxItems=2, Marker=first["Marker"]
    )
    assert rest["IsTruncated"] is False and "Marker" not in rest
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=ANALYST, ActionNames=actions, PaginationConfig={"PageSize": 1}
    )
    assert [r["EvalActionName"] for r in pages.build_full_result()["EvaluationResults"]] == actions


def test_an_unknown_principal_is_no_such_entity(iam):
    error = refused(
        lambda: iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/no-such-role",
            ActionNames=["kms:Decrypt"],
        )
    )
    assert error["Code"] == "NoSuchEntity" and "no-such-role" in error["Message"]


def test_a_caller_without_the_permission_is_refused(backend):
    # The security account's key admin may use KMS and CloudTrail, nothing in IAM.
    admin = f"arn:aws:iam::{SECURITY_ACCOUNT}:user/key-admin"
    error = refused(
        lambda: backend.client("iam", account=SECURITY_ACCOUNT).simulate_principal_policy(
            PolicySourceArn=admin, ActionNames=["kms:Decrypt"]
        )
    )
    assert error["Code"] == "AccessDenied"
    assert "iam:SimulatePrincipalPolicy" in error["Message"] and admin in error["Message"]


def test_bad_input_names_what_to_change(iam):
    error = refused(
        lambda: iam.simulate_principal_policy(PolicySourceArn=ANALYST, ActionNames=["Decrypt"])
    )
    assert error["Code"] == "InvalidInput" and "service prefix" in error["Message"]
