"""DiskEncryption: service-exact validation, every input form, every rendering, secret warnings."""

from __future__ import annotations

import json
import shlex
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emr_cmk_notebook.core.context_secrets import SecretInContextWarning
from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.core.encryption_rules import Problem, encryption_config_problems
from emr_cmk_notebook.core.errors import InvalidEncryptionConfig, UserError

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ACCOUNT_ARN = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS_ARN = "arn:aws:kms:us-east-1:111122223333:alias/emr-analytics"
CONTEXT = {"project": "churn", "team": "risk"}
CTX_FIELD = "diskEncryptionConfiguration.encryptionContext"


# Construction and validation ---------------------------------------------------------------


def test_context_keeps_insertion_order_and_cannot_be_changed() -> None:
    source = {"team": "risk", "project": "churn", "env": "prod"}
    disk = DiskEncryption(KEY_ARN, source)
    source["extra"] = "later"
    assert list(disk.context) == ["team", "project", "env"]
    with pytest.raises(TypeError):
        disk.context["team"] = "other"  # type: ignore[index]


def test_equal_configs_are_equal_and_hash_alike() -> None:
    first = DiskEncryption(KEY_ARN, {"a": "1", "b": "2"})
    second = DiskEncryption.from_parts(KEY_ARN, ["b=2", "a=1"])
    assert first == second
    assert len({first, second}) == 1
    assert first != DiskEncryption(KEY_ARN, {"a": "1"})


