"""Policy parsing errors, statement shapes and what a decision carries."""

from __future__ import annotations

import json

import pytest

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.core.policy import (
    InvalidPolicy,
    InvalidRequest,
    Policy,
    Request,
    evaluate,
)

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/EmrRuntime"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/EmrRuntime/notebook"
ROOT_STATEMENT = {
    "Sid": "EnableIamPolicies",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}


def statement(**extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", **extra}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"Statement": [\n  {"Effect" "Allow"}]}', "invalid JSON at line 2 column 13"),
        ('{"Statement": {"Effect": "Allowed"}}', 'Statement.Effect: must be "Allow" or "Deny"'),
        (
            {"Statement": [statement(), statement(), statement(Condition={"StringEqualz": {}})]},
            "Statement[2].Condition.StringEqualz: unknown condition operator",
        ),
        (
            {"Statement": [statement(Condition={"NumericLessThan": {"aws:X": "ten"}})]},
            "Statement[0].Condition.NumericLessThan.aws:X: 'ten' is not a number",
        ),
        (
            {"Statement": [statement(Condition={"NullIfExists": {"aws:X": "true"}})]},
            "Statement[0].Condition.NullIfExists: Null cannot take IfExists",
        ),
        (
            {"Statement": [statement(Condition={"ForSomeValues:StringLike": {"a": "b"}})]},
            "unknown set operator 'ForSomeValues'",
        ),
        ({"Statement": [statement(Action="Decrypt")]}, "Statement[0].Action: 'Decrypt' needs"),
        ({"Statement": [statement(Actions="kms:Decrypt")]}, "Statement[0].Actions: unknown"),
        ({"Statement": [statement(NotPrincipal={"AWS": ROLE})]}, 'only with "Deny"'),
        ({"Statement": [statement(Principal={"AWS": "alice"})]}, "Principal.AWS: 'alice' is not"),
        ({"Statement": [statement(Principal={"User": ROLE})]}, "Principal.User: unknown"),
        ({"Statement": [statement(Resource=[])]}, "Statement[0].Resource: must be a non-empty"),
        ({"Version": "2012-10-17"}, "Statement: missing"),
        ({"Version": "2020-01-01", "Statement": []}, 'Version: must be "2012-10-17"'),
    ],
    ids=[
        "invalid-json",
        "effect-allowed",
        "unknown-operator",
        "numeric-value",
        "null-if-exists",
        "unknown-set-operator",
        "action-without-service",
        "unknown-element",
        "not-principal-with-allow",
        "bad-account",
        "unknown-principal-type",
        "empty-resource",
        "no-statement",
        "bad-version",
    ],
)
def test_parse_errors_are_one_line_and_name_the_place(document: object, message: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        Policy.parse(document)  # type: ignore[arg-type]
    assert isinstance(caught.value, UserError)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_evaluate_says_which_policy_is_invalid() -> None:
    request = Request(ROLE, "kms:Decrypt", KEY)
    with pytest.raises(InvalidPolicy, match=r"^key_policy: Statement\[0\]: a key policy statement"):
        evaluate(request, {"Statement": [statement()]})
    with pytest.raises(InvalidPolicy, match=r"^identity_policy\[1\]: Statement\.Effect"):
        identities = [{"Statement": statement()}, {"Statement": {"Effect": "Maybe"}}]
        evaluate(request, {"Statement": [ROOT_STATEMENT]}, identities)


def test_identity_policies_cannot_name_a_principal() -> None:
    identity = {"Statement": [statement(Principal={"AWS": ROLE})]}
    with pytest.raises(InvalidPolicy, match="identity policies cannot name a Principal"):
        evaluate(Request(ROLE, "kms:Decrypt", KEY), {"Statement": [ROOT_STATEMENT]}, [identity])


@pytest.mark.parametrize(
    ("principal", "action", "resource", "message"),
    [
        ("alice", "kms:Decrypt", KEY, "not an ARN or a service principal"),
        (ROLE, "Decrypt", KEY, "needs a service prefix"),
        (ROLE, "kms:Decrypt", "*", "is not a key ARN"),
    ],
)
def test_bad_requests_raise_user_errors(
    principal: str, action: str, resource: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        evaluate(Request(principal, action, resource), {"Statement": [ROOT_STATEMENT]})


def test_statement_object_and_list_decide_alike() -> None:
    allow_role = statement(Principal={"AWS": ROLE})
    request = Request(SESSION, "kms:Decrypt", KEY)
    as_object = evaluate(request, {"Statement": allow_role})
    as_list = evaluate(request, {"Statement": [allow_role]})
    assert as_object.decision == as_list.decision == "allow"
    assert as_object.to_dict() == as_list.to_dict()


@pytest.mark.parametrize("action", ["kms:Decrypt", "KMS:DECRYPT", "Kms:decrypt"])
def test_actions_are_case_insensitive(action: str) -> None:
    key_policy = {"Statement": [statement(Principal={"AWS": ROLE}, Action="kms:Decrypt")]}
    assert evaluate(Request(SESSION, action, KEY), key_policy).allowed


def test_allow_through_iam_carries_key_and_identity_statements() -> None:
    identity = {"Statement": [statement(Sid="UseKey", Resource=KEY)]}
    decision = evaluate(
        Request(SESSION, "kms:Decrypt", KEY), {"Statement": [ROOT_STATEMENT]}, [identity]
    )
    body = decision.to_dict()
    assert body["decision"] == "allow"
    assert [(s["source"], s["sid"]) for s in body["statements"]] == [
        ("key_policy", "EnableIamPolicies"),
        ("identity_policy[0]", "UseKey"),
    ]
    assert body["statements"][1]["statement"]["Resource"] == KEY
    assert body["statements"][0]["near_miss"] is None
    assert "EnableIamPolicies" in body["reason"] and "UseKey" in body["reason"]
    json.dumps(body)


def test_explicit_deny_carries_only_the_denies() -> None:
    key_policy = {
        "Statement": [
            statement(Principal="*"),
            {**statement(Principal={"AWS": ROLE}), "Effect": "Deny"},
        ]
    }
    decision = evaluate(Request(SESSION, "kms:Decrypt", KEY), key_policy)
    assert decision.decision == "explicit_deny"
    assert not decision.allowed
    assert [(s.effect, s.index, s.sid) for s in decision.statements] == [("Deny", 1, None)]


def test_near_misses_put_failed_conditions_first() -> None:
    key_policy = {
        "Statement": [
            statement(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"}),
            statement(
                Sid="AppOnly",
                Principal={"AWS": ROLE},
                Condition={"StringEquals": {"kms:EncryptionContext:applicationId": "app-1"}},
            ),
        ]
    }
    context = {"kms:EncryptionContext:applicationId": "app-2"}
    decision = evaluate(Request(SESSION, "kms:Decrypt", KEY, context), key_policy)
    assert decision.decision == "implicit_deny"
    first, second = decision.statements
    assert first.sid == "AppOnly"
    assert first.failed_condition == "StringEquals kms:EncryptionContext:applicationId"
    assert "'app-2'" in (first.near_miss or "") and "'app-1'" in (first.near_miss or "")
    assert second.near_miss == f"its Principal does not name {SESSION}"
    assert "AppOnly" in decision.reason


def test_no_matching_statement_says_so() -> None:
    key_policy = {"Statement": [statement(Principal={"AWS": ROLE}, Action="kms:Encrypt")]}
    decision = evaluate(Request(SESSION, "kms:Decrypt", KEY), key_policy)
    assert decision.to_dict()["statements"] == []
    assert decision.reason.startswith("no statement allows kms:Decrypt")


def test_multivalued_key_without_set_operator_matches_any_value() -> None:
    key_policy = {
        "Statement": [
            statement(
                Principal={"AWS": ROLE},
                Condition={"StringEquals": {"kms:EncryptionContextKeys": "applicationId"}},
            )
        ]
    }
    context = {"kms:EncryptionContextKeys": ["team", "applicationId"]}
    assert evaluate(Request(SESSION, "kms:Decrypt", KEY, context), key_policy).allowed


def test_caller_account_is_derived_from_the_principal() -> None:
    key_policy = {
        "Statement": [
            statement(Principal="*", Condition={"StringEquals": {"kms:CallerAccount": ACCOUNT}})
        ]
    }
    assert evaluate(Request(SESSION, "kms:Decrypt", KEY), key_policy).allowed


def test_parsed_text_is_reused_and_policies_can_be_passed_parsed() -> None:
    text = json.dumps({"Statement": [statement(Principal={"AWS": ROLE})]})
    policy = Policy.parse(text)
    assert Policy.parse(text) is policy
    assert evaluate(Request(SESSION, "kms:Decrypt", KEY), policy).allowed
