"""Requests and answers as the emulated services see them, and the two AWS JSON wire styles."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import Identity


@dataclass
class ApiRequest:
    """One signed AWS API request, after the front door worked out service, region and caller."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    service: str
    region: str
    identity: Identity
    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    request_id: str = ""

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    @property
    def operation(self) -> str:
        """The operation named by ``X-Amz-Target`` (JSON 1.1 services), e.g. ``GenerateDataKey``."""
        target = self.headers.get("x-amz-target", "")
        return target.rsplit(".", 1)[-1]

    def json(self) -> dict[str, Any]:
        """The JSON body (``{}`` when empty); a body that is not a JSON object is refused."""
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise AwsError(
                "SerializationException", f"Request body is not valid JSON: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise AwsError("SerializationException", "Request body must be a JSON object")
        return data


@dataclass
class ApiResponse:
    """An HTTP answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, default=str).encode()


def json11_ok(data: dict[str, Any]) -> ApiResponse:
    """A JSON 1.1 (KMS, CloudTrail) success answer."""
    return ApiResponse(200, _dumps(data), {"Content-Type": "application/x-amz-json-1.1"})


def json11_error(err: AwsError) -> ApiResponse:
    """A JSON 1.1 error answer: ``{"__type": code, "message": ...}``."""
    body = {"__type": err.code, "message": err.message}
    return ApiResponse(err.status, _dumps(body), {"Content-Type": "application/x-amz-json-1.1"})


def rest_json_ok(data: dict[str, Any], status: int = 200) -> ApiResponse:
    """A REST-JSON (EMR Serverless) success answer."""
    return ApiResponse(status, _dumps(data), {"Content-Type": "application/json"})


def rest_json_error(err: AwsError) -> ApiResponse:
    """A REST-JSON error answer: the code in ``x-amzn-ErrorType``, the message in the body."""
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": err.code}
    return ApiResponse(err.status, _dumps({"message": err.message}), headers)
