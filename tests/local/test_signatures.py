"""Every AWS API of the local backend checks the SigV4 signature as AWS does, over real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import SECURITY_ACCOUNT

pytestmark = pytest.mark.integration
AWS_CLI = Path(sys.executable).parent / "aws"


def client(backend, service: str, *, secret: str | None = None, **kwargs):
    env = backend.env()
    return boto3.client(
        service,
        endpoint_url=backend.endpoint,
        region_name=backend.region,
        aws_access_key_id=kwargs.pop("key_id", env["AWS_ACCESS_KEY_ID"]),
        aws_secret_access_key=secret or env["AWS_SECRET_ACCESS_KEY"],
        **kwargs,
    )


def refusal(call) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return caught.value


CALLS = {
    "kms": lambda c: c.list_keys(),
    "cloudtrail": lambda c: c.lookup_events(MaxResults=1),
    "emr-serverless": lambda c: c.list_applications(),
    "sts": lambda c: c.get_caller_identity(),
    "iam": lambda c: c.list_roles(),
    "s3": lambda c: c.list_buckets(),
}
# The code each protocol answers a wrong signature with: JSON services (KMS, CloudTrail,
# EMR Serverless), the query protocol (IAM, STS: AWS "Common Errors") and S3.
WRONG_SECRET_CODES = {
    "kms": "InvalidSignatureException",
    "cloudtrail": "InvalidSignatureException",
    "emr-serverless": "InvalidSignatureException",
    "sts": "SignatureDoesNotMatch",
    "iam": "SignatureDoesNotMatch",
    "s3": "SignatureDoesNotMatch",
}


@pytest.mark.parametrize("service", sorted(CALLS))
def test_right_secret_is_accepted(backend, service):
    CALLS[service](client(backend, service))


@pytest.mark.parametrize("service", sorted(CALLS))
def test_wrong_secret_is_refused_with_the_protocols_code(backend, service):
    error = refusal(lambda: CALLS[service](client(backend, service, secret="not-the-secret")))
    assert error.response["Error"]["Code"] == WRONG_SECRET_CODES[service]
    assert backend.env()["AWS_SECRET_ACCESS_KEY"] not in str(error)


def test_unknown_access_key_is_refused_in_the_query_protocol(backend):
    sts = client(backend, "sts", key_id="AKIAUNKNOWN000000000", secret="nope")
    assert refusal(sts.get_caller_identity).response["Error"]["Code"] == "InvalidClientTokenId"


def test_s3_objects_presigned_urls_and_a_tampered_url(backend):
    s3 = client(backend, "s3")
    bucket = f"sig-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    key = "reports/a b+c.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"hello"

    presigner = client(backend, "s3", config=Config(signature_version="s3v4"))
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    assert "X-Amz-Signature=" in url
    assert requests.get(url, timeout=10).content == b"hello"

    tampered = url.replace("a%20b", "a%20c")
    answer = requests.get(tampered, timeout=10)
    assert answer.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in answer.text


def test_assumed_role_credentials_need_their_session_token(backend):
    creds = client(backend, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{SECURITY_ACCOUNT}:role/key-usage-auditor",
        RoleSessionName="signatures",
    )["Credentials"]

    def sts(token: str | None):
        return boto3.client(
            "sts",
            endpoint_url=backend.endpoint,
            region_name=backend.region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=token,
        )

    who = sts(creds["SessionToken"]).get_caller_identity()
    assert who["Arn"].endswith(":assumed-role/key-usage-auditor/signatures")
    for token in ("not-the-token", None):
        error = refusal(sts(token).get_caller_identity)
        assert error.response["Error"]["Code"] == "InvalidClientTokenId"
        assert creds["SessionToken"] not in str(error)


def test_aws_cli_signs_as_the_backend_expects(backend, tmp_path):
    env = {**os.environ, **backend.env()}
    bucket = f"cli-{uuid.uuid4().hex[:8]}"
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # over the CLI's 8 MiB multipart threshold

    def aws(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(AWS_CLI), *args], env={**env, **extra}, capture_output=True, text=True
        )

    assert aws("s3", "mb", f"s3://{bucket}").returncode == 0
    copied = aws("s3", "cp", str(big), f"s3://{bucket}/big.bin")
    assert copied.returncode == 0, copied.stderr
    listed = aws("s3", "ls", f"s3://{bucket}/")
    assert "big.bin" in listed.stdout
    wrong = aws("kms", "list-keys", AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert wrong.returncode != 0
    assert "InvalidSignatureException" in wrong.stderr
