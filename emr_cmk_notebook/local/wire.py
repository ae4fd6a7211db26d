"""Requests and answers as the emulated services see them, and the two AWS JSON wire styles."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
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


JSON11_CONTENT_TYPE = "application/x-amz-json-1.1"


def _dumps(data: Any) -> bytes:
    return json.dumps(data, default=str).encode()


def json11_ok(data: dict[str, Any]) -> ApiResponse:
    """A JSON 1.1 (KMS, CloudTrail) success answer."""
    return ApiResponse(200, _dumps(data), {"Content-Type": JSON11_CONTENT_TYPE})


def json11_error(err: AwsError) -> ApiResponse:
    """A JSON 1.1 error answer: ``{"__type": code, "message": ...}``."""
    body = {"__type": err.code, "message": err.message}
    return ApiResponse(err.status, _dumps(body), {"Content-Type": JSON11_CONTENT_TYPE})


def rest_json_ok(data: dict[str, Any], status: int = 200) -> ApiResponse:
    """A REST-JSON (EMR Serverless) success answer."""
    return ApiResponse(status, _dumps(data), {"Content-Type": "application/json"})


def rest_json_error(err: AwsError) -> ApiResponse:
    """A REST-JSON error answer: the code in ``x-amzn-ErrorType``, the message in the body."""
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": err.code}
    return ApiResponse(err.status, _dumps({"message": err.message}), headers)


def crashed(response: ApiResponse) -> bool:
    """Whether a forwarded answer is moto failing (werkzeug's HTML error page), not an AWS
    error: the caller turns it into the service's own internal error, in the service's shape."""
    return response.status >= 500 and response.body.lstrip()[:15].lower() == b"<!doctype html>"


@cache
def service_model(service: str) -> Any:
    """botocore's model of ``service`` (loaded once): routes, members and constraints."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def checked_json_input(request: ApiRequest) -> dict[str, Any]:
    """A JSON 1.1 request's body without the members the operation does not have (the service
    ignores them), refused as the service refuses it when it does not fit the operation's input
    shape: a member of the wrong JSON type (or a blob that is not base64) is a
    ``SerializationException``, a missing required member a ``ValidationException``."""
    shape = service_model(request.service).operation_model(request.operation).input_shape
    if shape is None:
        return {}
    body = {k: v for k, v in request.json().items() if k in shape.members}
    wrong = next(_type_problems(shape, body, ""), None)
    if wrong is not None:
        raise AwsError("SerializationException", wrong)
    missing = [
        f"Value null at '{name[:1].lower() + name[1:]}' failed to satisfy constraint: "
        "Member must not be null"
        for name in shape.required_members
        if body.get(name) is None
    ]
    if missing:
        count = f"{len(missing)} validation error{'s' if len(missing) > 1 else ''}"
        raise AwsError("ValidationException", f"{count} detected: {'; '.join(missing)}")
    return body


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    # Epoch seconds, as the SDKs send them; ISO 8601 text is read too.
    "timestamp": (int, float, str),
    "blob": (str,),
}


def _type_problems(shape: Any, value: Any, path: str) -> Iterator[str]:
    """Where ``value`` is not the JSON type the model says (``null`` counts as absent)."""
    if value is None:
        return
    kind = shape.type_name
    expected = _JSON_TYPES.get(kind, (object,))
    is_bool = isinstance(value, bool)
    if not isinstance(value, expected) or (is_bool and kind != "boolean"):
        where = f" at '{path}'" if path else ""
        yield f"Expected {kind}{where}, found {_json_type(value)}"
        return
    if kind == "blob" and not _is_base64(value):
        yield f"Value at '{path}' is not valid base64"
    elif kind == "structure":
        for name, item in value.items():
            if name in shape.members:
                yield from _type_problems(shape.members[name], item, _join(path, name))
    elif kind == "map":
        for name, item in value.items():
            yield from _type_problems(shape.value, item, f"{path}.{name}")
    elif kind == "list":
        for index, item in enumerate(value):
            yield from _type_problems(shape.member, item, f"{path}[{index}]")


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
