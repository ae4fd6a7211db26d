"""KMS on the local backend, through boto3 over loopback: what moto alone gets wrong."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT, SECURITY_ACCOUNT
from tests.conftest import key_arn

pytestmark = pytest.mark.integration


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_ready_key_makes_data_keys_that_decrypt(backend):
    kms = backend.client("kms")
    made = kms.generate_data_key(
        KeyId="alias/emr-analytics", KeySpec="AES_256", EncryptionContext={"project": "churn"}
    )
    back = kms.decrypt(
        CiphertextBlob=made["CiphertextBlob"], EncryptionContext={"project": "churn"}
    )
    assert back["Plaintext"] == made["Plaintext"]
    assert back["KeyId"] == made["KeyId"]


def test_disabled_key_refuses_data_keys(backend, demo):
    kms = backend.client("kms")
    with pytest.raises(ClientError) as exc:
        kms.generate_data_key(KeyId="alias/emr-disabled", KeySpec="AES_256")
    assert error_code(exc) == "DisabledException"
    assert key_arn(demo, "alias/emr-disabled") in str(exc.value)


def test_asymmetric_key_refuses_data_keys(backend):
    with pytest.raises(ClientError) as exc:
        backend.client("kms").generate_data_key(KeyId="alias/emr-asymmetric", KeySpec="AES_256")
    assert error_code(exc) == "InvalidKeyUsageException"


def test_key_pending_deletion_is_in_invalid_state(backend):
    kms = backend.client("kms")
    key_id = kms.create_key(Description="to be deleted")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(exc) == "KMSInvalidStateException"
    assert "pending deletion" in str(exc.value)


def test_describe_key_still_works_on_a_disabled_key(backend):
    meta = backend.client("kms").describe_key(KeyId="alias/emr-disabled")["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"


def test_key_from_another_account_is_usable_by_its_arn(backend, demo):
    shared = demo["shared_key_arn"]
    assert f":{SECURITY_ACCOUNT}:" in shared
    kms = backend.client("kms", account=ANALYTICS_ACCOUNT)
    made = kms.generate_data_key(KeyId=shared, KeySpec="AES_256")
    assert made["KeyId"] == shared
    assert kms.decrypt(CiphertextBlob=made["CiphertextBlob"])["Plaintext"] == made["Plaintext"]


def test_alias_names_do_not_reach_into_another_account(backend):
    with pytest.raises(ClientError) as exc:
        backend.client("kms", account=ANALYTICS_ACCOUNT).describe_key(KeyId="alias/emr-shared")
    assert error_code(exc) == "NotFoundException"


def test_accounts_see_only_their_own_keys(backend, demo):
    analytics = {k["KeyArn"] for k in backend.client("kms").list_keys()["Keys"]}
    security = {
        k["KeyArn"] for k in backend.client("kms", account=SECURITY_ACCOUNT).list_keys()["Keys"]
    }
    assert demo["shared_key_arn"] in security
    assert demo["shared_key_arn"] not in analytics
    assert key_arn(demo, "alias/emr-analytics") in analytics


def test_assume_role_into_the_security_account(backend):
    sts = backend.client("sts")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{SECURITY_ACCOUNT}:role/key-usage-auditor", RoleSessionName="audit"
    )["Credentials"]
    import boto3

    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    who = session.client("sts", endpoint_url=backend.endpoint).get_caller_identity()
    assert who["Account"] == SECURITY_ACCOUNT
    assert who["Arn"].endswith(":assumed-role/key-usage-auditor/audit")
    keys = session.client("kms", endpoint_url=backend.endpoint).list_keys()["Keys"]
    assert any(k["KeyArn"].startswith(f"arn:aws:kms:us-east-1:{SECURITY_ACCOUNT}:") for k in keys)


def test_unknown_credentials_are_refused(backend):
    import boto3

    kms = boto3.client(
        "kms",
        endpoint_url=backend.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAUNKNOWN000000000",
        aws_secret_access_key="nope",
    )
    with pytest.raises(ClientError) as exc:
        kms.list_keys()
    assert error_code(exc) == "UnrecognizedClientException"


def test_cryptographic_calls_log_the_key_material_they_used(backend):
    kms = backend.client("kms")
    marker = {"contract": uuid.uuid4().hex}
    made = kms.generate_data_key(
        KeyId="alias/emr-analytics", KeySpec="AES_256", EncryptionContext=marker
    )
    kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext=marker)
    with pytest.raises(ClientError):
        kms.generate_data_key(
            KeyId="alias/emr-disabled", KeySpec="AES_256", EncryptionContext=marker
        )
    events = backend.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    mine = [r for r in records if r["requestParameters"].get("encryptionContext") == marker]
    by_name = {(r["eventName"], r.get("errorCode")): r for r in mine}
    used = {
        by_name[(name, None)]["additionalEventData"]["keyMaterialId"]
        for name in ("GenerateDataKey", "Decrypt")
    }
    assert len(used) == 1 and len(used.pop()) == 64
    refused = by_name[("GenerateDataKey", "DisabledException")]
    assert "additionalEventData" not in refused
