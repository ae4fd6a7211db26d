"""Condition operators, wildcards and policy variables of AWS policy documents.

Follows "IAM JSON policy elements: Condition operators", "Creating a condition with multiple
context keys or values" and "IAM policy elements: Variables and tags" in the IAM User Guide.
Context keys arrive lower-cased because AWS compares condition key names case-insensitively.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emr_cmk_notebook.core.errors import UserError


class InvalidPolicy(UserError):
    """A policy document that is not valid JSON or not a valid AWS policy."""


# A template part: (wildcards_active, text). Text from ${*}, ${?}, ${$} and from resolved
# variables is literal, so a '*' inside a user name never acts as a wildcard.
Part = tuple[bool, str]


@functools.lru_cache(maxsize=8192)
def _regex(parts: tuple[Part, ...], ignore_case: bool) -> re.Pattern[str]:
    pieces: list[str] = []
    for wild, text in parts:
        if not wild:
            pieces.append(re.escape(text))
            continue
        for token in re.split(r"([*?])", text):
            pieces.append(".*" if token == "*" else "." if token == "?" else re.escape(token))
    return re.compile("".join(pieces), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """True when ``value`` matches ``pattern``, where ``*`` is any run and ``?`` one character."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.casefold() == value.casefold() if ignore_case else pattern == value
    return _regex(((True, pattern),), ignore_case).fullmatch(value) is not None


def _parts_match(parts: tuple[Part, ...], value: str, ignore_case: bool) -> bool:
    if all(not wild or ("*" not in text and "?" not in text) for wild, text in parts):
        joined = "".join(text for _, text in parts)
        return joined.casefold() == value.casefold() if ignore_case else joined == value
    return _regex(parts, ignore_case).fullmatch(value) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'((?:[^']|'')*)'\s*$")


@dataclass(frozen=True)
class Variable:
    """A ``${key}`` or ``${key, 'default'}`` placeholder filled from the request context."""

    name: str
    default: str | None = None

    def value(self, ctx: Mapping[str, tuple[str, ...]]) -> str | None:
        """The single context value (or the default); None when there is none."""
        values = ctx.get(self.name.lower(), ())
        # A multivalued key cannot be a policy variable; AWS leaves it unresolved.
        return values[0] if len(values) == 1 else self.default


@dataclass(frozen=True)
class Template:
    """A policy string that may hold ``*``/``?`` wildcards and ``${key}`` policy variables."""

    text: str
    parts: tuple[Part | Variable, ...]
    has_variables: bool

    @classmethod
    def parse(cls, text: str) -> Template:
        """Split ``text`` into wildcard text, literal text and variables."""
        if "${" not in text:
            return cls(text, ((True, text),), False)
        parts: list[Part | Variable] = []
        pos = 0
        for found in _VARIABLE.finditer(text):
            if found.start() > pos:
                parts.append((True, text[pos : found.start()]))
            inner = found.group(1)
            if inner in ("*", "?", "$"):
                parts.append((False, inner))
            elif (with_default := _DEFAULT.match(inner)) is not None:
                default = with_default.group(2).replace("''", "'")
                parts.append(Variable(with_default.group(1), default))
            else:
                parts.append(Variable(inner.strip()))
            pos = found.end()
        if pos < len(text):
            parts.append((True, text[pos:]))
        return cls(text, tuple(parts), True)

    def resolve(self, ctx: Mapping[str, tuple[str, ...]]) -> tuple[tuple[Part, ...], str | None]:
        """The parts with variables filled from ``ctx``, or ``((), note)`` when one has no value."""
        out: list[Part] = []
        for part in self.parts:
            if not isinstance(part, Variable):
                out.append(part)
                continue
            value = part.value(ctx)
            if value is None:
                return (), f"policy variable ${{{part.name}}} has no single value in the request"
            out.append((False, value))
        return tuple(out), None

    def matches(self, value: str, ctx: Mapping[str, tuple[str, ...]]) -> tuple[bool, str | None]:
        """Wildcard-match ``value`` case-sensitively; the note says why a variable failed."""
        parts, note = self.resolve(ctx)
        if note:
            return False, note
        return _parts_match(parts, value, False), None


