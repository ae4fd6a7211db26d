"""Deciding one principal's access from partial information: never a false pass."""

from __future__ import annotations

from emr_cmk_notebook.core.policy import Policy
from emr_cmk_notebook.readiness.access import decide
from emr_cmk_notebook.readiness.fixes import merge, root_allowed

KEY = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
ALLOW_KMS = {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
ROOT = {
    "Statement": [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
}


def call(**changes):
    args = dict(
        principal=ROLE,
        account="111122223333",
        action="kms:Decrypt",
        key_arn=KEY,
        context={},
        key_policy=None,
        identity=[ALLOW_KMS],
    )
    return decide(**{**args, **changes})


def test_unreadable_key_policy_with_an_allowing_identity_is_unknown():
    assert call().status == "unknown"


def test_cross_account_key_without_identity_policy_fails_even_unread():
    verdict = call(identity=[])
    assert verdict.status == "fail" and verdict.identity_side_missing


def test_key_policy_not_naming_the_other_account_fails_on_the_key_side():
    verdict = call(key_policy=Policy.parse(ROOT))
    assert verdict.status == "fail" and verdict.key_side_missing


def test_simulated_explicit_deny_fails_whatever_the_key_policy_says():
    assert call(simulated="explicitDeny").status == "fail"


def test_a_grant_allows_what_the_policies_do_not():
    grant = {"GrantId": "g1", "GranteePrincipal": ROLE, "Operations": ["Decrypt"]}
    verdict = call(key_policy=Policy.parse(ROOT), grants=[grant])
    assert verdict.status == "pass" and "g1" in verdict.reason


def test_merge_replaces_a_statement_with_the_same_sid_and_keeps_the_rest():
    fixed = {"Sid": "Root", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}
    added = {"Sid": "New", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}
    merged = merge(ROOT, [fixed, added])
    assert [s["Sid"] for s in merged["Statement"]] == ["Root", "New"]
    assert merged["Statement"][0]["Effect"] == "Deny"
    assert not root_allowed(merge(ROOT, [fixed]), KEY)
    assert root_allowed(ROOT, KEY)