@pytest.mark.parametrize(
    ("key", "context", "field", "fragments"),
    [
        (
            "alias/x",
            {"k" * 129: "v"},
            CTX_FIELD,
            ["encryptionContext key 'kkkk", "129 characters", "1-128"],
        ),
        ("alias/x", {"": "v"}, CTX_FIELD, ["encryptionContext has an empty key", "1-128"]),
        ("alias/x", {"team": ""}, CTX_FIELD, ["value for key 'team' is empty", "1-384"]),
        (
            "alias/x",
            {"team": "v" * 385},
            CTX_FIELD,
            ["value for key 'team' is 385 characters", "1-384"],
        ),
        (
            "alias/x",
            {f"k{i}": "v" for i in range(9)},
            CTX_FIELD,
            ["has 9 pairs", "at most 8", "remove 1"],
        ),
        (
            "alias/x",
            {"team": 7},
            CTX_FIELD,
            ["value for key 'team' has type int", "must be strings"],
        ),
        (
            "alias/x",
            {7: "v"},
            CTX_FIELD,
            ["encryptionContext key '7' has type int", "must be strings"],
        ),
        ("alias/x", ["team=risk"], CTX_FIELD, ["encryptionContext must be a map", "not list"]),
        (
            KEY_ARN.replace("key/", "key/" + "a" * 2048),
            {},
            "diskEncryptionConfiguration.encryptionKeyArn",
            ["encryptionKeyArn is 2123 characters", "20-2048"],
        ),
        (
            "emr-analytics",
            {},
            "key",
            ["key 'emr-analytics' is not a KMS key reference", "alias/NAME"],
        ),
        ("", {}, "key", ["key '' is not a KMS key reference"]),
    ],
)
def test_invalid_configs_name_the_field_and_what_to_change(
    key: str, context: object, field: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        DiskEncryption(key, context)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert "\n" not in str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_value_is_never_echoed_in_a_validation_error() -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        DiskEncryption(KEY_ARN, {"token": "s3cr3t" * 70})
    assert "s3cr3t" not in str(caught.value)


def test_several_problems_are_counted_in_one_line() -> None:
    with pytest.raises(InvalidEncryptionConfig, match=r"\(and 2 more problems\)$"):
        DiskEncryption(KEY_ARN, {"": "", "ok": ""})


def test_alias_keys_are_allowed_until_something_needs_the_arn() -> None:
    disk = DiskEncryption("alias/emr-analytics", CONTEXT)
    assert disk.needs_resolution
    assert disk.key_ref.kind == "alias_name"
    for render in (disk.to_api, disk.to_livy_conf, disk.to_runtime_configuration):
        with pytest.raises(UserError, match="resolve it to a key ARN with kms:DescribeKey first"):
            render()


def test_with_key_arn_keeps_the_context_and_drops_the_need_to_resolve() -> None:
    resolved = DiskEncryption(ALIAS_ARN, CONTEXT).with_key_arn(KEY_ARN)
    assert resolved == DiskEncryption(KEY_ARN, CONTEXT)
    assert not resolved.needs_resolution
    assert resolved.key_arn == KEY_ARN


@pytest.mark.parametrize(
    ("key", "arn", "message"),
    [
        ("alias/x", ALIAS_ARN, "is not a key ARN"),
        (ALIAS_ARN, OTHER_ACCOUNT_ARN, "its account differs"),
        ("0000aaaa-12ab-34cd-56ef-1234567890ab", KEY_ARN, "its key id differs"),
    ],
)
def test_with_key_arn_refuses_an_arn_that_cannot_be_what_was_typed(
    key: str, arn: str, message: str
) -> None:
    with pytest.raises(InvalidEncryptionConfig, match=message):
        DiskEncryption(key).with_key_arn(arn)


# Input forms ----------------------------------------------------------------------------


EXPECTED = DiskEncryption("alias/emr-analytics", {"project": "churn", "team": "risk"})


@pytest.mark.parametrize(
    "value",
    [
        EXPECTED,
        {"key": "alias/emr-analytics", "context": {"project": "churn", "team": "risk"}},
        {"key": "alias/emr-analytics", "context": ["project=churn", "team=risk"]},
        {"key": "alias/emr-analytics", "context": "project=churn team=risk"},
        '["key=alias/emr-analytics", "project=churn", "team=risk"]',
        {"encryptionKeyArn": "alias/emr-analytics", "encryptionContext": CONTEXT},
        json.dumps({"key": "alias/emr-analytics", "context": CONTEXT}),
        json.dumps({"encryptionKeyArn": "alias/emr-analytics", "encryptionContext": CONTEXT}),
        "key=alias/emr-analytics project=churn team=risk",
        "  project=churn key=alias/emr-analytics   team=risk ",
        "alias/emr-analytics project=churn team=risk",
        ["key=alias/emr-analytics", "project=churn", "team=risk"],
        ("project=churn", "team=risk", "key=alias/emr-analytics"),
    ],
)
def test_every_input_form_parses_to_the_same_config(value: object) -> None:
    assert DiskEncryption.parse(value) == EXPECTED  # type: ignore[arg-type]


def test_quoted_values_may_contain_spaces_and_equals_signs() -> None:
    disk = DiskEncryption.parse("key=alias/x purpose='churn model v2' filter=\"a=b\"")
    assert dict(disk.context) == {"purpose": "churn model v2", "filter": "a=b"}


def test_a_key_without_context_parses_from_api_shape() -> None:
    assert DiskEncryption.parse({"encryptionKeyArn": KEY_ARN}).context == {}
    assert DiskEncryption.parse({"encryptionKeyArn": KEY_ARN, "encryptionContext": None}) == (
        DiskEncryption(KEY_ARN)
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({}, "has no key"),
        ({"context": CONTEXT}, "has no key"),
        ({"encryptionKeyARN": KEY_ARN}, "has unknown field 'encryptionKeyARN'"),
        ({"key": KEY_ARN, "encryptionContext": {}}, "mixes the two shapes"),
        ('{"key": "alias/x",', "is not valid JSON"),
        ("[1, 2]", "no key given"),
        ("7", "key '7' is not a KMS key reference"),
        ('{"key": "alias/x"} extra', "is not valid JSON"),
        ("key=alias/x team='risk", "No closing quotation"),
        ("team=risk", "no key given; add key=alias/NAME"),
        ("key=alias/x key=alias/y", "key= is given twice"),
        ("key=alias/x team", "encryptionContext item 'team' has no '='"),
        ("key=alias/x =risk", "has an empty key"),
        ("key=alias/x team=risk team=ops", "encryptionContext key 'team' is given twice"),
        (["key=alias/x", 3], "encryptionContext item '3' has type int"),
        (42, "cannot read a disk encryption configuration from int"),
    ],
)
def test_unreadable_input_gets_one_line_saying_what_to_change(value: object, fragment: str) -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        DiskEncryption.parse(value)  # type: ignore[arg-type]
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (None, {}),
        ({"a": "1"}, {"a": "1"}),
        (["a=1", "b=x=y"], {"a": "1", "b": "x=y"}),
        ("a=1 'b=two words'", {"a": "1", "b": "two words"}),
        (iter(["a=1"]), {"a": "1"}),
    ],
)
def test_from_parts_reads_each_context_form(context: object, expected: dict[str, str]) -> None:
    disk = DiskEncryption.from_parts(f"  {KEY_ARN} ", context)  # type: ignore[arg-type]
    assert disk.key == KEY_ARN
    assert dict(disk.context) == expected