@functools.lru_cache(maxsize=4096)
def _arn_fields(parts: tuple[Part, ...]) -> tuple[tuple[Part, ...], ...]:
    fields: list[list[Part]] = [[]]
    for wild, text in parts:
        for i, piece in enumerate(text.split(":")):
            if i and len(fields) < 6:
                fields.append([])
            elif i:
                piece = ":" + piece  # the sixth field (resource) keeps its own colons
            if piece:
                fields[-1].append((wild, piece))
    return tuple(tuple(field) for field in fields)


def _arn_like(parts: tuple[Part, ...], value: str) -> bool:
    fields = _arn_fields(parts)
    if len(fields) != 6:
        return _parts_match(parts, value, False)
    actual = value.split(":", 5)
    if len(actual) != 6:
        return False
    return all(_parts_match(f, v, False) for f, v in zip(fields, actual, strict=True))


def _parse_date(text: str) -> datetime:
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}

# base operator -> (value kind, negated)
OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("string", False),
    "StringNotEquals": ("string", True),
    "StringEqualsIgnoreCase": ("string_ci", False),
    "StringNotEqualsIgnoreCase": ("string_ci", True),
    "StringLike": ("string_like", False),
    "StringNotLike": ("string_like", True),
    "ArnEquals": ("arn", False),
    "ArnLike": ("arn", False),
    "ArnNotEquals": ("arn", True),
    "ArnNotLike": ("arn", True),
    **{f"Numeric{name}": ("numeric", name == "NotEquals") for name in _COMPARE},
    **{f"Date{name}": ("date", name == "NotEquals") for name in _COMPARE},
    "Bool": ("bool", False),
    "BinaryEquals": ("binary", False),
    "IpAddress": ("ip", False),
    "NotIpAddress": ("ip", True),
    "Null": ("null", False),
}


def _policy_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidPolicy(f"{where}: condition values must be strings, numbers or booleans")


@dataclass(frozen=True)
class ConditionClause:
    """One ``operator: {key: values}`` test; several values are ORed."""

    operator: str
    base: str
    qualifier: str | None
    if_exists: bool
    key: str
    key_name: str
    raw_values: tuple[str, ...]
    values: tuple[Any, ...]

    @property
    def label(self) -> str:
        """The operator and key as written, e.g. ``StringEquals kms:EncryptionContext:x``."""
        return f"{self.operator} {self.key_name}"

    def _positive(
        self, request_value: str, ctx: Mapping[str, tuple[str, ...]], notes: list[str]
    ) -> bool:
        kind = OPERATORS[self.base][0]
        if kind in ("string", "string_ci", "string_like", "arn", "bool"):
            for template in self.values:
                parts, note = template.resolve(ctx)
                if note:
                    notes.append(note)
                    continue
                if kind == "string_like" and _parts_match(parts, request_value, False):
                    return True
                if kind == "arn" and _arn_like(parts, request_value):
                    return True
                text = "".join(t for _, t in parts)
                if kind == "string" and text == request_value:
                    return True
                if kind == "string_ci" and text.casefold() == request_value.casefold():
                    return True
                if kind == "bool" and text.lower() == request_value.lower():
                    return True
            return False
        try:
            if kind == "numeric":
                actual: Any = float(request_value)
            elif kind == "date":
                actual = _parse_date(request_value)
            elif kind == "ip":
                actual = ipaddress.ip_address(request_value)
                return any(actual in network for network in self.values)
            else:
                return request_value in self.values
        except ValueError:
            return False
        compare = _COMPARE[self.base.removeprefix("Numeric").removeprefix("Date")]
        return any(compare(actual, wanted) for wanted in self.values)

    def check(
        self, ctx: Mapping[str, tuple[str, ...]], names: Mapping[str, str] | None = None
    ) -> str | None:
        """None when the request satisfies this test, else one line saying why it does not."""
        present = ctx.get(self.key, ())
        if self.base == "Null":
            if any(want == (not present) for want in self.values):
                return None
            state = "has" if present else "has no"
            return f"{self.label} failed: the request {state} {self.key_name}"
        negated = OPERATORS[self.base][1]
        if not present:
            if self.if_exists or self.qualifier == "ForAllValues":
                return None
            if negated and self.qualifier is None:
                return None
            return f"{self.label} failed: the request has no {self.key_name}" + _similar(
                self.key, names or {}
            )
        notes: list[str] = []
        if self.qualifier is None:
            # AWS asks for a set operator on multivalued keys; without one, any value may match.
            hit = any(self._positive(v, ctx, notes) for v in present)
            ok = hit != negated
        else:
            results = (self._positive(v, ctx, notes) != negated for v in present)
            ok = any(results) if self.qualifier == "ForAnyValue" else all(results)
        if ok:
            return None
        shown = ", ".join(repr(v) for v in present)
        wanted = ", ".join(repr(v) for v in self.raw_values)
        detail = f"{self.label} failed: the request has {shown}, the policy wants {wanted}"
        return detail + "".join(f"; {note}" for note in dict.fromkeys(notes))


