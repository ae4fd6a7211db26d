"""DescribeKey, once: turning what a user typed for a key into the key ARN AWS needs, and what
KMS says about the key (readiness, sessions, applications, the launcher and usage all ask here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError

ENABLED = "Enabled"
SYMMETRIC = ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")


@dataclass(frozen=True)
class KeyFacts:
    """What DescribeKey says about a key, in the words readiness and sessions use."""

    arn: str
    state: str
    key_spec: str
    key_usage: str
    account: str
    region: str

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> KeyFacts:
        """The facts in DescribeKey's ``KeyMetadata`` (older keys lack KeyState and KeySpec)."""
        arn = metadata["Arn"]
        parts = arn.split(":")
        return cls(
            arn=arn,
            state=metadata.get("KeyState", ENABLED if metadata.get("Enabled") else "Disabled"),
            key_spec=metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec", SYMMETRIC[0]),
            key_usage=metadata.get("KeyUsage", SYMMETRIC[1]),
            account=parts[4],
            region=parts[3],
        )

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED

    @property
    def symmetric(self) -> bool:
        """A symmetric encryption key, the only kind EMR Serverless disk encryption takes."""
        return (self.key_spec, self.key_usage) == SYMMETRIC

    def problem(self) -> str | None:
        """Why EMR Serverless could not use this key for disks, or None."""
        if not self.enabled:
            return f"KMS key {self.arn} is {self.state}; EMR Serverless needs an Enabled key"
        if not self.symmetric:
            return (
                f"KMS key {self.arn} is {self.key_spec}/{self.key_usage}; EMR Serverless disk "
                "encryption needs a symmetric encryption key (SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT)"
            )
        return None


def key_metadata(kms: Any, key: str) -> dict[str, Any]:
    """DescribeKey's ``KeyMetadata`` for an alias name, alias ARN, key id or key ARN; AWS's
    errors as they come (readiness keeps them as findings)."""
    return kms.describe_key(KeyId=key)["KeyMetadata"]


def describe_key(kms: Any, key: str) -> KeyFacts:
    """DescribeKey for an alias name, alias ARN, key id or key ARN; a key KMS cannot find is a
    one-line ``UserError``."""
    from emr_cmk_notebook.aws_errors import AwsRequestInvalid

    try:
        return KeyFacts.of(key_metadata(kms, key))
    except AwsRequestInvalid as exc:
        if exc.code not in ("NotFoundException", "InvalidArnException"):
            raise
        raise UserError(
            f"KMS key {key!r} was not found in {kms.meta.region_name}",
            hint="check the alias or ARN; an alias or key id finds only your own account's "
            "keys, so give the key ARN for a key in another account",
        ) from exc


def resolve(kms: Any, encryption: DiskEncryption) -> tuple[DiskEncryption, KeyFacts]:
    """The same configuration with its key resolved to a key ARN, and the key's facts."""
    facts = describe_key(kms, encryption.key)
    return encryption.with_key_arn(facts.arn), facts
