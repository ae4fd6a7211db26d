"""The local backend enforces key policies, identity policies and grants on every KMS call."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT

pytestmark = pytest.mark.integration
ROOT = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:root"
SYMMETRIC = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: dict | str, action: str = "kms:*", **extra) -> dict:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", **extra}


def denied(call) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    return str(exc.value)


@pytest.fixture
def session_role(backend):
    """An assumed-role session of a new role allowed only kms:Encrypt; (kms client, role ARN)."""
    iam = backend.client("iam")
    name = f"seam-{uuid.uuid4().hex[:8]}"
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    only_encrypt = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(only_encrypt))
    creds = backend.client("sts").assume_role(RoleArn=arn, RoleSessionName="seam-test")[
        "Credentials"
    ]
    kms = boto3.client(
        "kms",
        endpoint_url=backend.endpoint,
        region_name=backend.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return kms, arn


def test_identity_policy_counts_only_when_the_key_policy_allows_the_root(backend):
    kms = backend.client("kms")
    service_only = policy(allow({"Service": "emr-serverless.amazonaws.com"}))
    key = kms.create_key(Policy=service_only, **SYMMETRIC)["KeyMetadata"]["Arn"]
    # The analyst's own policy allows kms:*, but the key policy does not let IAM policies count.
    message = denied(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"))
    assert "no resource-based policy allows the kms:Encrypt action" in message


def test_explicit_deny_with_a_matching_condition_refuses(backend):
    kms = backend.client("kms")
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": ROOT},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:stage": "prod"}},
    }
    key = kms.create_key(Policy=policy(allow({"AWS": ROOT}), deny), **SYMMETRIC)["KeyMetadata"][
        "Arn"
    ]
    assert kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"stage": "dev"})
    message = denied(
        lambda: kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"stage": "prod"})
    )
    assert "explicit deny" in message


def test_assumed_role_session_is_held_to_its_role_policy(backend, session_role):
    role_kms, _ = session_role
    assert role_kms.encrypt(KeyId="alias/emr-no-service-grant", Plaintext=b"x")["CiphertextBlob"]
    denied(
        lambda: role_kms.generate_data_key(KeyId="alias/emr-no-service-grant", KeySpec="AES_256")
    )


def test_a_grant_lets_the_role_do_what_its_policies_do_not(backend, session_role):
    role_kms, role_arn = session_role
    kms = backend.client("kms")
    key = kms.create_key(**SYMMETRIC)["KeyMetadata"]["Arn"]
    denied(lambda: role_kms.generate_data_key(KeyId=key, KeySpec="AES_256"))
    kms.create_grant(KeyId=key, GranteePrincipal=role_arn, Operations=["GenerateDataKey"])
    assert role_kms.generate_data_key(KeyId=key, KeySpec="AES_256")["KeyId"] == key
