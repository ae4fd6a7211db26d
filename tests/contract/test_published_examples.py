"""AWS's published disk-encryption examples against the parser, the policy engine and the backend.

The fixtures are copied verbatim from the EMR Serverless User Guide (see fixtures/README.md).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from emr_cmk_notebook.core.policy import Request, evaluate
from emr_cmk_notebook.core.policy_conditions import InvalidPolicy
from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from emr_cmk_notebook.usage.frame import parse_records
from tests.conftest import demo_app_id, key_arn, wait_for_job

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_KEY = "arn:aws:kms:region:accountId:key/ffffffff-fffff-aaaaa-eeee-sample"
# Concrete values for the placeholders of the policy examples, so ARNs parse.
REGION, ACCOUNT, APP_ID = "us-west-2", "111122223333", "00f1abcdexample"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
USER = f"arn:aws:iam::{ACCOUNT}:user/user-name"
SERVICE = "emr-serverless.amazonaws.com"


def sample(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def placeholders_filled(text: str) -> str:
    return (
        text.replace("aws-account-id", ACCOUNT)
        .replace("application-id", APP_ID)
        .replace("emr-serverless:region:", f"emr-serverless:{REGION}:")
        .replace("emr-serverless.region.", f"emr-serverless.{REGION}.")
        .replace('"key-arn"', json.dumps(KEY))
    )


def filled(name: str) -> dict[str, Any]:
    return json.loads(placeholders_filled((FIXTURES / name).read_text()))


def document(*statements: str) -> dict[str, Any]:
    joined = ",".join(placeholders_filled(s) for s in statements)
    return json.loads(f'{{"Version": "2012-10-17", "Statement": [{joined}]}}')


# --- the CloudTrail parser -----------------------------------------------------------------------


def test_the_published_records_parse_to_the_usage_columns() -> None:
    records = [
        sample("disk-encryption-generatedatakey-event.json"),
        sample("disk-encryption-decrypt-event.json"),
    ]
    usage = parse_records({"Records": records})
    assert usage.skipped_malformed == 0 and usage.skipped_non_kms == 0
    frame = usage.to_frame()
    assert list(frame["event_name"]) == ["GenerateDataKey", "Decrypt"]
    first = frame.iloc[0]
    assert first["event_time"] == pd.Timestamp("2025-07-28T21:43:51Z")
    assert first["event_id"] == "0b0fef09-f28d-4da8-a5a1-17b74sample"
    assert first["key_arn"] == SAMPLE_KEY
    assert first["aws_region"] == "us-west-2"
    assert first["identity_type"] == "AWSService"
    assert first["invoked_by"] == "AWS Internal"
    assert pd.isna(first["principal_arn"])
    assert first["application_id"] == "test"
    assert first["encryption_context"] == {"applicationId": "test"}
    assert first["recipient_account_id"] == "accountId"
    assert pd.isna(first["error_code"])


# --- the policy engine ---------------------------------------------------------------------------


def service_call(action: str, **context: str) -> Request:
    return Request(principal=SERVICE, action=action, resource=KEY, context=context)


SERVICE_CONTEXT = {
    "aws:SourceArn": f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{APP_ID}",
    "aws:SourceAccount": ACCOUNT,
}


@pytest.mark.parametrize("action", ["kms:GenerateDataKey", "kms:Decrypt"])
def test_the_example_key_policy_lets_the_service_use_the_key_with_the_documented_context(
    action: str,
) -> None:
    policy = document((FIXTURES / "disk-encryption-service-key-policy-statement.json").read_text())
    context = {**SERVICE_CONTEXT, "kms:EncryptionContext:applicationId": APP_ID}
    assert evaluate(service_call(action, **context), policy).decision == "allow"
    assert evaluate(service_call(action, **SERVICE_CONTEXT), policy).decision == "implicit_deny"
    third_party = {
        **SERVICE_CONTEXT,
        "kms:EncryptionContext:aws:emr-serverless:application-id": APP_ID,
    }
    assert evaluate(service_call(action, **third_party), policy).decision == "implicit_deny"
    other_app = {**context, "aws:SourceArn": SERVICE_CONTEXT["aws:SourceArn"] + "x"}
    assert evaluate(service_call(action, **other_app), policy).decision == "implicit_deny"


def test_the_example_user_key_policy_allows_describe_key_directly_and_data_keys_via_the_service():
    policy = document((FIXTURES / "disk-encryption-user-key-policy-statements.txt").read_text())
    via = {"kms:ViaService": f"emr-serverless.{REGION}.amazonaws.com"}
    user = lambda action, **ctx: Request(USER, action, KEY, ctx)  # noqa: E731
    assert evaluate(user("kms:DescribeKey"), policy).decision == "allow"
    data_key = user("kms:GenerateDataKey", **via, **{"kms:EncryptionContext:key": "value"})
    assert evaluate(data_key, policy).decision == "allow"
    direct = user("kms:GenerateDataKey", **{"kms:EncryptionContext:key": "value"})
    assert evaluate(direct, policy).decision == "implicit_deny"


def test_the_example_identity_policies_count_only_with_the_accounts_root_in_the_key_policy():
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    service_only = document(
        (FIXTURES / "disk-encryption-service-key-policy-statement.json").read_text()
    )
    with_root = document(json.dumps(root))
    role = f"arn:aws:iam::{ACCOUNT}:role/job-runtime-role"
    runtime = filled("disk-encryption-runtime-role-policy.json")
    # As published, the runtime role policy has a top-level "Sid", which IAM's grammar does not
    # have: the engine says so instead of guessing; its Statement is what the page means.
    with pytest.raises(InvalidPolicy, match="Sid"):
        evaluate(Request(role, "kms:Decrypt", KEY), with_root, [runtime])
    runtime = {"Version": runtime["Version"], "Statement": runtime["Statement"]}
    user_policy = filled("disk-encryption-user-iam-policy.json")
    for principal, identity, action in (
        (role, runtime, "kms:Decrypt"),
        (role, runtime, "kms:GenerateDataKey"),
        (USER, user_policy, "kms:DescribeKey"),
    ):
        call = Request(principal, action, KEY)
        assert evaluate(call, with_root, [identity]).decision == "allow"
        assert evaluate(call, service_only, [identity]).decision == "implicit_deny"


# --- the backend's own records -------------------------------------------------------------------

ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"


@pytest.fixture(scope="module")
def service_records(backend: Any, job_script: str) -> dict[str, dict[str, Any]]:
    """The GenerateDataKey and Decrypt records of the emulated service's disk-key calls."""
    status = backend.status()
    key, app_id = key_arn(status, "alias/emr-analytics"), demo_app_id(status)
    emr = backend.client("emr-serverless")
    marker = uuid.uuid4().hex
    run_id = emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": {"entryPoint": job_script}},
        configurationOverrides={
            "diskEncryptionConfiguration": {
                "encryptionKeyArn": key,
                "encryptionContext": {"contract": marker},
            }
        },
    )["jobRunId"]
    assert wait_for_job(emr, app_id, run_id)["state"] == "SUCCESS"
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    while len(found) < 2 and time.monotonic() < deadline:
        events = backend.client("cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}]
        )["Events"]
        for event in events:
            record = json.loads(event["CloudTrailEvent"])
            context = record["requestParameters"].get("encryptionContext") or {}
            if record["userIdentity"]["type"] == "AWSService" and context.get("contract") == marker:
                found.setdefault(record["eventName"], record)
        time.sleep(0.2)
    return found


