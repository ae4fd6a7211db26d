"""Who is calling: the identity a request's credentials map to, in CloudTrail's terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EMR_SERVERLESS_PRINCIPAL = "emr-serverless.amazonaws.com"


@dataclass(frozen=True)
class Identity:
    """A caller: an IAM user, an assumed-role session, an account root or an AWS service."""

    type: str  # "IAMUser" | "AssumedRole" | "Root" | "AWSService"
    account_id: str
    arn: str | None = None
    principal_id: str | None = None
    access_key_id: str | None = None
    user_name: str | None = None
    # For AssumedRole: the role ARN the session was assumed from.
    role_arn: str | None = None
    # For AWSService: the service principal, e.g. "emr-serverless.amazonaws.com".
    service: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def principal(self) -> str:
        """What a key policy's ``Principal`` is matched against."""
        return self.service or self.arn or f"arn:aws:iam::{self.account_id}:root"

    @classmethod
    def aws_service(cls, service: str, account_id: str) -> Identity:
        """The identity of an AWS service acting for ``account_id``."""
        return cls(type="AWSService", account_id=account_id, service=service)

    def cloudtrail_user_identity(self) -> dict[str, Any]:
        """The ``userIdentity`` block CloudTrail writes for this caller."""
        if self.type == "AWSService":
            # AWS's sample records of EMR Serverless's disk-key calls carry a principalId (its
            # value is a placeholder there); the service principal stands in for it here.
            return {"type": "AWSService", "principalId": self.service, "invokedBy": "AWS Internal"}
        block: dict[str, Any] = {
            "type": self.type,
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account_id,
            "accessKeyId": self.access_key_id,
        }
        if self.type == "IAMUser":
            block["userName"] = self.user_name
        if self.type == "AssumedRole" and self.role_arn:
            role_name = self.role_arn.rsplit("/", 1)[-1]
            block["sessionContext"] = {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": (self.principal_id or "").split(":", 1)[0],
                    "arn": self.role_arn,
                    "accountId": self.account_id,
                    "userName": role_name,
                },
                "attributes": {"mfaAuthenticated": "false"},
            }
        if self.extra.get("invokedBy"):
            block["invokedBy"] = self.extra["invokedBy"]
        return {k: v for k, v in block.items() if v is not None}

    def via_service(self, service: str) -> Identity:
        """The same caller, acting through ``service`` (a forward access session)."""
        return Identity(
            type=self.type,
            account_id=self.account_id,
            arn=self.arn,
            principal_id=self.principal_id,
            access_key_id=self.access_key_id,
            user_name=self.user_name,
            role_arn=self.role_arn,
            extra={**self.extra, "invokedBy": service},
        )
