"""What EMR Serverless accepts as a ``diskEncryptionConfiguration``: the client and the local
service emulator ask ``encryption_config_problems``, so both refuse the same configurations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.core.arns import KEY_ARN_PATTERN, quoted
from emr_cmk_notebook.core.errors import InvalidEncryptionConfig

KEY_ARN_LENGTH = (20, 2048)
CONTEXT_MAX_PAIRS = 8
CONTEXT_KEY_LENGTH = (1, 128)
CONTEXT_VALUE_LENGTH = (1, 384)

API_FIELD = "diskEncryptionConfiguration"
API_MEMBERS = ("encryptionKeyArn", "encryptionContext")
# The context key EMR Serverless sets itself, to the application id, in every KMS call it makes.
SERVICE_CONTEXT_KEY = "applicationId"


@dataclass(frozen=True)
class Problem:
    """One reason the service would refuse a ``diskEncryptionConfiguration``."""

    field: str
    message: str


def encryption_config_problems(
    config: Mapping[str, Any], *, path: str = API_FIELD
) -> list[Problem]:
    """Every reason EMR Serverless would refuse this API-shaped configuration; empty when valid."""
    if not isinstance(config, Mapping):
        return [
            Problem(
                path,
                f"{path} must be an object with encryptionKeyArn and encryptionContext, "
                f"not {type(config).__name__}",
            )
        ]
    problems = [
        Problem(
            f"{path}.{name}",
            f"{path} has no field {quoted(name)}; use encryptionKeyArn and encryptionContext",
        )
        for name in config
        if name not in API_MEMBERS
    ]
    # A JSON null member means "not set" on the wire, so None is treated as absent.
    if config.get("encryptionKeyArn") is not None:
        problems += _key_arn_problems(config["encryptionKeyArn"], f"{path}.encryptionKeyArn")
    if config.get("encryptionContext") is not None:
        problems += _context_problems(config["encryptionContext"], f"{path}.encryptionContext")
    return problems


def _key_arn_problems(arn: object, path: str) -> list[Problem]:
    low, high = KEY_ARN_LENGTH
    if not isinstance(arn, str):
        return [Problem(path, f"encryptionKeyArn has type {type(arn).__name__}; give a key ARN")]
    if not low <= len(arn) <= high:
        return [
            Problem(
                path,
                f"encryptionKeyArn is {len(arn)} characters; a key ARN is {low}-{high} characters",
            )
        ]
    if not KEY_ARN_PATTERN.fullmatch(arn):
        return [
            Problem(
                path,
                f"encryptionKeyArn {quoted(arn, 80)} is not a KMS key ARN; use "
                "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (resolve aliases and key ids with "
                "kms:DescribeKey)",
            )
        ]
    return []


def _context_problems(context: object, path: str) -> list[Problem]:
    if not isinstance(context, Mapping):
        return [
            Problem(
                path,
                "encryptionContext must be a map of string keys to string values, "
                f"not {type(context).__name__}",
            )
        ]
    problems = []
    if len(context) > CONTEXT_MAX_PAIRS:
        extra = len(context) - CONTEXT_MAX_PAIRS
        problems.append(
            Problem(
                path,
                f"encryptionContext has {len(context)} pairs; at most {CONTEXT_MAX_PAIRS} "
                f"are allowed, remove {extra}",
            )
        )
    for key, value in context.items():
        problems += [Problem(path, message) for message in _pair_messages(key, value)]
    return problems


def _pair_messages(key: object, value: object) -> Iterator[str]:
    key_low, key_high = CONTEXT_KEY_LENGTH
    value_low, value_high = CONTEXT_VALUE_LENGTH
    if not isinstance(key, str):
        yield (
            f"encryptionContext key {quoted(key)} has type {type(key).__name__}; "
            "keys must be strings"
        )
    elif not key:
        yield f"encryptionContext has an empty key; keys must be {key_low}-{key_high} characters"
    elif len(key) > key_high:
        yield (
            f"encryptionContext key {quoted(key)} is {len(key)} characters; "
            f"keys must be {key_low}-{key_high} characters"
        )
    # Values are never quoted: they may be exactly the secret we warn about.
    if not isinstance(value, str):
        yield (
            f"encryptionContext value for key {quoted(key)} has type {type(value).__name__}; "
            "values must be strings"
        )
    elif not value:
        yield (
            f"encryptionContext value for key {quoted(key)} is empty; "
            f"values must be {value_low}-{value_high} characters"
        )
    elif len(value) > value_high:
        yield (
            f"encryptionContext value for key {quoted(key)} is {len(value)} characters; "
            f"values must be {value_low}-{value_high} characters"
        )


def raise_first(problems: list[Problem]) -> None:
    """Raise the first problem as a one-line ``InvalidEncryptionConfig`` that counts the rest."""
    if problems:
        first, more = problems[0], len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise InvalidEncryptionConfig(first.message + suffix, field=first.field)
