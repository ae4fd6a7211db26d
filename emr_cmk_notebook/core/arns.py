"""ARNs, KMS key references and IAM role ARNs: check what a user typed, build the ARNs we need."""

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


# IAM's rules for a role (botocore's IAM model: roleNameType, pathType) within EMR Serverless's
# IAMRoleArn pattern. ``\w`` there is ASCII, as in the Java regexes AWS writes, hence re.ASCII.
# The path may hold ASCII ! through DEL: EMR Serverless's pattern and IAM's documentation say so
# (IAM's own pattern stops before DEL).
_ROLE_RESOURCE = re.compile(r"role(/|/[\x21-\x7f]+/)([\w+=,.@-]+)", re.ASCII)
_ROLE_NAME_MAX = 64
_ROLE_PATH_MAX = 512
_ROLE_FORM = "write it as arn:aws:iam::ACCOUNT:role/NAME (or role/PATH/NAME)"


def role_arn_problem(text: object) -> str | None:
    """Why ``text`` is not an IAM role ARN AWS would accept, as words to follow its name; None
    when it is one."""
    try:
        arn = parse_arn(text) if isinstance(text, str) else None
    except UserError:
        arn = None
    resource = _ROLE_RESOURCE.fullmatch(arn.resource) if arn else None
    if arn is None or arn.service != "iam" or not arn.resource.startswith("role/"):
        return f"is not an IAM role ARN; {_ROLE_FORM}"
    if not _PARTITION.fullmatch(arn.partition):
        return f"has partition {quoted(arn.partition)}, not aws, aws-cn or aws-us-gov; {_ROLE_FORM}"
    if arn.region:
        return f"names a region, but an IAM role ARN has none; {_ROLE_FORM}"
    if not _ACCOUNT.fullmatch(arn.account):
        return f"needs a 12-digit account id; {_ROLE_FORM}"
    if resource is None or len(resource.group(2)) > _ROLE_NAME_MAX:
        return (
            "does not end in a role name IAM allows (1 to 64 ASCII letters, digits and "
            "_+=,.@-, after a path of printable ASCII between slashes)"
        )
    if len(resource.group(1)) > _ROLE_PATH_MAX:
        return "has a role path longer than the 512 characters IAM allows"
    return None


def is_role_arn(text: object) -> bool:
    """True when ``text`` is an IAM role ARN that AWS would accept as an execution role."""
    return role_arn_problem(text) is None


def application_arn(region: str, account: str, app_id: str, partition: str = "aws") -> str:
    """The ARN of an EMR Serverless application, as used in ``aws:SourceArn`` conditions."""
    return f"arn:{partition}:emr-serverless:{region}:{account}:/applications/{app_id}"
