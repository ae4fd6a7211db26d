"""The conf this tool owns survives any user conf, and a conflicting user conf is refused."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.conf import EXECUTION_ROLE, check_role, enforce, mandatory_conf

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
MANDATORY = mandatory_conf(ROLE, DiskEncryption(KEY, {"project": "churn", "team": "risk"}))


def test_mandatory_conf_carries_role_key_and_context_in_livy_form():
    assert MANDATORY == {
        EXECUTION_ROLE: ROLE,
        LIVY_KEY_ARN: KEY,
        LIVY_CONTEXT: "project:churn,team:risk",
    }


def test_user_conf_is_merged_and_a_replaced_conf_cannot_drop_the_key():
    body = {"kind": "pyspark", "conf": {"spark.executor.memory": "4g"}, "driverMemory": "2g"}
    sent = enforce(body, MANDATORY)
    assert sent["conf"] == {"spark.executor.memory": "4g", **MANDATORY}
    assert sent["driverMemory"] == "2g"
    # A %%configure-style body with no conf at all still gets it.
    assert enforce({"kind": "pyspark"}, MANDATORY)["conf"] == MANDATORY
    assert body["conf"] == {"spark.executor.memory": "4g"}, "the caller's body is not changed"


@pytest.mark.parametrize(
    ("name", "value", "flag"),
    [
        (LIVY_KEY_ARN, KEY.replace("1234abcd", "99999999"), "--key"),
        (LIVY_CONTEXT, "project:other", "--context"),
        (EXECUTION_ROLE, ROLE + "2", "--role"),
    ],
)
def test_a_user_conf_that_changes_an_owned_property_is_refused_in_one_line(name, value, flag):
    with pytest.raises(UserError) as refused:
        enforce({"conf": {name: value}}, MANDATORY)
    message = str(refused.value)
    assert name in message and flag in message and "\n" not in message


def test_the_same_value_is_accepted():
    assert enforce({"conf": {LIVY_KEY_ARN: KEY}}, MANDATORY)["conf"][LIVY_KEY_ARN] == KEY


def test_a_key_in_user_conf_is_refused_when_the_session_uses_the_application_key():
    with pytest.raises(UserError, match="is not set for this session"):
        enforce({"conf": {LIVY_KEY_ARN: KEY}}, mandatory_conf(ROLE, None))


@pytest.mark.parametrize("bad", [None, "", "emr-session-role", "arn:aws:iam::1234:role/x"])
def test_a_missing_or_malformed_role_says_what_to_give(bad):
    with pytest.raises(UserError, match="role"):
        check_role(bad)
