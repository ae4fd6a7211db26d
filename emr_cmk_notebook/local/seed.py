"""The demo world the tutorials and tests share (``--seed demo``).

Account 111122223333 (analytics) runs EMR Serverless: ``demo-app`` (emr-7.13.0) and
``spark4-app`` (emr-spark-8.0.0); account 444455556666 (security) owns a key shared with it. Keys
cover the cases users meet: a ready key, a disabled one, an asymmetric one, one whose policy
forgets the service, and one conditioned on a context key the service never sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.iam.models import iam_backends
from moto.kms.models import kms_backends

from emr_cmk_notebook.local.accounts import PARTITION, Credentials, create_user_with_key

if TYPE_CHECKING:
    from emr_cmk_notebook.local.server import Backend

ANALYTICS = "111122223333"
SECURITY = "444455556666"
ACCOUNT_NAMES = {ANALYTICS: "analytics", SECURITY: "security"}
EMR_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "emr-serverless.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass
class World:
    """What the seed laid, for ``status`` and ``env``."""

    region: str
    users: dict[str, Credentials] = field(default_factory=dict)  # account -> analyst/admin keys
    keys: list[tuple[str, str]] = field(default_factory=list)  # (account, alias)
    roles: list[str] = field(default_factory=list)
    shared_key_arn: str | None = None

    def credentials(self) -> dict[str, Any]:
        return {
            account: {
                "access_key_id": c.access_key_id,
                "secret_access_key": c.secret_access_key,
                "user_arn": c.user_arn,
            }
            for account, c in self.users.items()
        }

    def describe(self, backend: Backend) -> dict[str, Any]:
        keys = []
        for account, alias in self.keys:
            kms = kms_backends[account][self.region]
            key = kms.keys[kms.any_id_to_key_id(alias)]
            keys.append(
                {
                    "alias": alias,
                    "arn": key.arn,
                    "account": account,
                    "state": key.key_state,
                    "key_spec": key.key_spec,
                    "key_usage": key.key_usage,
                }
            )
        return {
            "accounts": [
                {"id": a, "name": ACCOUNT_NAMES.get(a, a), "user_arn": c.user_arn}
                for a, c in self.users.items()
            ],
            "keys": keys,
            "roles": list(self.roles),
            "shared_key_arn": self.shared_key_arn,
        }


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def root_statement(account: str) -> dict[str, Any]:
    """The default statement that lets the account's IAM policies govern the key."""
    return {
        "Sid": "EnableIamPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def service_statement(region: str, account: str, app_id: str, context_key: str) -> dict[str, Any]:
    """The statement AWS documents for EMR Serverless disk encryption, for one application."""
    return {
        "Sid": "AllowEmrServerlessDiskEncryption",
        "Effect": "Allow",
        "Principal": {"Service": "emr-serverless.amazonaws.com"},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringLike": {
                "aws:SourceArn": f"arn:aws:emr-serverless:{region}:{account}:/applications/{app_id}"
            },
            "StringEquals": {
                "aws:SourceAccount": account,
                f"kms:EncryptionContext:{context_key}": app_id,
            },
        },
    }


def _key(
    region: str, account: str, alias: str, policy: str, *, spec: str = "SYMMETRIC_DEFAULT"
) -> Any:
    kms = kms_backends[account][region]
    key = kms.create_key(
        policy=policy,
        key_usage="ENCRYPT_DECRYPT",
        key_spec=spec,
        description=f"emr-cmk demo key {alias}",
        tags=[],
        multi_region=False,
        origin="AWS_KMS",
    )
    kms.create_alias(key.id, alias)
    return key


def _role(account: str, name: str, trust: dict[str, Any], policy: dict[str, Any] | None) -> str:
    iam = iam_backends[account][PARTITION]
    role = iam.create_role(
        role_name=name,
        assume_role_policy_document=json.dumps(trust),
        path="/",
        permissions_boundary=None,
        description=f"emr-cmk demo role {name}",
        tags=[],
        max_session_duration=None,
    )
    if policy is not None:
        iam.put_role_policy(name, f"{name}-policy", json.dumps(policy))
    return role.arn


def _allow(actions: list[str], resources: list[str] | str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
    }


