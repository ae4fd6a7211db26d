"""ARNs and KMS key references: parse what a user typed for a key, and build the ARNs we need."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from emr_cmk_notebook.core.errors import InvalidEncryptionConfig, UserError

KEY_ARN_PATTERN = re.compile(
    r"arn:(aws[a-zA-Z0-9-]*):kms:[a-zA-Z0-9\-]*:([0-9]{12}):key\/[a-zA-Z0-9-]+"
)
"""The service's own pattern for ``encryptionKeyArn``; use it with ``fullmatch``."""

_PARTITION = re.compile(r"aws[a-zA-Z0-9-]*")
_ACCOUNT = re.compile(r"[0-9]{12}")
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9/_-]+")
_ALIAS_NAME_MAX = 256
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MULTI_REGION_KEY_ID = re.compile(r"mrk-[0-9a-fA-F]{32}")

_ACCEPTED_KEY_FORMS = (
    "use a key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY_ID), an alias ARN "
    "(arn:aws:kms:REGION:ACCOUNT:alias/NAME), an alias name (alias/NAME) "
    "or a key id (a UUID or mrk- followed by 32 hex digits)"
)

KeyKind = Literal["key_arn", "alias_arn", "alias_name", "key_id"]


def quoted(value: object, limit: int = 40) -> str:
    """``value`` in quotes, cut to ``limit`` characters, for naming user input in a message."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@dataclass(frozen=True)
class Arn:
    """The six parts of an Amazon Resource Name."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str) -> Arn:
    """Split ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`` into its parts."""
    parts = text.split(":", 5) if isinstance(text, str) else []
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2] or not parts[5]:
        raise UserError(
            f"{quoted(text, 80)} is not an ARN; "
            "write it as arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE"
        )
    return Arn(*parts[1:])


@dataclass(frozen=True)
class KeyRef:
    """What a user typed for a KMS key, classified; only a key ARN can be sent to EMR Serverless."""

    kind: KeyKind
    text: str
    partition: str | None = None
    region: str | None = None
    account: str | None = None
    key_id: str | None = None
    alias_name: str | None = None

    @property
    def needs_resolution(self) -> bool:
        """True unless this is already a key ARN (aliases and key ids go through DescribeKey)."""
        return self.kind != "key_arn"


def _invalid_key(text: object, why: str = "is not a KMS key reference") -> InvalidEncryptionConfig:
    return InvalidEncryptionConfig(
        f"key {quoted(text, 80)} {why}; {_ACCEPTED_KEY_FORMS}", field="key"
    )


def parse_key_ref(text: str) -> KeyRef:
    """Classify a key given as key ARN, alias ARN, alias name or bare key id."""
    if not isinstance(text, str):
        raise _invalid_key(text, f"is not a string (it has type {type(text).__name__})")
    if text.startswith("arn:"):
        return _parse_kms_arn(text)
    if text.startswith("alias/"):
        if len(text) > _ALIAS_NAME_MAX or not _ALIAS_NAME.fullmatch(text):
            raise _invalid_key(
                text,
                "is not a valid alias name (at most 256 characters of letters, digits, / _ -)",
            )
        return KeyRef("alias_name", text, alias_name=text)
    if _KEY_ID.fullmatch(text) or _MULTI_REGION_KEY_ID.fullmatch(text):
        return KeyRef("key_id", text, key_id=text)
    raise _invalid_key(text)


def _parse_kms_arn(text: str) -> KeyRef:
    try:
        arn = parse_arn(text)
    except UserError:
        raise _invalid_key(text, "is not a well-formed ARN") from None
    if arn.service != "kms":
        raise _invalid_key(text, f"is an ARN for {arn.service}, not for a KMS key")
    known = {
        "partition": arn.partition,
        "region": arn.region or None,
        "account": arn.account,
    }
    if KEY_ARN_PATTERN.fullmatch(text):
        return KeyRef("key_arn", text, key_id=arn.resource.removeprefix("key/"), **known)
    valid_prefix = _PARTITION.fullmatch(arn.partition) and _ACCOUNT.fullmatch(arn.account)
    if arn.resource.startswith("alias/"):
        if valid_prefix and _ALIAS_NAME.fullmatch(arn.resource):
            return KeyRef("alias_arn", text, alias_name=arn.resource, **known)
        raise _invalid_key(text, "is not a valid alias ARN")
    raise _invalid_key(text, "is not a valid KMS key or alias ARN")


def application_arn(region: str, account: str, app_id: str, partition: str = "aws") -> str:
    """The ARN of an EMR Serverless application, as used in ``aws:SourceArn`` conditions."""
    return f"arn:{partition}:emr-serverless:{region}:{account}:/applications/{app_id}"
