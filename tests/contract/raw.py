"""Signed requests with bodies no SDK would send, to see how the backend refuses them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

JSON11_TARGETS = {
    "kms": ("TrentService", "application/x-amz-json-1.1"),
    "cloudtrail": (
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101",
        "application/x-amz-json-1.1",
    ),
}


@dataclass
class RawAnswer:
    """What came back: status, content type, body text and the error code, wherever it sits."""

    status: int
    content_type: str
    text: str
    code: str | None
    body: Any


def send(backend: Any, service: str, method: str, path: str, body: bytes, **headers: str) -> Any:
    """One SigV4-signed request to the backend as the demo's analytics account."""
    env = backend.env()
    credentials = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    request = AWSRequest(method=method, url=backend.endpoint + path, data=body, headers=headers)
    SigV4Auth(credentials, service, backend.region).add_auth(request)
    prepared = request.prepare()
    answer = requests.request(
        method, prepared.url, data=body, headers=dict(prepared.headers), timeout=30
    )
    content_type = answer.headers.get("Content-Type", "")
    try:
        parsed = answer.json()
    except ValueError:
        parsed = None
    code = answer.headers.get("x-amzn-ErrorType")
    if code is None and isinstance(parsed, dict):
        code = parsed.get("__type")
    return RawAnswer(answer.status_code, content_type, answer.text, code, parsed)


def json11(backend: Any, service: str, operation: str, body: bytes) -> RawAnswer:
    """A JSON 1.1 call (KMS, CloudTrail) with ``body`` sent as it is."""
    prefix, content_type = JSON11_TARGETS[service]
    return send(
        backend,
        service,
        "POST",
        "/",
        body,
        **{"X-Amz-Target": f"{prefix}.{operation}", "Content-Type": content_type},
    )
