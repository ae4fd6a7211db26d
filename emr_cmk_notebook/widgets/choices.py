"""What the pickers offer: applications, execution roles EMR Serverless may assume, and keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.apps import ApplicationView, get_application, live_applications
from emr_cmk_notebook.clients import AwsTarget

EMR_SERVERLESS = "emr-serverless.amazonaws.com"
# AWS managed keys (alias/aws/...) cannot carry a key policy for EMR Serverless disks.
_AWS_MANAGED = "alias/aws/"


@dataclass(frozen=True)
class Choices:
    """The options of the launcher's pickers, as read from the account."""

    applications: list[ApplicationView]
    roles: list[str]
    aliases: list[str]


def application_label(app: ApplicationView) -> str:
    """One line per application: name, id, release, state and interactive endpoints."""
    livy = "Livy on" if app.livy_enabled else "Livy off"
    sessions = "sessions on" if app.sessions_enabled else "sessions off"
    return f"{app.name} ({app.id}) · {app.release} · {app.state} · {livy} · {sessions}"


def list_applications(target: AwsTarget) -> list[ApplicationView]:
    """Every application the caller can see, with its release and interactive settings."""
    ids = [app["id"] for app in live_applications(target)]
    return [get_application(target, app_id) for app_id in ids]


def trusts_emr_serverless(trust: Any) -> bool:
    """True when a role's trust policy lets EMR Serverless assume it (conditions not evaluated)."""
    if isinstance(trust, str):
        import json
        import urllib.parse

        trust = json.loads(urllib.parse.unquote(trust))
    statements = trust.get("Statement", []) if isinstance(trust, dict) else []
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not {"sts:AssumeRole", "sts:*", "*"} & set(actions):
            continue
        principal = statement.get("Principal")
        if principal == "*" or EMR_SERVERLESS in _as_list((principal or {}).get("Service")):
            return True
    return False


def list_execution_roles(target: AwsTarget) -> list[str]:
    """ARNs of the caller's roles that EMR Serverless may assume."""
    iam = target.client("iam")
    return sorted(
        role["Arn"]
        for page in iam.get_paginator("list_roles").paginate()
        for role in page.get("Roles", [])
        if trusts_emr_serverless(role.get("AssumeRolePolicyDocument", {}))
    )


def list_key_aliases(target: AwsTarget) -> list[str]:
    """Aliases of customer managed keys in the caller's account and region."""
    kms = target.client("kms")
    return sorted(
        alias["AliasName"]
        for page in kms.get_paginator("list_aliases").paginate()
        for alias in page.get("Aliases", [])
        if alias.get("TargetKeyId") and not alias["AliasName"].startswith(_AWS_MANAGED)
    )


def load(target: AwsTarget) -> Choices:
    """Everything the pickers offer, in three listings."""
    return Choices(
        list_applications(target), list_execution_roles(target), list_key_aliases(target)
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
