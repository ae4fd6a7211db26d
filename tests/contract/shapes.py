"""Check a parsed botocore response against the service model's output shape.

botocore parses whatever the server sends without complaint: a missing required member, a
string where the model says integer, or an enum value the model does not know all reach the
caller. ``problems`` walks the model (``operation_model(op).output_shape``) and lists every
place where a response departs from it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

# Members botocore adds to every parsed response; they are not in any model.
_BOTOCORE_ADDED = frozenset({"ResponseMetadata"})
# botocore decodes IAM's URL-encoded policy documents into dicts (``json_decode_policies`` in
# botocore/handlers.py), so a dict is what a real answer gives there too.
_DECODED_BY_BOTOCORE = frozenset({"policyDocumentType"})
# Required members the model gives a minimum length of 1 that EMR Serverless answers with ""
# while there is nothing to say: a published ``aws emr-serverless get-job-run`` output of a
# RUNNING job shows ``"stateDetails": ""``.
_EMPTY_IN_REAL_ANSWERS = frozenset(
    {
        ("JobRun", "stateDetails"),
        ("JobRunSummary", "stateDetails"),
        ("Session", "stateDetails"),
        ("SessionSummary", "stateDetails"),
    }
)
_NUMBERS = {"integer": int, "long": int, "float": float, "double": float}


@cache
def service_model(service: str) -> ServiceModel:
    """The installed botocore's model of ``service`` (e.g. ``"emr-serverless"``)."""
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    """The model of one operation, e.g. ``("kms", "GenerateDataKey")``."""
    return service_model(service).operation_model(operation)


def problems(service: str, operation: str, response: Mapping[str, Any]) -> list[str]:
    """Every departure of ``response`` (as boto3 returns it) from the operation's output shape."""
    shape = operation_model(service, operation).output_shape
    body = {k: v for k, v in response.items() if k not in _BOTOCORE_ADDED}
    if shape is None:
        return [f"{operation} has no output, yet answered {sorted(body)}"] if body else []
    return list(_walk(shape, body, operation))


def error_codes(service: str, operation: str) -> set[str]:
    """The error codes the model lists for an operation (its ``errors``)."""
    return {_code(e) for e in operation_model(service, operation).error_shapes}


def _code(shape: Shape) -> str:
    return shape.metadata.get("error", {}).get("code") or shape.name


def _walk(shape: Shape, value: Any, path: str) -> Iterator[str]:
    kind = shape.type_name
    if kind == "structure":
        yield from _structure(shape, value, path)
    elif kind == "list":
        yield from _list(shape, value, path)
    elif kind == "map":
        yield from _map(shape, value, path)
    elif kind == "string":
        yield from _string(shape, value, path)
    elif kind in _NUMBERS:
        yield from _number(shape, value, path, _NUMBERS[kind])
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{path}: expected a boolean, got {value!r}"
    elif kind == "timestamp":
        if not isinstance(value, datetime.datetime):
            yield f"{path}: expected a timestamp, got {value!r}"
    elif kind == "blob" and not isinstance(value, bytes | bytearray):
        # A streaming payload (S3 GetObject's Body) reaches boto3 callers as a body to read.
        streaming = shape.serialization.get("streaming") or shape.metadata.get("streaming")
        if not (streaming and hasattr(value, "read")):
            yield f"{path}: expected bytes, got {type(value).__name__}"


def _structure(shape: StructureShape, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, Mapping):
        yield f"{path}: expected a structure ({shape.name}), got {value!r}"
        return
    for name in shape.required_members:
        if name not in value:
            yield f"{path}.{name}: required by {shape.name} but missing"
    for name, member in value.items():
        if name not in shape.members:
            yield f"{path}.{name}: not a member of {shape.name}"
            continue
        if member == "" and (shape.name, name) in _EMPTY_IN_REAL_ANSWERS:
            continue
        yield from _walk(shape.members[name], member, f"{path}.{name}")


def _list(shape: ListShape, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, list):
        yield f"{path}: expected a list, got {value!r}"
        return
    yield from _size(shape, len(value), path, "items")
    for index, item in enumerate(value):
        yield from _walk(shape.member, item, f"{path}[{index}]")


def _map(shape: MapShape, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, Mapping):
        yield f"{path}: expected a map, got {value!r}"
        return
    yield from _size(shape, len(value), path, "entries")
    for key, item in value.items():
        yield from _walk(shape.key, key, f"{path} key {key!r}")
        yield from _walk(shape.value, item, f"{path}[{key!r}]")


def _string(shape: Shape, value: Any, path: str) -> Iterator[str]:
    if shape.name in _DECODED_BY_BOTOCORE and isinstance(value, Mapping):
        return
    if not isinstance(value, str):
        yield f"{path}: expected a string, got {value!r}"
        return
    if shape.enum and value not in shape.enum:
        yield f"{path}: {value!r} is not one of {shape.name}'s values {shape.enum}"
    yield from _size(shape, len(value), path, "characters")


def _number(shape: Shape, value: Any, path: str, kind: type) -> Iterator[str]:
    allowed = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, allowed):
        yield f"{path}: expected {shape.type_name}, got {value!r}"
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        yield f"{path}: {value} is outside {shape.name}'s range {low}..{high}"


def _size(shape: Shape, size: int, path: str, unit: str) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        yield f"{path}: {size} {unit}, fewer than {shape.name}'s minimum {low}"
    if high is not None and size > high:
        yield f"{path}: {size} {unit}, more than {shape.name}'s maximum {high}"