def _similar(key: str, names: Mapping[str, str]) -> str:
    fields = key.split(":")
    if len(fields) < 3:
        return ""
    prefix = ":".join(fields[:2]) + ":"
    others = [names.get(k, k) for k in names if k.startswith(prefix) and k != key]
    return f" (it has {', '.join(sorted(others))})" if others else ""


def _split_operator(operator_name: str, where: str) -> tuple[str | None, str, bool]:
    qualifier = None
    base = operator_name
    if ":" in operator_name:
        qualifier, _, base = operator_name.partition(":")
        if qualifier not in ("ForAllValues", "ForAnyValue"):
            raise InvalidPolicy(f"{where}: unknown set operator {qualifier!r}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS:
        raise InvalidPolicy(f"{where}: unknown condition operator")
    if base == "Null" and if_exists:
        raise InvalidPolicy(f"{where}: Null cannot take IfExists")
    return qualifier, base, if_exists


def parse_clause(operator_name: str, key: str, raw: Any, where: str) -> ConditionClause:
    """Validate one condition test and pre-parse its values."""
    qualifier, base, if_exists = _split_operator(operator_name, where)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise InvalidPolicy(f"{where}.{key}: needs at least one value")
    texts = tuple(_policy_text(item, f"{where}.{key}") for item in items)
    kind = OPERATORS[base][0]
    try:
        values = tuple(_parse_value(kind, text) for text in texts)
    except ValueError as exc:
        raise InvalidPolicy(f"{where}.{key}: {exc}") from None
    return ConditionClause(
        operator_name, base, qualifier, if_exists, key.lower(), key, texts, values
    )


def _parse_value(kind: str, text: str) -> Any:
    if kind in ("string", "string_ci", "string_like", "arn", "bool"):
        if kind == "bool" and "${" not in text and text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return Template.parse(text)
    if kind == "numeric":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "date":
        try:
            return _parse_date(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date or epoch time") from None
    if kind == "ip":
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR range") from None
    if kind == "null":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text.lower() == "true"
    return text


def parse_conditions(block: Any, where: str) -> tuple[ConditionClause, ...]:
    """Parse a ``Condition`` element; every test in it must hold (AND)."""
    if not isinstance(block, Mapping):
        raise InvalidPolicy(f"{where}: must be an object of operator -> {{key: values}}")
    clauses: list[ConditionClause] = []
    for operator_name, tests in block.items():
        place = f"{where}.{operator_name}"
        _split_operator(operator_name, place)
        if not isinstance(tests, Mapping) or not tests:
            raise InvalidPolicy(f"{place}: must be a non-empty object of key -> values")
        clauses.extend(parse_clause(operator_name, key, raw, place) for key, raw in tests.items())
    return tuple(clauses)


def normalize_context(
    context: Mapping[str, str | Sequence[str]],
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Lower-case the keys (merging duplicates) and make every value a tuple of strings."""
    values: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    for name, raw in context.items():
        key = name.lower()
        items = (raw,) if isinstance(raw, str) else tuple(str(item) for item in raw)
        values[key] = values.get(key, ()) + items
        names.setdefault(key, name)
    return values, names
