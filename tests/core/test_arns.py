"""ARN parsing and the classification of what a user typed for a KMS key."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.arns import (
    KEY_ARN_PATTERN,
    Arn,
    KeyRef,
    application_arn,
    is_role_arn,
    parse_arn,
    parse_key_ref,
    role_arn_problem,
)
from emr_cmk_notebook.core.errors import InvalidEncryptionConfig, UserError

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
MRK_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}"
ALIAS_ARN = "arn:aws:kms:us-east-1:111122223333:alias/emr-analytics"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            KEY_ARN,
            KeyRef("key_arn", KEY_ARN, "aws", "us-east-1", "111122223333", key_id=KEY_ID),
        ),
        (
            f"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/{MRK_ID}",
            KeyRef(
                "key_arn",
                f"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/{MRK_ID}",
                "aws-us-gov",
                "us-gov-west-1",
                "111122223333",
                key_id=MRK_ID,
            ),
        ),
        (
            ALIAS_ARN,
            KeyRef(
                "alias_arn",
                ALIAS_ARN,
                "aws",
                "us-east-1",
                "111122223333",
                alias_name="alias/emr-analytics",
            ),
        ),
        (
            "alias/emr-analytics",
            KeyRef("alias_name", "alias/emr-analytics", alias_name="alias/emr-analytics"),
        ),
        (
            "alias/team/risk_v2",
            KeyRef("alias_name", "alias/team/risk_v2", alias_name="alias/team/risk_v2"),
        ),
        (KEY_ID, KeyRef("key_id", KEY_ID, key_id=KEY_ID)),
        (MRK_ID, KeyRef("key_id", MRK_ID, key_id=MRK_ID)),
    ],
)
def test_accepted_key_forms_are_classified(text: str, expected: KeyRef) -> None:
    assert parse_key_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "needs_resolution"),
    [(KEY_ARN, False), (ALIAS_ARN, True), ("alias/emr-analytics", True), (KEY_ID, True)],
)
def test_only_a_key_arn_skips_resolution(text: str, needs_resolution: bool) -> None:
    assert parse_key_ref(text).needs_resolution is needs_resolution


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("emr-analytics", "is not a KMS key reference"),
        ("alias/", "is not a valid alias name"),
        ("alias/bad name", "is not a valid alias name"),
        ("alias/" + "a" * 251, "is not a valid alias name"),
        ("1234abcd", "is not a KMS key reference"),
        ("mrk-1234", "is not a KMS key reference"),
        (" " + KEY_ARN, "is not a KMS key reference"),
        ("arn:aws:kms", "is not a well-formed ARN"),
        ("arn:aws:s3:::my-bucket", "is an ARN for s3, not for a KMS key"),
        ("arn:aws:kms:us-east-1:1111:key/abc", "is not a valid KMS key or alias ARN"),
        ("arn:aws:kms:us-east-1:111122223333:key/", "is not a valid KMS key or alias ARN"),
        ("arn:aws:kms:us-east-1:111122223333:key/a_b", "is not a valid KMS key or alias ARN"),
        ("arn:aws:kms:us-east-1:111122223333:grant/abc", "is not a valid KMS key or alias ARN"),
        ("arn:other:kms:us-east-1:111122223333:alias/x", "is not a valid alias ARN"),
        ("arn:aws:kms:us-east-1:111122223333:alias/a b", "is not a valid alias ARN"),
    ],
)
def test_rejected_key_forms_name_the_value_and_the_accepted_forms(text: str, why: str) -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        parse_key_ref(text)
    message = str(caught.value)
    assert "\n" not in message
    assert why in message
    assert repr(text[:20]).rstrip("'") in message
    for form in ("key ARN", "alias ARN", "alias name", "key id"):
        assert form in message


def test_a_non_string_key_says_its_type() -> None:
    with pytest.raises(InvalidEncryptionConfig, match=r"is not a string \(it has type int\)"):
        parse_key_ref(42)  # type: ignore[arg-type]


def test_parse_arn_keeps_colons_and_slashes_in_the_resource() -> None:
    arn = parse_arn("arn:aws:logs:eu-west-1:111122223333:log-group:/aws/emr:*")
    assert arn == Arn("aws", "logs", "eu-west-1", "111122223333", "log-group:/aws/emr:*")
    assert str(arn) == "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/emr:*"


def test_parse_arn_allows_empty_region_and_account() -> None:
    assert parse_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").region == ""
    assert parse_arn("arn:aws:s3:::bucket").account == ""


@pytest.mark.parametrize(
    "text", ["", "not-an-arn", "arn:aws:s3", "arn::s3:::bucket", "arn:aws:s3:::", "urn:aws:s3:::b"]
)
def test_parse_arn_rejects_non_arns_in_one_line(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_arn(text)
    assert str(caught.value).startswith(repr(text))
    assert "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE" in str(caught.value)


def test_application_arn_matches_the_source_arn_aws_documents() -> None:
    assert (
        application_arn("us-east-1", "111122223333", "00fabc123")
        == "arn:aws:emr-serverless:us-east-1:111122223333:/applications/00fabc123"
    )
    assert application_arn("cn-north-1", "111122223333", "x", partition="aws-cn").startswith(
        "arn:aws-cn:emr-serverless:cn-north-1:"
    )


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        (KEY_ARN, True),
        ("arn:aws:kms::111122223333:key/abc", True),
        (ALIAS_ARN, False),
        (KEY_ID, False),
        (KEY_ARN + "/extra", False),
        ("x" + KEY_ARN, False),
    ],
)
def test_key_arn_pattern_is_the_services_pattern_anchored(text: str, matches: bool) -> None:
    assert bool(KEY_ARN_PATTERN.fullmatch(text)) is matches


ACCOUNT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/emr-session-role"


# Before there was one rule, readiness, the session start, the usage lookup and the local Livy
# endpoint each had a role ARN regex; the comment says who disagreed with the answer IAM gives.
@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        (ROLE_ARN, True),
        (f"arn:aws-cn:iam::{ACCOUNT}:role/R", True),
        (f"arn:aws:iam::{ACCOUNT}:role/service-role/team/R+=,.@_-9", True),
        # IAM paths hold any printable ASCII: readiness and the session start refused this.
        (f"arn:aws:iam::{ACCOUNT}:role/te#am:x/R", True),
        (f"arn:aws:iam::{ACCOUNT}:role/" + "r" * 64, True),
        # IAM role names are at most 64 characters: all but readiness accepted this.
        (f"arn:aws:iam::{ACCOUNT}:role/" + "r" * 65, False),
        # IAM's \w is ASCII: every one of them accepted a non-ASCII letter.
        (f"arn:aws:iam::{ACCOUNT}:role/Rôle", False),
        # A role ARN names no region: readiness accepted this.
        (f"arn:aws:iam:us-east-1:{ACCOUNT}:role/R", False),
        # An unknown partition: readiness accepted this.
        (f"arn:foo:iam::{ACCOUNT}:role/R", False),
        # A trailing slash leaves no name: the session start and the usage lookup accepted this.
        (f"arn:aws:iam::{ACCOUNT}:role/R/", False),
        # The usage lookup's ``$`` let a trailing newline through.
        (f"{ROLE_ARN}\n", False),
        (f"arn:aws:iam::{ACCOUNT}:role/team a/R", False),
        (f"arn:aws:iam::{ACCOUNT}:role/" + "p" * 511 + "/R", False),
        (f"arn:aws:iam::{ACCOUNT}:user/analyst", False),
        ("arn:aws:iam::1111:role/R", False),
        ("emr-session-role", False),
        (None, False),
    ],
)
def test_role_arns_are_judged_by_iams_rules(text: object, accepted: bool) -> None:
    assert is_role_arn(text) is accepted


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("emr-session-role", "is not an IAM role ARN; write it as arn:aws:iam::ACCOUNT:role/NAME"),
        (f"arn:aws:iam:us-east-1:{ACCOUNT}:role/R", "names a region"),
        ("arn:aws:iam::1111:role/R", "needs a 12-digit account id"),
        (f"arn:aws:iam::{ACCOUNT}:role/" + "r" * 65, "1 to 64 ASCII letters"),
        (f"arn:aws:iam::{ACCOUNT}:role/" + "p" * 511 + "/R", "longer than the 512 characters"),
    ],
)
def test_a_refused_role_arn_says_what_to_change_in_one_line(text: str, says: str) -> None:
    problem = role_arn_problem(text)
    assert problem is not None and says in problem and "\n" not in problem
