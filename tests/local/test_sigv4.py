"""SigV4 checks on received requests: what botocore signs passes, anything altered is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.sigv4 import verify_request

KEY, SECRET = "AKIAEXAMPLE000000001", "example-secret-000000000000000000000001"
HOST = "127.0.0.1:8443"
BODY = json.dumps({"kind": "pyspark", "conf": {"spark.executor.memory": "1g"}}).encode()


def secret_for(access_key_id: str) -> str | None:
    return SECRET if access_key_id == KEY else None


def signed(
    url: str = f"http://{HOST}/livy/00app/sessions?from=0&size=5",
    body: bytes = BODY,
    *,
    secret: str = SECRET,
    service: str = "emr-serverless",
    signer: type = SigV4Auth,
    method: str = "POST",
) -> dict:
    """What the server receives for a request botocore signed."""
    request = AWSRequest(
        method=method, url=url, data=body, headers={"Content-Type": "application/json"}
    )
    signer(Credentials(KEY, secret), service, "us-east-1").add_auth(request)
    parts = urlsplit(request.url)
    return {
        "method": method,
        "path": parts.path,
        "query_string": parts.query,
        "headers": {**dict(request.headers), "Host": HOST},
        "body": body,
    }


def check(received: dict, **kwargs) -> object:
    kwargs.setdefault("service", "emr-serverless")
    return verify_request(**received, secret_for=secret_for, **kwargs)


def refusal(received: dict, **kwargs) -> AwsError:
    with pytest.raises(AwsError) as caught:
        check(received, **kwargs)
    assert caught.value.status == 403
    assert SECRET not in caught.value.message
    return caught.value


def test_botocore_signed_request_passes_and_names_the_signer():
    result = check(signed())
    assert (result.access_key_id, result.region, result.service) == (
        KEY,
        "us-east-1",
        "emr-serverless",
    )


def test_header_names_in_any_case_pass():
    received = signed()
    received["headers"] = {k.upper(): v for k, v in received["headers"].items()}
    assert check(received).access_key_id == KEY


def test_path_that_needs_encoding_passes_when_given_raw():
    assert check(signed(url=f"http://{HOST}/livy/00app/sessions/a%20b", method="GET", body=b""))


def test_unsigned_request_is_refused():
    received = signed()
    del received["headers"]["Authorization"]
    assert refusal(received).code == "MissingAuthenticationTokenException"


def test_wrong_secret_is_refused():
    err = refusal(signed(secret="not-the-secret"))
    assert err.code == "InvalidSignatureException"
    assert "signature" in err.message


def test_unknown_access_key_is_refused():
    received = signed()
    received["headers"]["Authorization"] = received["headers"]["Authorization"].replace(
        KEY, "AKIAUNKNOWN000000000"
    )
    assert refusal(received).code == "UnrecognizedClientException"


def test_tampered_body_is_refused():
    received = signed()
    received["body"] = BODY.replace(b"1g", b"9g")
    assert refusal(received).code == "InvalidSignatureException"


def test_tampered_query_is_refused():
    received = signed()
    received["query_string"] = "from=0&size=500"
    assert refusal(received).code == "InvalidSignatureException"


def test_body_not_matching_its_signed_hash_header_is_refused():
    received = signed(url=f"http://{HOST}/bucket/key", service="s3", signer=S3SigV4Auth)
    assert check(received, service="s3")
    received["body"] = b"something else"
    assert "x-amz-content-sha256" in refusal(received, service="s3").message


def test_scope_for_another_service_is_refused():
    err = refusal(signed(service="kms"))
    assert err.message == "Credential should be scoped to correct service: 'emr-serverless'."


def test_clock_skew_up_to_fifteen_minutes_passes_and_beyond_is_refused():
    received = signed()
    assert check(received, now=datetime.now(UTC) + timedelta(minutes=10))
    assert (
        "Signature expired"
        in refusal(received, now=datetime.now(UTC) + timedelta(minutes=20)).message
    )
    assert (
        "not yet current"
        in refusal(received, now=datetime.now(UTC) - timedelta(minutes=20)).message
    )


def test_presigned_url_passes_until_it_expires_and_tampering_is_refused():
    received = signed(method="GET", body=b"", signer=SigV4QueryAuth)
    assert "Authorization" not in received["headers"]
    assert check(received).access_key_id == KEY
    assert (
        refusal(received, now=datetime.now(UTC) + timedelta(hours=2)).code
        == "AccessDeniedException"
    )
    received["query_string"] = received["query_string"].replace("size=5", "size=6")
    assert refusal(received).code == "InvalidSignatureException"


def test_signed_headers_must_include_host():
    received = signed()
    auth = received["headers"]["Authorization"]
    assert ";host;" in auth
    received["headers"]["Authorization"] = auth.replace(";host;", ";")
    assert refusal(received).code == "InvalidSignatureException"
