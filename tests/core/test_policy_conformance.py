"""One case per documented AWS policy-evaluation rule, each citing the page it follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from emr_cmk_notebook.core.policy import Request, evaluate

IAM = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
KMS = "https://docs.aws.amazon.com/kms/latest/developerguide/"
EVALUATION = IAM + "reference_policies_evaluation-logic.html"
EXPLICIT_DENY = IAM + "reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html"
CROSS_ACCOUNT = IAM + "reference_policies_evaluation-logic-cross-account.html"
PRINCIPAL = IAM + "reference_policies_elements_principal.html"
NOT_PRINCIPAL = IAM + "reference_policies_elements_notprincipal.html"
ACTION = IAM + "reference_policies_elements_action.html"
NOT_ACTION = IAM + "reference_policies_elements_notaction.html"
RESOURCE = IAM + "reference_policies_elements_resource.html"
NOT_RESOURCE = IAM + "reference_policies_elements_notresource.html"
STATEMENT = IAM + "reference_policies_elements_statement.html"
CONDITION = IAM + "reference_policies_elements_condition.html"
OPERATORS = IAM + "reference_policies_elements_condition_operators.html"
MULTIPLE = IAM + "reference_policies_condition-logic-multiple-context-keys-or-values.html"
SET_OPERATORS = IAM + "reference_policies_condition-single-vs-multi-valued-context-keys.html"
VARIABLES = IAM + "reference_policies_variables.html"
KEY_POLICIES = KMS + "key-policies.html"
DEFAULT_KEY_POLICY = KMS + "key-policy-default.html"
EXTERNAL_ACCOUNTS = KMS + "key-policy-modifying-external-accounts.html"
DETERMINING_ACCESS = KMS + "determining-access.html"
KMS_CONDITIONS = KMS + "conditions-kms.html"
EMR_DISK_CMK = (
    "https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/disk-encryption-cmk.html"
)

KEY_ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{KEY_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
USER = f"arn:aws:iam::{KEY_ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{KEY_ACCOUNT}:role/data/EmrRuntime"
SESSION = f"arn:aws:sts::{KEY_ACCOUNT}:assumed-role/EmrRuntime/notebook-1"
OTHER_SESSION = f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/Analyst/alice"
SERVICE = "emr-serverless.amazonaws.com"
APP = "00fabcdefg123456"
APP_ARN = f"arn:aws:emr-serverless:us-east-1:{KEY_ACCOUNT}:/applications/{APP}"
ROOT = f"arn:aws:iam::{KEY_ACCOUNT}:root"
# The ARN operators page example: a wildcard must not cross ARN fields under ArnLike.
NESTED_ARN = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/doc.txt"


def allow(principal: Any = None, **extra: Any) -> dict[str, Any]:
    """An Allow statement for kms:Decrypt on every resource."""
    statement = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", **extra}
    for negated, plain in (("NotAction", "Action"), ("NotResource", "Resource")):
        if negated in extra:
            del statement[plain]
    if principal is not None:
        statement["Principal"] = principal
    return statement


def deny(principal: Any = None, **extra: Any) -> dict[str, Any]:
    """A Deny statement for kms:Decrypt on every resource."""
    return {**allow(principal, **extra), "Effect": "Deny"}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ROOT_STATEMENT = allow({"AWS": ROOT}, Action="kms:*", Sid="EnableIamPolicies")
IDENTITY_ALLOW = policy(allow(Resource=KEY))


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    key_policy: dict[str, Any]
    expect: str
    principal: str = USER
    identity: tuple[dict[str, Any], ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    action: str = "kms:Decrypt"
    resource: str = KEY
    near: str | None = None


def cond(case_id: str, source: str, condition: dict, context: dict, expect: str, **kw) -> Case:
    """A case whose key policy allows USER directly under ``condition``."""
    return Case(
        case_id,
        source,
        policy(allow({"AWS": USER}, Condition=condition)),
        expect,
        context=context,
        **kw,
    )


EMR_STATEMENT_CONDITIONS = {
    "StringLike": {"aws:SourceArn": APP_ARN},
    "StringEquals": {
        "aws:SourceAccount": KEY_ACCOUNT,
        "kms:EncryptionContext:applicationId": APP,
    },
}
EMR_CONTEXT = {
    "aws:SourceArn": APP_ARN,
    "aws:SourceAccount": KEY_ACCOUNT,
    "kms:EncryptionContext:applicationId": APP,
}
EMR_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]
EMR_POLICY = policy(
    ROOT_STATEMENT,
    allow({"Service": SERVICE}, Action=EMR_ACTIONS, Condition=EMR_STATEMENT_CONDITIONS),
)

CASES = [
    # Allow, deny, default deny.
    Case("key-policy-names-user-allows", KEY_POLICIES, policy(allow({"AWS": USER})), "allow"),
    Case(
        "default-is-implicit-deny",
        EVALUATION,
        policy(allow({"AWS": ROLE})),
        "implicit_deny",
        near="does not name",
    ),
    Case(
        "explicit-deny-beats-allow",
        EXPLICIT_DENY,
        policy(allow({"AWS": USER}), deny({"AWS": USER})),
        "explicit_deny",
    ),
    Case(
        "identity-deny-beats-key-policy-allow",
        KEY_POLICIES,
        policy(allow({"AWS": USER})),
        "explicit_deny",
        identity=(policy(deny(Resource=KEY)),),
    ),
    Case(
        "deny-naming-account-covers-its-users",
        EXPLICIT_DENY,
        policy(allow({"AWS": USER}), deny({"AWS": KEY_ACCOUNT})),
        "explicit_deny",
    ),
    # Principal forms and the KMS rule for identity policies.
    Case(
        "account-id-enables-identity-policies",
        DEFAULT_KEY_POLICY,
        policy(allow({"AWS": KEY_ACCOUNT})),
        "allow",
        identity=(IDENTITY_ALLOW,),
    ),
    Case(
        "root-arn-enables-identity-policies",
        DEFAULT_KEY_POLICY,
        policy(ROOT_STATEMENT),
        "allow",
        identity=(IDENTITY_ALLOW,),
    ),
    Case(
        "root-arn-alone-grants-no-user",
        DEFAULT_KEY_POLICY,
        policy(ROOT_STATEMENT),
        "implicit_deny",
        near="no identity policy",
    ),
    Case(
        "identity-policy-needs-root-statement",
        KEY_POLICIES,
        policy(allow({"AWS": ROLE})),
        "implicit_deny",
        identity=(IDENTITY_ALLOW,),
        near=f"does not allow {ROOT}",
    ),
    Case(
        "root-statement-scoped-to-other-action",
        KEY_POLICIES,
        policy(allow({"AWS": ROOT}, Action="kms:Encrypt")),
        "implicit_deny",
        identity=(IDENTITY_ALLOW,),
        near=f"does not allow {ROOT}",
    ),
    Case(
        "role-arn-matches-its-sessions",
        PRINCIPAL,
        policy(allow({"AWS": ROLE})),
        "allow",
        principal=SESSION,
    ),
    Case(
        "session-arn-principal",
        PRINCIPAL,
        policy(allow({"AWS": SESSION})),
        "allow",
        principal=SESSION,
    ),
    Case(
        "role-arn-does-not-match-other-role",
        PRINCIPAL,
        policy(allow({"AWS": f"arn:aws:iam::{KEY_ACCOUNT}:role/Other"})),
        "implicit_deny",
        principal=SESSION,
    ),
    Case("principal-star-same-account", DETERMINING_ACCESS, policy(allow("*")), "allow"),
    Case("principal-aws-star-same-account", PRINCIPAL, policy(allow({"AWS": "*"})), "allow"),
    Case("principal-list", PRINCIPAL, policy(allow({"AWS": [ROLE, USER]})), "allow"),
    Case(
        "service-principal-string",
        PRINCIPAL,
        policy(allow({"Service": SERVICE})),
        "allow",
        principal=SERVICE,
    ),
    Case(
        "service-principal-list",
        PRINCIPAL,
        policy(allow({"Service": ["logs.amazonaws.com", SERVICE]})),
        "allow",
        principal=SERVICE,
    ),
    Case(
        "service-principal-ignores-identity-policies",
        KEY_POLICIES,
        policy(ROOT_STATEMENT),
        "implicit_deny",
        principal=SERVICE,
        identity=(IDENTITY_ALLOW,),
    ),
    Case(
        "not-principal-deny-spares-named",
        NOT_PRINCIPAL,
        policy(allow("*"), deny(NotPrincipal={"AWS": [USER, ROOT]})),
        "allow",
    ),
    Case(
        "not-principal-deny-hits-others",
        NOT_PRINCIPAL,
        policy(allow("*"), deny(NotPrincipal={"AWS": [USER, ROOT]})),
        "explicit_deny",
        principal=SESSION,
    ),
    Case(
        "not-principal-needs-account-too",
        NOT_PRINCIPAL,
        policy(allow("*"), deny(NotPrincipal={"AWS": USER})),
        "explicit_deny",
    ),
    # Cross-account: key policy AND the caller's identity policy.
    Case(
        "cross-account-with-identity-policy",
        EXTERNAL_ACCOUNTS,
        policy(ROOT_STATEMENT, allow({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"})),
        "allow",
        principal=OTHER_SESSION,
        identity=(IDENTITY_ALLOW,),
    ),
    Case(
        "cross-account-without-identity-policy",
        CROSS_ACCOUNT,
        policy(ROOT_STATEMENT, allow({"AWS": OTHER_ACCOUNT})),
        "implicit_deny",
        principal=OTHER_SESSION,
        near="no identity policy",
    ),
    Case(
        "cross-account-named-principal-still-needs-identity",
        EXTERNAL_ACCOUNTS,
        policy(allow({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/Analyst"})),
        "implicit_deny",
        principal=OTHER_SESSION,
        near="no identity policy",
    ),
    Case(
        "cross-account-star-needs-identity",
        DETERMINING_ACCESS,
        policy(allow("*")),
        "implicit_deny",
        principal=OTHER_SESSION,
    ),
    Case(
        "cross-account-identity-policy-alone",
        EXTERNAL_ACCOUNTS,
        policy(ROOT_STATEMENT),
        "implicit_deny",
        principal=OTHER_SESSION,
        identity=(IDENTITY_ALLOW,),
        near=f"does not name {OTHER_SESSION}",
    ),
    # Action, NotAction, Resource, NotResource, Statement shape.
    Case(
        "action-star-wildcard",
        ACTION,
        policy(allow({"AWS": USER}, Action="kms:Gen*")),
        "allow",
        action="kms:GenerateDataKey",
    ),
    Case(
        "action-question-mark-wildcard",
        ACTION,
        policy(allow({"AWS": USER}, Action="kms:Decryp?")),
        "allow",
    ),
    Case(
        "action-case-insensitive",
        ACTION,
        policy(allow({"AWS": USER}, Action="KMS:DECRYPT")),
        "allow",
    ),
    Case(
        "action-list",
        ACTION,
        policy(allow({"AWS": USER}, Action=["kms:Encrypt", "kms:Decrypt"])),
        "allow",
    ),
    Case(
        "not-action-allows-others",
        NOT_ACTION,
        policy(allow({"AWS": USER}, NotAction="kms:Decrypt")),
        "allow",
        action="kms:Encrypt",
    ),
    Case(
        "not-action-excludes-named",
        NOT_ACTION,
        policy(allow({"AWS": USER}, NotAction="kms:Decrypt")),
        "implicit_deny",
    ),
    Case(
        "resource-case-sensitive",
        RESOURCE,
        policy(ROOT_STATEMENT),
        "implicit_deny",
        identity=(policy(allow(Resource=KEY.replace("1234abcd", "1234ABCD"))),),
    ),
    Case(
        "resource-wildcard",
        RESOURCE,
        policy(ROOT_STATEMENT),
        "allow",
        identity=(policy(allow(Resource=f"arn:aws:kms:*:{KEY_ACCOUNT}:key/*")),),
    ),
    Case(
        "not-resource",
        NOT_RESOURCE,
        policy(ROOT_STATEMENT),
        "allow",
        identity=(policy(allow(NotResource=f"arn:aws:kms:us-east-1:{KEY_ACCOUNT}:key/other")),),
    ),
    Case(
        "statement-as-object",
        STATEMENT,
        {"Version": "2012-10-17", "Statement": allow({"AWS": USER})},
        "allow",
    ),
    # String operators.
    cond(
        "string-equals",
        OPERATORS,
        {"StringEquals": {"aws:PrincipalTag/team": "risk"}},
        {"aws:PrincipalTag/team": "risk"},
        "allow",
    ),
    cond(
        "string-equals-is-case-sensitive",
        OPERATORS,
        {"StringEquals": {"aws:PrincipalTag/team": "Risk"}},
        {"aws:PrincipalTag/team": "risk"},
        "implicit_deny",
        near="StringEquals aws:PrincipalTag/team",
    ),
    cond(
        "string-not-equals",
        OPERATORS,
        {"StringNotEquals": {"aws:PrincipalTag/team": "ops"}},
        {"aws:PrincipalTag/team": "risk"},
        "allow",
    ),
    cond(
        "string-equals-ignore-case",
        OPERATORS,
        {"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "RISK"}},
        {"aws:PrincipalTag/team": "risk"},
        "allow",
    ),
    cond(
        "string-not-equals-ignore-case",
        OPERATORS,
        {"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "RISK"}},
        {"aws:PrincipalTag/team": "risk"},
        "implicit_deny",
    ),
    cond(
        "string-like",
        OPERATORS,
        {"StringLike": {"aws:PrincipalTag/team": "ri?k*"}},
        {"aws:PrincipalTag/team": "risk-eu"},
        "allow",
    ),
    cond(
        "string-not-like",
        OPERATORS,
        {"StringNotLike": {"aws:PrincipalTag/team": "ri*"}},
        {"aws:PrincipalTag/team": "risk"},
        "implicit_deny",
    ),
    cond(
        "negated-operator-true-when-key-absent",
        OPERATORS,
        {"StringNotLike": {"aws:PrincipalTag/team": "ri*"}},
        {},
        "allow",
    ),
    cond(
        "positive-operator-false-when-key-absent",
        OPERATORS,
        {"StringLike": {"aws:PrincipalTag/team": "*"}},
        {},
        "implicit_deny",
        near="the request has no aws:PrincipalTag/team",
    ),
    # ARN operators.
    cond(
        "arn-equals",
        OPERATORS,
        {"ArnEquals": {"aws:SourceArn": APP_ARN}},
        {"aws:SourceArn": APP_ARN},
        "allow",
    ),
    cond(
        "arn-like-wildcard",
        OPERATORS,
        {"ArnLike": {"aws:SourceArn": f"arn:aws:emr-serverless:*:{KEY_ACCOUNT}:/applications/*"}},
        {"aws:SourceArn": APP_ARN},
        "allow",
    ),
    cond(
        "arn-like-wildcard-stays-in-its-field",
        OPERATORS,
        {"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
        {"aws:SourceArn": NESTED_ARN},
        "implicit_deny",
    ),
    cond(
        "string-like-wildcard-crosses-fields",
        OPERATORS,
        {"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
        {"aws:SourceArn": NESTED_ARN},
        "allow",
    ),
    cond(
        "arn-not-equals",
        OPERATORS,
        {"ArnNotEquals": {"aws:SourceArn": APP_ARN}},
        {"aws:SourceArn": APP_ARN + "x"},
        "allow",
    ),
    cond(
        "arn-not-like",
        OPERATORS,
        {"ArnNotLike": {"aws:SourceArn": f"arn:aws:emr-serverless:*:{KEY_ACCOUNT}:*"}},
        {"aws:SourceArn": APP_ARN},
        "implicit_deny",
    ),
    # Numeric operators.
    cond(
        "numeric-equals",
        OPERATORS,
        {"NumericEquals": {"aws:MultiFactorAuthAge": "30"}},
        {"aws:MultiFactorAuthAge": "30.0"},
        "allow",
    ),
    cond(
        "numeric-not-equals",
        OPERATORS,
        {"NumericNotEquals": {"aws:MultiFactorAuthAge": 30}},
        {"aws:MultiFactorAuthAge": "30"},
        "implicit_deny",
    ),
    cond(
        "numeric-less-than",
        OPERATORS,
        {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        {"aws:MultiFactorAuthAge": "3599"},
        "allow",
    ),
    cond(
        "numeric-less-than-equals",
        OPERATORS,
        {"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}},
        {"aws:MultiFactorAuthAge": "3601"},
        "implicit_deny",
    ),
    cond(
        "numeric-greater-than",
        OPERATORS,
        {"NumericGreaterThan": {"aws:MultiFactorAuthAge": "10"}},
        {"aws:MultiFactorAuthAge": "10"},
        "implicit_deny",
    ),
    cond(
        "numeric-greater-than-equals",
        OPERATORS,
        {"NumericGreaterThanEquals": {"aws:MultiFactorAuthAge": "10"}},
        {"aws:MultiFactorAuthAge": "10"},
        "allow",
    ),
    # Date operators (ISO 8601 or epoch seconds).
    cond(
        "date-equals-epoch-vs-iso",
        OPERATORS,
        {"DateEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"aws:CurrentTime": "1767225600"},
        "allow",
    ),
    cond(
        "date-not-equals",
        OPERATORS,
        {"DateNotEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
        "implicit_deny",
    ),
    cond(
        "date-less-than",
        OPERATORS,
        {"DateLessThan": {"aws:CurrentTime": "2027-01-01"}},
        {"aws:CurrentTime": "2026-06-01T12:00:00Z"},
        "allow",
    ),
    cond(
        "date-less-than-equals",
        OPERATORS,
        {"DateLessThanEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"aws:CurrentTime": "2026-01-01T00:00:01Z"},
        "implicit_deny",
    ),
    cond(
        "date-greater-than",
        OPERATORS,
        {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
        {"aws:TokenIssueTime": "2026-05-01T08:00:00+02:00"},
        "allow",
    ),
    cond(
        "date-greater-than-equals",
        OPERATORS,
        {"DateGreaterThanEquals": {"aws:CurrentTime": "2026-01-02T00:00:00Z"}},
        {"aws:CurrentTime": "2026-01-01T23:59:59Z"},
        "implicit_deny",
    ),
    # Bool, IP address, Null.
    cond(
        "bool-string",
        OPERATORS,
        {"Bool": {"aws:SecureTransport": "true"}},
        {"aws:SecureTransport": "true"},
        "allow",
    ),
    cond(
        "bool-json-boolean",
        OPERATORS,
        {"Bool": {"aws:SecureTransport": True}},
        {"aws:SecureTransport": "false"},
        "implicit_deny",
    ),
    cond(
        "ip-address-cidr",
        OPERATORS,
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:SourceIp": "203.0.113.77"},
        "allow",
    ),
    cond(
        "ip-address-single-ip-is-slash-32",
        OPERATORS,
        {"IpAddress": {"aws:SourceIp": "203.0.113.7"}},
        {"aws:SourceIp": "203.0.113.8"},
        "implicit_deny",
    ),
    cond(
        "ip-address-ipv6",
        OPERATORS,
        {"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}},
        {"aws:SourceIp": "2001:db8:1234:5678::1"},
        "allow",
    ),
    cond(
        "not-ip-address",
        OPERATORS,
        {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:SourceIp": "203.0.113.77"},
        "implicit_deny",
    ),
    cond(
        "null-true-means-absent", OPERATORS, {"Null": {"aws:TokenIssueTime": "true"}}, {}, "allow"
    ),
    cond(
        "null-false-means-present",
        OPERATORS,
        {"Null": {"aws:TokenIssueTime": "false"}},
        {},
        "implicit_deny",
        near="Null aws:TokenIssueTime",
    ),
    # ...IfExists.
    cond(
        "if-exists-true-when-absent",
        OPERATORS,
        {"StringEqualsIfExists": {"kms:EncryptionContext:applicationId": APP}},
        {},
        "allow",
    ),
    cond(
        "if-exists-tests-when-present",
        OPERATORS,
        {"StringEqualsIfExists": {"kms:EncryptionContext:applicationId": APP}},
        {"kms:EncryptionContext:applicationId": "other"},
        "implicit_deny",
    ),
    # Set operators on multivalued keys.
    cond(
        "for-any-value-matches-one",
        SET_OPERATORS,
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["applicationId"]}},
        {"kms:EncryptionContextKeys": ["team", "applicationId"]},
        "allow",
    ),
    cond(
        "for-any-value-false-when-absent",
        SET_OPERATORS,
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["applicationId"]}},
        {},
        "implicit_deny",
        near="ForAnyValue:StringEquals kms:EncryptionContextKeys",
    ),
    cond(
        "for-all-values-all-listed",
        SET_OPERATORS,
        {"ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["applicationId", "team*"]}},
        {"kms:EncryptionContextKeys": ["applicationId", "team-eu"]},
        "allow",
    ),
    cond(
        "for-all-values-one-unlisted",
        SET_OPERATORS,
        {"ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["applicationId"]}},
        {"kms:EncryptionContextKeys": ["applicationId", "secret"]},
        "implicit_deny",
    ),
    cond(
        "for-all-values-true-when-absent",
        SET_OPERATORS,
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["applicationId"]}},
        {},
        "allow",
    ),
    # Several values, keys and operators.
    cond(
        "several-values-are-ored",
        MULTIPLE,
        {"StringEquals": {"kms:EncryptionContext:applicationId": ["app-a", APP]}},
        {"kms:EncryptionContext:applicationId": APP},
        "allow",
    ),
    cond(
        "negated-several-values-are-nored",
        MULTIPLE,
        {"StringNotEquals": {"kms:EncryptionContext:applicationId": ["app-a", APP]}},
        {"kms:EncryptionContext:applicationId": APP},
        "implicit_deny",
    ),
    cond(
        "several-keys-are-anded",
        MULTIPLE,
        {
            "StringEquals": {
                "aws:SourceAccount": KEY_ACCOUNT,
                "kms:EncryptionContext:applicationId": APP,
            }
        },
        {"aws:SourceAccount": KEY_ACCOUNT, "kms:EncryptionContext:applicationId": "other"},
        "implicit_deny",
        near="StringEquals kms:EncryptionContext:applicationId",
    ),
    cond(
        "several-operators-are-anded",
        MULTIPLE,
        {
            "StringEquals": {"aws:SourceAccount": KEY_ACCOUNT},
            "Bool": {"aws:SecureTransport": "true"},
        },
        {"aws:SourceAccount": KEY_ACCOUNT, "aws:SecureTransport": "false"},
        "implicit_deny",
        near="Bool aws:SecureTransport",
    ),
    cond(
        "condition-keys-case-insensitive",
        CONDITION,
        {"StringEquals": {"KMS:ENCRYPTIONCONTEXT:APPLICATIONID": APP}},
        {"kms:EncryptionContext:applicationId": APP},
        "allow",
    ),
    # Policy variables.
    cond(
        "policy-variable-resolves",
        VARIABLES,
        {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
        {"kms:EncryptionContext:owner": "alice", "aws:username": "alice"},
        "allow",
    ),
    cond(
        "policy-variable-without-value-never-matches",
        VARIABLES,
        {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
        {"kms:EncryptionContext:owner": "alice"},
        "implicit_deny",
        near="policy variable ${aws:username}",
    ),
    cond(
        "policy-variable-default",
        VARIABLES,
        {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username, 'nobody'}"}},
        {"kms:EncryptionContext:owner": "nobody"},
        "allow",
    ),
    # EMR Serverless as a service principal, with the conditions AWS recommends.
    Case(
        "emr-service-with-recommended-conditions",
        EMR_DISK_CMK,
        EMR_POLICY,
        "allow",
        principal=SERVICE,
        context=EMR_CONTEXT,
        action="kms:GenerateDataKey",
    ),
    Case(
        "emr-service-source-arn-arn-like",
        EMR_DISK_CMK,
        policy(
            allow(
                {"Service": SERVICE},
                Condition={
                    "ArnLike": {"aws:SourceArn": APP_ARN.replace(APP, "*")},
                    "StringEquals": {"aws:SourceAccount": KEY_ACCOUNT},
                },
            )
        ),
        "allow",
        principal=SERVICE,
        context=EMR_CONTEXT,
    ),
    Case(
        "emr-service-other-application",
        EMR_DISK_CMK,
        EMR_POLICY,
        "implicit_deny",
        principal=SERVICE,
        context={**EMR_CONTEXT, "aws:SourceArn": APP_ARN.replace(APP, "00fother")},
        near="StringLike aws:SourceArn",
    ),
    Case(
        "emr-service-other-account",
        EMR_DISK_CMK,
        EMR_POLICY,
        "implicit_deny",
        principal=SERVICE,
        context={**EMR_CONTEXT, "aws:SourceAccount": OTHER_ACCOUNT},
        near="StringEquals aws:SourceAccount",
    ),
    Case(
        "emr-service-encryption-context-mismatch",
        KMS_CONDITIONS,
        EMR_POLICY,
        "implicit_deny",
        principal=SERVICE,
        context={**EMR_CONTEXT, "kms:EncryptionContext:applicationId": "00fother"},
        near="StringEquals kms:EncryptionContext:applicationId",
    ),
    Case(
        "emr-service-wrong-context-key-in-policy",
        EMR_DISK_CMK,
        policy(
            ROOT_STATEMENT,
            allow(
                {"Service": SERVICE},
                Condition={
                    "StringEquals": {"kms:EncryptionContext:aws:emr-serverless:application-id": APP}
                },
            ),
        ),
        "implicit_deny",
        principal=SERVICE,
        context=EMR_CONTEXT,
        near="StringEquals kms:EncryptionContext:aws:emr-serverless:application-id",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_conformance(case: Case) -> None:
    assert case.source.startswith("https://docs.aws.amazon.com/")
    request = Request(case.principal, case.action, case.resource, case.context)
    decision = evaluate(request, case.key_policy, case.identity)
    assert decision.decision == case.expect, decision.reason
    if case.near is not None:
        closest = decision.statements[0]
        assert case.near in f"{closest.failed_condition} {closest.near_miss}", decision.reason


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)