# Renderings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        lambda: DiskEncryption.from_parts(KEY_ARN, {"applicationId": "00other"}),
        lambda: DiskEncryption.from_parts("alias/x", ["team=risk", "applicationId=00other"]),
        lambda: DiskEncryption.parse("key=alias/x applicationId=00other"),
        lambda: DiskEncryption.parse('{"key": "alias/x", "context": {"applicationId": "00other"}}'),
    ],
)
def test_the_context_key_the_service_owns_is_refused_in_every_input_form(given) -> None:
    with pytest.raises(InvalidEncryptionConfig) as refused:
        given()
    message = str(refused.value)
    assert message.startswith(
        "encryption context key applicationId belongs to EMR Serverless, which sets it to the "
        "application id in every KMS call; remove that pair"
    )
    assert "\n" not in message and "00other" not in message


def test_to_api_omits_an_empty_context() -> None:
    assert DiskEncryption(KEY_ARN).to_api() == {"encryptionKeyArn": KEY_ARN}
    assert DiskEncryption(KEY_ARN, CONTEXT).to_api() == {
        "encryptionKeyArn": KEY_ARN,
        "encryptionContext": CONTEXT,
    }


def test_livy_conf_uses_the_documented_properties_and_round_trips() -> None:
    disk = DiskEncryption(KEY_ARN, CONTEXT)
    conf = disk.to_livy_conf()
    assert conf == {LIVY_KEY_ARN: KEY_ARN, LIVY_CONTEXT: "project:churn,team:risk"}
    assert DiskEncryption.from_livy_conf({**conf, "spark.executor.cores": "4"}) == disk
    assert DiskEncryption(KEY_ARN).to_livy_conf() == {LIVY_KEY_ARN: KEY_ARN}


def test_runtime_configuration_is_a_spark_defaults_classification() -> None:
    assert DiskEncryption(KEY_ARN, CONTEXT).to_runtime_configuration() == {
        "classification": "spark-defaults",
        "properties": {LIVY_KEY_ARN: KEY_ARN, LIVY_CONTEXT: "project:churn,team:risk"},
    }


@pytest.mark.parametrize(
    ("context", "fragment"),
    [
        ({"url": "http:x"}, "pair 'url' cannot go to Livy: its value contains ':'"),
        ({"teams": "risk,ops"}, "pair 'teams' cannot go to Livy: its value contains ','"),
        ({"a:b": "c"}, "pair 'a:b' cannot go to Livy: its key contains ':'"),
    ],
)
def test_livy_refuses_pairs_the_k_v_form_cannot_carry(
    context: dict[str, str], fragment: str
) -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        DiskEncryption(KEY_ARN, context).to_livy_conf()
    assert fragment in str(caught.value)
    assert "ambiguous in the k1:v1,k2:v2 form" in str(caught.value)


