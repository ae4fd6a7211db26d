"""Turning what a user typed for a key into the key ARN AWS needs, and a first look at the key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import UserError


@dataclass(frozen=True)
class KeyFacts:
    """What DescribeKey says about a key, in the words readiness and sessions use."""

    arn: str
    state: str
    key_spec: str
    key_usage: str
    account: str
    region: str

    @property
    def usable_for_disks(self) -> bool:
        return (
            self.state == "Enabled"
            and self.key_spec == "SYMMETRIC_DEFAULT"
            and self.key_usage == "ENCRYPT_DECRYPT"
        )

    def problem(self) -> str | None:
        """Why EMR Serverless could not use this key for disks, or None."""
        if self.state != "Enabled":
            return f"KMS key {self.arn} is {self.state}; EMR Serverless needs an Enabled key"
        if self.key_spec != "SYMMETRIC_DEFAULT" or self.key_usage != "ENCRYPT_DECRYPT":
            return (
                f"KMS key {self.arn} is {self.key_spec}/{self.key_usage}; EMR Serverless disk "
                "encryption needs a symmetric encryption key (SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT)"
            )
        return None


def describe_key(kms: Any, key: str) -> KeyFacts:
    """DescribeKey for an alias name, alias ARN, key id or key ARN."""
    from emr_cmk_notebook.aws_errors import AwsRequestInvalid

    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except AwsRequestInvalid as exc:
        if exc.code != "NotFoundException":
            raise
        raise UserError(
            f"KMS key {key!r} was not found in {kms.meta.region_name}",
            hint="check the alias or ARN, and that the key is in the application's region",
        ) from exc
    arn = meta["Arn"]
    parts = arn.split(":")
    return KeyFacts(
        arn=arn,
        state=meta.get("KeyState", "Enabled" if meta.get("Enabled") else "Disabled"),
        key_spec=meta.get("KeySpec") or meta.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"),
        key_usage=meta.get("KeyUsage", "ENCRYPT_DECRYPT"),
        account=parts[4],
        region=parts[3],
    )


def resolve(kms: Any, encryption: DiskEncryption) -> tuple[DiskEncryption, KeyFacts]:
    """The same configuration with its key resolved to a key ARN, and the key's facts."""
    facts = describe_key(kms, encryption.key)
    return encryption.with_key_arn(facts.arn), facts
