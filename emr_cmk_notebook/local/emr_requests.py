"""The EMR Serverless request side of the wire: which operation a path names, its input as
typed data, and the service model's constraints on it, worded as the service words them.

Routes, member locations and limits come from botocore's service model, so they are the ones
boto3 uses; the disk encryption rules come from ``core.encryption`` so client and backend agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import unquote

from emr_cmk_notebook.core.encryption_rules import encryption_config_problems
from emr_cmk_notebook.local import wire
from emr_cmk_notebook.local.errors import AwsError, validation
from emr_cmk_notebook.local.wire import ApiRequest


def service_model() -> Any:
    """botocore's EMR Serverless service model (loaded once)."""
    return wire.service_model("emr-serverless")


@cache
def _routes() -> list[tuple[str, re.Pattern[str], str]]:
    model = service_model()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        # resourceArn holds slashes once the server has percent-decoded the path.
        pattern = re.sub(
            r"\{(\w+)\}",
            lambda m: f"(?P<{m[1]}>{'.+' if m[1] == 'resourceArn' else '[^/]+'})",
            http["requestUri"],
        )
        routes.append((http["method"], re.compile(pattern), name))
    return routes


def route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The operation at ``method path`` and its URI parameters; 404 when there is none."""
    for route_method, pattern, name in _routes():
        match = pattern.fullmatch(path)
        if match and route_method == method:
            return name, {k: unquote(v) for k, v in match.groupdict().items()}
    raise AwsError(
        "UnknownOperationException", f"No EMR Serverless operation at {method} {path}", 404
    )


def operation_input(operation: str, request: ApiRequest, params: dict[str, str]) -> dict[str, Any]:
    """The request's body, URI and query members as one dict of typed values."""
    shape = service_model().operation_model(operation).input_shape
    # Members the operation does not have are ignored, as the service ignores them.
    data = {k: v for k, v in request.json().items() if k in shape.members}
    query = request.query
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            data[name] = params[wire_name]
        elif location == "querystring" and wire_name in query:
            many = member.type_name == "list"
            values = [_scalar(member.member if many else member, v, name) for v in query[wire_name]]
            data[name] = values if many else values[-1]
    return data


def _scalar(shape: Any, text: str, name: str) -> Any:
    try:
        if shape.type_name in ("integer", "long"):
            return int(text)
        if shape.type_name == "timestamp":
            return float(text) if text.replace(".", "", 1).isdigit() else _iso(text)
    except ValueError:
        raise validation(f"Value {text!r} at '{name}' is not a valid {shape.type_name}") from None
    if shape.type_name == "boolean":
        return text.lower() == "true"
    return text


def _iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def check_input(operation: str, data: Mapping[str, Any]) -> None:
    """Refuse input the service would refuse, with its ``N validation errors detected`` message."""
    errors: list[str] = []
    _violations(service_model().operation_model(operation).input_shape, data, "", errors)
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''}"
        raise validation(f"{count} detected: {'; '.join(errors)}")


def _violations(shape: Any, value: Any, path: str, out: list[str], hidden: bool = False) -> None:
    # Below a sensitive member (Spark properties, entry points...) values are never echoed.
    hidden = hidden or bool(shape.metadata.get("sensitive"))
    kind = shape.type_name
    if shape.name == "DiskEncryptionConfiguration" and isinstance(value, Mapping):
        out.extend(_encryption_violations(shape, value, path))
        return
    if kind == "structure" and isinstance(value, Mapping):
        out.extend(
            f"Value null at '{_join(path, name)}' failed to satisfy constraint: "
            "Member must not be null"
            for name in shape.required_members
            if value.get(name) is None
        )
        for name, member_value in value.items():
            if name in shape.members and member_value is not None:
                _violations(shape.members[name], member_value, _join(path, name), out, hidden)
        return
    if kind == "list" and isinstance(value, list):
        problems = _size_problems(shape, len(value))
        items = [(f"{path}.{index}.member", item) for index, item in enumerate(value, 1)]
        children = [(shape.member, item_path, item) for item_path, item in items]
    elif kind == "map" and isinstance(value, Mapping):
        problems = _size_problems(shape, len(value))
        children = [(shape.key, f"{path}.key", key) for key in value]
        children += [(shape.value, f"{path}.{key}", item) for key, item in value.items()]
    elif kind in ("structure", "list", "map"):
        problems, children = [f"Member must be a {kind}"], []
    else:
        problems, children = scalar_problems(shape, value), []
    shown = "" if hidden else f" '{_aws_text(value)}'"
    out.extend(f"Value{shown} at '{path}' failed to satisfy constraint: {p}" for p in problems)
    for child_shape, child_path, child in children:
        _violations(child_shape, child, child_path, out, hidden)


def scalar_problems(shape: Any, value: Any) -> list[str]:
    """The model's constraints a string, number or boolean breaks, in the service's words."""
    meta, kind = shape.metadata, shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            return ["Member must be a string"]
        problems = _size_problems(shape, len(value))
        if "enum" in meta and value not in meta["enum"]:
            problems.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
        if "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
            problems.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
        return problems
    if kind in ("integer", "long", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ["Member must be a number"]
        low, high = meta.get("min"), meta.get("max")
        if low is not None and value < low:
            return [f"Member must have value greater than or equal to {low}"]
        if high is not None and value > high:
            return [f"Member must have value less than or equal to {high}"]
        return []
    if kind == "boolean" and not isinstance(value, bool):
        return ["Member must be a boolean"]
    return []


def _size_problems(shape: Any, size: int) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if high is not None and size > high:
        return [f"Member must have length less than or equal to {high}"]
    if low is not None and size < low:
        return [f"Member must have length greater than or equal to {low}"]
    return []


def _encryption_violations(shape: Any, config: Mapping[str, Any], path: str) -> list[str]:
    """core.encryption decides; a string member's failure is worded as the service words it."""
    out = []
    for problem in encryption_config_problems(config, path=path):
        member = problem.field.rsplit(".", 1)[-1]
        value = config.get(member)
        if member in shape.members and isinstance(value, str):
            words = scalar_problems(shape.members[member], value) or [problem.message]
            prefix = f"Value '{value}' at '{problem.field}' failed to satisfy constraint"
            out.extend(f"{prefix}: {w}" for w in words)
        else:
            # Context values are never echoed: they are logged in plaintext and may be secret.
            out.append(
                f"Value at '{problem.field}' failed to satisfy constraint: {problem.message}"
            )
    return out


def _aws_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_aws_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_aws_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, re.DOTALL)