def test_livy_conf_without_encryption_properties_is_none() -> None:
    assert DiskEncryption.from_livy_conf({"spark.executor.cores": "4"}) is None


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [
        ({LIVY_CONTEXT: "a:b"}, f"{LIVY_CONTEXT} is set without {LIVY_KEY_ARN}"),
        ({LIVY_KEY_ARN: ALIAS_ARN}, f"{LIVY_KEY_ARN}: encryptionKeyArn"),
        ({LIVY_KEY_ARN: KEY_ARN, LIVY_CONTEXT: "a:b,c"}, "item 'c' has no ':'"),
        ({LIVY_KEY_ARN: KEY_ARN, LIVY_CONTEXT: "a:b,a:c"}, "key 'a' is given twice"),
        ({LIVY_KEY_ARN: KEY_ARN, LIVY_CONTEXT: "a:"}, f"{LIVY_CONTEXT}: encryptionContext value"),
        ({LIVY_KEY_ARN: KEY_ARN, LIVY_CONTEXT: 3}, f"{LIVY_CONTEXT} has type int"),
    ],
)
def test_bad_livy_conf_names_the_property(conf: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        DiskEncryption.from_livy_conf(conf)
    assert fragment in str(caught.value)


def test_to_dict_is_the_friendly_shape_parse_reads_back() -> None:
    disk = DiskEncryption("alias/emr-analytics", CONTEXT)
    assert disk.to_dict() == {"key": "alias/emr-analytics", "context": CONTEXT}
    assert DiskEncryption.parse(json.dumps(disk.to_dict())) == disk


def test_repr_and_str_show_keys_but_never_values() -> None:
    disk = DiskEncryption(KEY_ARN, {"project": "churn", "owner": "alice@example.com"})
    for text in (repr(disk), str(disk)):
        assert KEY_ARN in text
        assert "project" in text and "owner" in text
        assert "churn" not in text and "alice" not in text
    assert repr(DiskEncryption("alias/x")) == "DiskEncryption(key='alias/x')"
    assert str(DiskEncryption("alias/x")) == "alias/x (no encryption context)"


# encryption_config_problems: the rules the local service emulator shares -----------------------


def test_an_empty_config_is_valid_because_it_unsets_encryption() -> None:
    assert encryption_config_problems({}) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"encryptionKeyArn": KEY_ARN, "encryptionContext": CONTEXT}, []),
        (
            {"encryptionKeyArn": ALIAS_ARN},
            [("diskEncryptionConfiguration.encryptionKeyArn", "is not a KMS key ARN")],
        ),
        (
            {"encryptionKeyArn": "arn:aws:kms"},
            [
                (
                    "diskEncryptionConfiguration.encryptionKeyArn",
                    "11 characters; a key ARN is 20-2048",
                )
            ],
        ),
        (
            {"encryptionKeyArn": 5},
            [("diskEncryptionConfiguration.encryptionKeyArn", "has type int")],
        ),
        ({"encryptionContext": "a:b"}, [(CTX_FIELD, "must be a map")]),
        (
            {"encryptionContext": {"": "", "b": "x" * 400}},
            [
                (CTX_FIELD, "empty key"),
                (CTX_FIELD, "value for key '' is empty"),
                (CTX_FIELD, "400"),
            ],
        ),
        (
            {"kmsKeyArn": KEY_ARN},
            [("diskEncryptionConfiguration.kmsKeyArn", "no field 'kmsKeyArn'")],
        ),
        ("arn", [("diskEncryptionConfiguration", "must be an object")]),
    ],
)
def test_problems_list_every_field_the_service_would_refuse(
    config: object, expected: list[tuple[str, str]]
) -> None:
    problems = encryption_config_problems(config)  # type: ignore[arg-type]
    assert [p.field for p in problems] == [field for field, _ in expected]
    for problem, (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message


def test_problems_use_the_callers_path() -> None:
    problems = encryption_config_problems(
        {"encryptionKeyArn": ALIAS_ARN}, path="configurationOverrides.diskEncryptionConfiguration"
    )
    assert problems == [
        Problem(
            "configurationOverrides.diskEncryptionConfiguration.encryptionKeyArn",
            problems[0].message,
        )
    ]


# Secret warnings ------------------------------------------------------------------------

FAKE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("context", "flagged", "reason"),
    [
        ({"db_password": "hunter2"}, "db_password", "name suggests"),
        ({"apiKey": "k9Fq2"}, "apiKey", "name suggests"),
        ({"client-secret": "Zx81q"}, "client-secret", "name suggests"),
        ({"owner": "AKIAIOSFODNN7EXAMPLE"}, "owner", "AWS access key id"),
        ({"owner": "ASIAIOSFODNN7EXAMPLE"}, "owner", "AWS access key id"),
        ({"note": FAKE_SECRET_KEY}, "note", "AWS secret access key"),
        ({"note": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig"}, "note", "JSON web token"),
        ({"note": "-----BEGIN PRIVATE KEY-----"}, "note", "PEM"),
        ({"source": "postgres://admin:pa55@db.internal/x"}, "source", "URL with a password"),
        ({"note": "ghp_" + "a1B2c3D4e5" * 4}, "note", "API token"),
        ({"note": "Zq8xK2mP9vL4nR7tW1yB6cD3"}, "note", "random secret"),
    ],
)
def test_secret_looking_pairs_warn_by_key_without_the_value(
    context: dict[str, str], flagged: str, reason: str
) -> None:
    disk = DiskEncryption(KEY_ARN, {"project": "churn", **context})
    found = disk.secret_warnings()
    assert len(found) == 1
    assert f"key '{flagged}'" in found[0]
    assert reason in found[0]
    assert "CloudTrail" in found[0]
    for value in context.values():
        assert value not in found[0]


def test_a_key_that_is_itself_a_secret_is_named_by_position() -> None:
    found = DiskEncryption(KEY_ARN, {"team": "risk", "AKIAIOSFODNN7EXAMPLE": "x"}).secret_warnings()
    assert found == [
        "encryptionContext pair 2: its key looks like an AWS access key id; the encryption "
        "context is logged in plaintext in CloudTrail, so keep secrets out of it"
    ]


@pytest.mark.parametrize(
    "context",
    [
        {"project": "churn", "team": "risk", "env": "prod", "cost-center": "1234"},
        {"workload_id": "9b2f8c1e-4d3a-4f6b-8e7d-2a1c0b9d8e7f"},
        {"workload": "84934951-8359-4788-BDC6-59A47671244E"},
        {"commit": "11f6ad8ec52a2984abaafd7c3b516503785c2072"},
        {"role": "arn:aws:iam::111122223333:role/EMRServerlessExecutionRole2024"},
        {"input": "s3://my-bucket/Data2024/Raw/part-0001"},
        {"run": "ProjectAlphaV2Run17Stage3Final", "stack": "MyApp-Prod-EU-West-1-Stack"},
        {"purpose": "Customer Churn Model v2 (Q3 2024)", "tokenizer": "bert-base"},
        {"started": "2024-05-01T12:00:00Z", "release": "emr-7.13.0"},
    ],
)
def test_plain_workload_labels_do_not_warn(context: dict[str, str]) -> None:
    assert DiskEncryption(KEY_ARN, context).secret_warnings() == []


def test_warn_if_secret_issues_python_warnings() -> None:
    disk = DiskEncryption(KEY_ARN, {"api_token": "x", "team": "risk"})
    with pytest.warns(SecretInContextWarning, match="key 'api_token'") as record:
        returned = disk.warn_if_secret()
    assert len(record) == 1
    assert returned == [str(record[0].message)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DiskEncryption(KEY_ARN, CONTEXT).warn_if_secret() == []


# Properties over random contexts --------------------------------------------------------

context_keys = st.text(min_size=1, max_size=128)
context_values = st.text(min_size=1, max_size=384)
valid_contexts = st.dictionaries(context_keys, context_values, max_size=8)


@settings(max_examples=60, deadline=None)
@given(valid_contexts)
def test_every_valid_context_constructs_and_renders_unchanged(context: dict[str, str]) -> None:
    disk = DiskEncryption(KEY_ARN, context)
    api = disk.to_api()
    assert api.get("encryptionContext", {}) == context
    assert list(api.get("encryptionContext", {})) == list(context)
    assert encryption_config_problems(api) == []
    assert DiskEncryption.parse(api) == disk
    assert DiskEncryption.parse(json.dumps(api)) == disk


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(exclude_characters=":,"), min_size=1, max_size=128),
        st.text(st.characters(exclude_characters=":,"), min_size=1, max_size=384),
        max_size=8,
    )
)
def test_every_livy_safe_context_round_trips_through_livy_conf(context: dict[str, str]) -> None:
    disk = DiskEncryption(KEY_ARN, context)
    assert DiskEncryption.from_livy_conf(disk.to_livy_conf()) == disk