def lay(backend: Backend, name: str) -> World:
    """Lay the named seed in ``backend``; only ``demo`` exists."""
    if name != "demo":
        raise ValueError(f"unknown seed {name!r}; the only seed is 'demo'")
    region = backend.region
    world = World(region=region)
    world.users[ANALYTICS] = create_user_with_key(
        ANALYTICS, "analyst", "AKIA1111222233330001", "local-analytics-secret-0000000000000001"
    )
    world.users[SECURITY] = create_user_with_key(
        SECURITY, "key-admin", "AKIA4444555566660001", "local-security-secret-00000000000000001"
    )
    iam = iam_backends[ANALYTICS][PARTITION]
    iam.put_user_policy(
        "analyst",
        "analyst-policy",
        json.dumps(
            _allow(
                [
                    "kms:*",
                    "emr-serverless:*",
                    "iam:PassRole",
                    "iam:List*",
                    "iam:Get*",
                    "iam:SimulatePrincipalPolicy",
                    "cloudtrail:LookupEvents",
                    "s3:*",
                    "sts:AssumeRole",
                ],
                "*",
            )
        ),
    )
    iam_backends[SECURITY][PARTITION].put_user_policy(
        "key-admin", "key-admin-policy", json.dumps(_allow(["kms:*", "cloudtrail:*"], "*"))
    )

    app = backend.emr.create_application(
        ANALYTICS,
        region,
        name="demo-app",
        releaseLabel="emr-7.13.0",
        type="Spark",
        interactiveConfiguration={"livyEndpointEnabled": True, "sessionEnabled": True},
        started=True,
    )
    app_id = app["applicationId"]
    # AWS's runtime for Apache Spark (Spark 4.0, like the local backend), created after demo-app so
    # that whatever lists applications still comes to demo-app first.
    backend.emr.create_application(
        ANALYTICS,
        region,
        name="spark4-app",
        releaseLabel="emr-spark-8.0.0",
        type="Spark",
        interactiveConfiguration={"livyEndpointEnabled": True, "sessionEnabled": True},
        started=True,
    )

    def ready_policy(context_key: str = "applicationId") -> str:
        return _policy(
            root_statement(ANALYTICS), service_statement(region, ANALYTICS, app_id, context_key)
        )

    ready = _key(region, ANALYTICS, "alias/emr-analytics", ready_policy())
    disabled = _key(region, ANALYTICS, "alias/emr-disabled", ready_policy())
    kms_backends[ANALYTICS][region].disable_key(disabled.id)
    _key(region, ANALYTICS, "alias/emr-asymmetric", ready_policy(), spec="RSA_2048")
    _key(region, ANALYTICS, "alias/emr-no-service-grant", _policy(root_statement(ANALYTICS)))
    _key(
        region,
        ANALYTICS,
        "alias/emr-wrong-context-key",
        ready_policy("aws:emr-serverless:application-id"),
    )
    world.keys = [
        (ANALYTICS, alias)
        for alias in (
            "alias/emr-analytics",
            "alias/emr-disabled",
            "alias/emr-asymmetric",
            "alias/emr-no-service-grant",
            "alias/emr-wrong-context-key",
        )
    ]

    shared = _key(
        region,
        SECURITY,
        "alias/emr-shared",
        _policy(
            root_statement(SECURITY),
            {
                "Sid": "AllowAnalyticsAccountToUseTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ANALYTICS}:root"},
                "Action": ["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
            },
            service_statement(region, ANALYTICS, app_id, "applicationId"),
        ),
    )
    world.keys.append((SECURITY, "alias/emr-shared"))
    world.shared_key_arn = shared.arn

    world.roles = [
        _role(
            ANALYTICS,
            "emr-session-role",
            EMR_TRUST,
            _allow(["kms:GenerateDataKey", "kms:Decrypt"], [ready.arn, shared.arn]),
        ),
        _role(ANALYTICS, "emr-no-kms-role", EMR_TRUST, _allow(["s3:GetObject"], "*")),
        _role(
            SECURITY,
            "key-usage-auditor",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ANALYTICS}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            _allow(["cloudtrail:LookupEvents", "kms:DescribeKey", "kms:GetKeyPolicy"], "*"),
        ),
    ]
    return world