def shape_of(record: dict[str, Any]) -> dict[str, Any]:
    """The field names of a record, and of its nested objects, without the values."""
    return {
        name: shape_of(value) if isinstance(value, dict) else None
        for name, value in record.items()
        if name not in ("requestParameters", "resources")
    }


@pytest.mark.parametrize("event", ["GenerateDataKey", "Decrypt"])
def test_the_backends_service_records_have_the_published_fields(
    service_records: dict[str, dict[str, Any]], event: str
) -> None:
    published = sample(f"disk-encryption-{event.lower()}-event.json")
    record = service_records[event]
    assert shape_of(record) == shape_of(published)
    assert record["eventVersion"] == published["eventVersion"]
    assert [set(r) for r in record["resources"]] == [set(r) for r in published["resources"]]
    assert {"encryptionContext", "keyId"} <= set(record["requestParameters"])
    assert record["requestParameters"]["keyId"] == record["resources"][0]["ARN"]
    assert re.fullmatch(r"[0-9a-f]{64}", record["additionalEventData"]["keyMaterialId"])


def test_the_backends_generate_data_key_record_asks_for_what_the_sample_asks_for(
    service_records: dict[str, dict[str, Any]],
) -> None:
    published = sample("disk-encryption-generatedatakey-event.json")
    record = service_records["GenerateDataKey"]
    assert set(record["requestParameters"]) == set(published["requestParameters"])
    assert record["requestParameters"]["keySpec"] == "AES_256"
    assert record["readOnly"] is True and record["eventType"] == "AwsApiCall"