plain_keys = context_keys.filter(lambda k: "=" not in k and k != "key")


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(plain_keys, context_values, max_size=8))
def test_every_valid_context_round_trips_through_k_v_items(context: dict[str, str]) -> None:
    items = [f"{k}={v}" for k, v in context.items()]
    expected = DiskEncryption("alias/emr-analytics", context)
    text = " ".join(shlex.quote(item) for item in ["key=alias/emr-analytics", *items])
    assert DiskEncryption.parse(text) == expected
    assert DiskEncryption.parse(["key=alias/emr-analytics", *items]) == expected
    assert DiskEncryption.from_parts("alias/emr-analytics", items) == expected


invalid_contexts = st.one_of(
    st.dictionaries(context_keys, context_values, min_size=9, max_size=12),
    st.builds(
        lambda c, v: {**c, "": v},
        st.dictionaries(context_keys, context_values, max_size=7),
        context_values,
    ),
    st.builds(
        lambda c, k, v: {**c, k: v},
        st.dictionaries(context_keys, context_values, max_size=7),
        st.text(min_size=129, max_size=200),
        context_values,
    ),
    st.builds(
        lambda c, k: {**c, k: ""},
        st.dictionaries(context_keys, context_values, max_size=7),
        context_keys,
    ),
    st.builds(
        lambda c, k, v: {**c, k: v},
        st.dictionaries(context_keys, context_values, max_size=7),
        context_keys,
        st.text(min_size=385, max_size=420),
    ),
)


@settings(max_examples=60, deadline=None)
@given(invalid_contexts)
def test_every_invalid_context_is_refused_naming_the_field(context: dict[str, str]) -> None:
    with pytest.raises(InvalidEncryptionConfig) as caught:
        DiskEncryption(KEY_ARN, context)
    assert caught.value.field == CTX_FIELD
    assert str(caught.value).startswith("encryptionContext ")
    assert encryption_config_problems({"encryptionContext": context})
