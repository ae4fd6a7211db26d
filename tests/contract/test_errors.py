"""Refusals from the local backend carry error codes the service models list for the operation,
or one of the errors common to all AWS APIs, in the service's wire shape, never an HTML page."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import demo_app_id, key_arn
from tests.contract import raw, shapes

pytestmark = pytest.mark.integration

SECURITY_ACCOUNT = "444455556666"
DAY = 24 * 3600

# "Common Errors" of the AWS API references, e.g.
# https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html and
# https://docs.aws.amazon.com/emr-serverless/latest/APIReference/CommonErrors.html; the JSON
# services name an unknown or badly signed caller UnrecognizedClientException and
# InvalidSignatureException, the query services (IAM, STS) a refusal AccessDenied.
COMMON_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "IncompleteSignature",
        "InternalFailure",
        "InvalidAction",
        "InvalidClientTokenId",
        "NotAuthorized",
        "OptInRequired",
        "RequestExpired",
        "ServiceUnavailable",
        "ThrottlingException",
        "ValidationError",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AccessDenied",
    }
)
# A JSON body that does not deserialize into the operation's input, or misses a required member:
# the codes AWS's JSON services answer, though the KMS and CloudTrail API references do not list
# them (README "What it does not emulate (yet)").
UNREADABLE_BODY = frozenset({"SerializationException", "ValidationException"})


def allowed_codes(service: str, operation: str) -> set[str]:
    return shapes.error_codes(service, operation) | COMMON_ERRORS


def refusal(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


@pytest.fixture(scope="module")
def world(backend: Any) -> dict[str, Any]:
    return backend.status()


def _cases(backend: Any, world: dict[str, Any]) -> dict[str, tuple[str, str, Callable[[], Any]]]:
    emr, kms = backend.client("emr-serverless"), backend.client("kms")
    iam, trail = backend.client("iam"), backend.client("cloudtrail")
    app_id = demo_app_id(world)
    role = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
    arn = f"arn:aws:emr-serverless:us-east-1:{ANALYTICS_ACCOUNT}:/applications/{app_id}"
    ready = key_arn(world, "alias/emr-analytics")
    token = str(uuid.uuid4())

    def unknown_app_job() -> Any:
        return emr.start_job_run(
            applicationId="00nosuchapp00000",
            executionRoleArn=role,
            clientToken=token,
            jobDriver={"sparkSubmit": {"entryPoint": "job.py"}},
        )

    now = time.time()
    return {
        "unknown application": (
            "emr-serverless",
            "GetApplication",
            lambda: emr.get_application(applicationId="00nosuchapp00000"),
        ),
        "session in an unknown application": (
            "emr-serverless",
            "StartSession",
            lambda: emr.start_session(
                applicationId="00nosuchapp00000", executionRoleArn=role, clientToken=token
            ),
        ),
        "tags of an unknown session": (
            "emr-serverless",
            "ListTagsForResource",
            lambda: emr.list_tags_for_resource(resourceArn=f"{arn}/sessions/00nosuchsession0"),
        ),
        "endpoint of an unknown session": (
            "emr-serverless",
            "GetSessionEndpoint",
            lambda: emr.get_session_endpoint(applicationId=app_id, sessionId="00nosuchsession0"),
        ),
        "job in an unknown application": ("emr-serverless", "StartJobRun", unknown_app_job),
        "unknown key": ("kms", "DescribeKey", lambda: kms.describe_key(KeyId="alias/nope")),
        "disabled key": (
            "kms",
            "GenerateDataKey",
            lambda: kms.generate_data_key(KeyId="alias/emr-disabled", KeySpec="AES_256"),
        ),
        "asymmetric key": (
            "kms",
            "GenerateDataKey",
            lambda: kms.generate_data_key(KeyId="alias/emr-asymmetric", KeySpec="AES_256"),
        ),
        "another account's key its policy does not share": (
            "kms",
            "GenerateDataKey",
            lambda: backend.client("kms", account=SECURITY_ACCOUNT).generate_data_key(
                KeyId=ready, KeySpec="AES_256"
            ),
        ),
        "ciphertext that is not KMS's": (
            "kms",
            "Decrypt",
            lambda: kms.decrypt(CiphertextBlob=b"0123456789abcdef" * 8),
        ),
        "unknown managed policy": (
            "iam",
            "GetPolicy",
            lambda: iam.get_policy(PolicyArn=f"arn:aws:iam::{ANALYTICS_ACCOUNT}:policy/nope"),
        ),
        "unknown inline policy": (
            "iam",
            "GetRolePolicy",
            lambda: iam.get_role_policy(RoleName="emr-session-role", PolicyName="nope"),
        ),
        "a simulation of a principal that does not exist": (
            "iam",
            "SimulatePrincipalPolicy",
            lambda: iam.simulate_principal_policy(
                PolicySourceArn=f"arn:aws:iam::{ANALYTICS_ACCOUNT}:user/nobody",
                ActionNames=["kms:Decrypt"],
            ),
        ),
        "two lookup attributes": (
            "cloudtrail",
            "LookupEvents",
            lambda: trail.lookup_events(
                LookupAttributes=[
                    {"AttributeKey": "EventName", "AttributeValue": "Decrypt"},
                    {"AttributeKey": "ReadOnly", "AttributeValue": "true"},
                ]
            ),
        ),
        "start after end": (
            "cloudtrail",
            "LookupEvents",
            lambda: trail.lookup_events(StartTime=now, EndTime=now - 60),
        ),
        "start older than 90 days": (
            "cloudtrail",
            "LookupEvents",
            lambda: trail.lookup_events(StartTime=now - 91 * DAY, EndTime=now),
        ),
    }


CASES = [
    "unknown application",
    "session in an unknown application",
    "tags of an unknown session",
    "endpoint of an unknown session",
    "job in an unknown application",
    "unknown key",
    "disabled key",
    "asymmetric key",
    "another account's key its policy does not share",
    "ciphertext that is not KMS's",
    "unknown managed policy",
    "unknown inline policy",
    "a simulation of a principal that does not exist",
    "two lookup attributes",
    "start after end",
    "start older than 90 days",
]


@pytest.mark.parametrize("case", CASES)
def test_a_refusal_has_an_error_code_the_model_lists(
    backend: Any, world: dict[str, Any], case: str
) -> None:
    service, operation, call = _cases(backend, world)[case]
    error = refusal(call).response["Error"]
    assert error["Code"] in allowed_codes(service, operation), error
    assert error.get("Message"), f"{case}: the refusal says nothing"


def test_cases_cover_every_case_defined(backend: Any, world: dict[str, Any]) -> None:
    assert sorted(_cases(backend, world)) == sorted(CASES)


def test_cloudtrail_refuses_a_start_older_than_90_days_and_serves_89(backend: Any) -> None:
    trail, now = backend.client("cloudtrail"), time.time()
    old = refusal(lambda: trail.lookup_events(StartTime=now - 91 * DAY)).response["Error"]
    assert old["Code"] == "InvalidTimeRangeException"
    assert "90 days" in old["Message"]
    assert "Events" in trail.lookup_events(StartTime=now - 89 * DAY, MaxResults=1)


# --- bodies no SDK sends -------------------------------------------------------------------------

MALFORMED = [
    ("kms", "DescribeKey", b'{"KeyId": 5}'),
    ("kms", "GenerateDataKey", b'{"KeyId": ["alias/emr-analytics"], "KeySpec": "AES_256"}'),
    ("kms", "Decrypt", b'{"CiphertextBlob": "!!not base64!!"}'),
    ("kms", "GenerateDataKey", b'{"KeyId": "alias/emr-analytics", "CiphertextBlob": "!!"}'),
    ("kms", "Encrypt", b'{"KeyId": "alias/emr-analytics", "Plaintext": 7}'),
    ("kms", "GenerateDataKey", b'{"KeySpec": "AES_256"}'),
    ("kms", "DescribeKey", b"this is not JSON"),
    ("kms", "DescribeKey", b'["a", "list"]'),
    ("cloudtrail", "LookupEvents", b'{"LookupAttributes": [{"AttributeKey": ["EventName"]}]}'),
    ("cloudtrail", "LookupEvents", b'{"LookupAttributes": "EventName"}'),
    ("cloudtrail", "LookupEvents", b'{"MaxResults": "ten"}'),
    ("cloudtrail", "LookupEvents", b"{not JSON"),
]


@pytest.mark.parametrize(("service", "operation", "body"), MALFORMED)
def test_a_malformed_json_body_gets_a_400_in_the_services_error_shape(
    backend: Any, service: str, operation: str, body: bytes
) -> None:
    answer = raw.json11(backend, service, operation, body)
    assert answer.status == 400, answer.text[:200]
    assert answer.content_type.startswith("application/x-amz-json-1.1")
    assert set(answer.body) == {"__type", "message"}
    assert answer.code in allowed_codes(service, operation) | UNREADABLE_BODY
    for secret in ("alias/emr-analytics", "!!not base64!!"):
        assert secret not in answer.body["message"]


EMR_MALFORMED = [
    ("POST", "/applications", b"not JSON at all"),
    ("POST", "/applications", b'{"name": 5, "releaseLabel": "emr-7.13.0", "type": "Spark"}'),
    ("POST", "/applications/{app}/sessions", b'{"executionRoleArn": [], "clientToken": "x"}'),
    ("POST", "/applications/{app}/jobruns", b'{"jobDriver": "x", "clientToken": "x"}'),
    ("GET", "/applications?maxResults=lots", b""),
]


@pytest.mark.parametrize(("method", "path", "body"), EMR_MALFORMED)
def test_emr_serverless_answers_a_malformed_request_with_a_400_in_its_error_shape(
    backend: Any, world: dict[str, Any], method: str, path: str, body: bytes
) -> None:
    path = path.format(app=demo_app_id(world))
    answer = raw.send(backend, "emr-serverless", method, path, body)
    assert answer.status == 400, answer.text[:200]
    assert answer.content_type.startswith("application/json")
    assert answer.code in UNREADABLE_BODY
    assert set(answer.body) == {"message"}


def test_a_valid_ciphertext_from_the_backend_still_decrypts(backend: Any, world: Any) -> None:
    blob = backend.client("kms").encrypt(KeyId="alias/emr-analytics", Plaintext=b"kept")[
        "CiphertextBlob"
    ]
    body = json.dumps({"CiphertextBlob": base64.b64encode(blob).decode()}).encode()
    answer = raw.json11(backend, "kms", "Decrypt", body)
    assert answer.status == 200, answer.text[:200]
    assert base64.b64decode(answer.body["Plaintext"]) == b"kept"
    assert answer.body["KeyId"] == key_arn(world, "alias/emr-analytics")
