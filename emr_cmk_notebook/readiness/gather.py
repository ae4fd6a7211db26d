"""Everything readiness reads from AWS, fetched concurrently in two rounds.

Round one needs only the input: the caller (STS), the key (DescribeKey), the application, the
execution role (GetRole, for its trust policy) and the account's IAM. Round two needs the key ARN
or the caller: the key policy, the grants and the identity-policy simulations.
Each task starts as soon as what it needs has arrived.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.arns import application_arn
from emr_cmk_notebook.keys import key_metadata
from emr_cmk_notebook.readiness.calls import (
    Calls,
    Unreadable,
    attempt,
    client,
    raise_if_nothing_answered,
)
from emr_cmk_notebook.readiness.identity import (
    AccountDetails,
    IdentityPolicies,
    Principal,
    Simulated,
    account_details,
    identity_policies,
    simulate,
)

SERVICE_PRINCIPAL = "emr-serverless.amazonaws.com"
SERVICE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
CALLER_ACTIONS = ("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt")
ROLE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
TRANSPORTS = ("livy", "connect", "job")


@dataclass(frozen=True)
class Inputs:
    """What the user asked about."""

    key: str
    application_id: str
    role_arn: str
    context: Mapping[str, str]
    region: str
    transport: str = "livy"  # one of TRANSPORTS: what the caller will start


@dataclass
class Facts:
    """What AWS answered; each field is the answer or an ``Unreadable``."""

    inputs: Inputs
    caller: dict[str, Any] | Unreadable
    key: dict[str, Any] | Unreadable
    application: dict[str, Any] | Unreadable
    role: dict[str, Any] | Unreadable
    key_policy: str | Unreadable | None
    grants: list[dict[str, Any]] | Unreadable | None
    caller_policies: IdentityPolicies | None
    role_policies: IdentityPolicies
    caller_simulation: Simulated | Unreadable | None
    role_simulation: Simulated | Unreadable | None

    @property
    def key_arn(self) -> str | None:
        return None if isinstance(self.key, Unreadable) else self.key["Arn"]

    @property
    def caller_principal(self) -> Principal | None:
        return None if isinstance(self.caller, Unreadable) else Principal.parse(self.caller["Arn"])

    @property
    def app_account(self) -> str:
        """The application's account: from its ARN, else the caller's, else the role's."""
        if not isinstance(self.application, Unreadable):
            return self.application["arn"].split(":")[4]
        if not isinstance(self.caller, Unreadable):
            return self.caller["Account"]
        return Principal.parse(self.inputs.role_arn).account

    @property
    def app_region(self) -> str:
        if not isinstance(self.application, Unreadable):
            return self.application["arn"].split(":")[3]
        return self.inputs.region

    @property
    def app_arn(self) -> str:
        return application_arn(self.app_region, self.app_account, self.inputs.application_id)


def service_context(inputs: Inputs, app_arn: str, account: str) -> dict[str, Any]:
    """The condition keys of the service's GenerateDataKey and Decrypt for worker disks."""
    context = {**inputs.context, "applicationId": inputs.application_id}
    keys: dict[str, Any] = {"aws:SourceArn": app_arn, "aws:SourceAccount": account}
    keys.update({f"kms:EncryptionContext:{k}": v for k, v in context.items()})
    keys["kms:EncryptionContextKeys"] = list(context)
    keys["kms:CallerAccount"] = account
    return keys


def carries_encryption_context(action: str) -> bool:
    """Whether the request of ``action`` carries the encryption context (DescribeKey's does not)."""
    return action != "kms:DescribeKey"


def principal_context(inputs: Inputs, principal: Principal, action: str) -> dict[str, Any]:
    """The condition keys of a call by a user or role (``kms:ViaService`` for the caller's)."""
    keys: dict[str, Any] = {
        "kms:CallerAccount": principal.account,
        "aws:PrincipalAccount": principal.account,
        "aws:PrincipalArn": principal.arn,
    }
    if carries_encryption_context(action):
        context = {**inputs.context, "applicationId": inputs.application_id}
        keys.update({f"kms:EncryptionContext:{k}": v for k, v in context.items()})
        keys["kms:EncryptionContextKeys"] = list(context)
    return keys


def caller_context(inputs: Inputs, principal: Principal, action: str) -> dict[str, Any]:
    """A caller's call as EMR Serverless makes it on the caller's behalf."""
    via = {"kms:ViaService": f"emr-serverless.{inputs.region}.amazonaws.com"}
    return {**principal_context(inputs, principal, action), **via}


def _simulation_context(
    inputs: Inputs, principal: Principal, caller: bool, action: str
) -> dict[str, Any]:
    keys = (caller_context if caller else principal_context)(inputs, principal, action)
    # The simulator fills the aws: principal keys itself.
    return {k: v for k, v in keys.items() if not k.startswith("aws:")}


def by_request_context(actions: Sequence[str]) -> list[tuple[str, ...]]:
    """``actions`` in groups whose requests carry the same context keys: one simulation each,
    since one SimulatePrincipalPolicy call applies one context to all its actions."""
    groups = [
        tuple(a for a in actions if not carries_encryption_context(a)),
        tuple(a for a in actions if carries_encryption_context(a)),
    ]
    return [group for group in groups if group]


def _merged(*parts: Simulated | Unreadable | None) -> Simulated | Unreadable | None:
    """One answer from the simulations of each group: the first that failed, else all decisions."""
    if any(part is None for part in parts):
        return None
    failed = [part for part in parts if isinstance(part, Unreadable)]
    if failed:
        return failed[0]
    return {action: decision for part in parts for action, decision in part.items()}


def gather(inputs: Inputs, target: AwsTarget, *, workers: int = 16) -> Facts:
    """Read everything the checks need, concurrently (``workers=1`` runs the calls one by one)."""
    kms, sts, iam = client(target, "kms"), client(target, "sts"), client(target, "iam")
    emr = client(target, "emr-serverless")
    # One try only: the simulator is a bonus, and retrying a refusal only adds latency.
    simulator = client(target, "iam", max_attempts=1)
    role = Principal.parse(inputs.role_arn)

    def key_policy(key: dict[str, Any] | Unreadable) -> str | Unreadable | None:
        if isinstance(key, Unreadable):
            return None
        call = lambda: kms.get_key_policy(KeyId=key["Arn"], PolicyName="default")["Policy"]  # noqa: E731
        return attempt("kms:GetKeyPolicy", call)

    def grants(key: dict[str, Any] | Unreadable) -> list[dict[str, Any]] | Unreadable | None:
        if isinstance(key, Unreadable):
            return None
        pages = kms.get_paginator("list_grants").paginate(KeyId=key["Arn"])
        return attempt("kms:ListGrants", lambda: pages.build_full_result()["Grants"])

    def policies(
        details: AccountDetails | Unreadable,
        caller: dict[str, Any] | Unreadable,
        principal: Principal | None,
    ) -> IdentityPolicies | None:
        if principal is None:
            if isinstance(caller, Unreadable):
                return None
            principal = Principal.parse(caller["Arn"])
        account = principal.account if isinstance(caller, Unreadable) else caller["Account"]
        return identity_policies(iam, details, account, principal)

    def simulation(
        key: dict[str, Any] | Unreadable,
        caller: dict[str, Any] | Unreadable | None,
        actions: tuple[str, ...],
    ) -> Simulated | Unreadable | None:
        if isinstance(key, Unreadable) or isinstance(caller, Unreadable):
            return None
        principal = role if caller is None else Principal.parse(caller["Arn"])
        if principal.kind not in ("user", "role"):
            return None
        context = _simulation_context(inputs, principal, caller is not None, actions[0])
        return simulate(simulator, principal, actions, key["Arn"], context)

    def simulations(
        calls: Calls, key: Future[Any], caller: Future[Any] | None, actions: Sequence[str]
    ) -> Future[Simulated | Unreadable | None]:
        parts = [calls.run(simulation, key, caller, group) for group in by_request_context(actions)]
        return calls.run(_merged, *parts)

    with Calls(workers) as calls:
        caller = calls.run(attempt, "sts:GetCallerIdentity", sts.get_caller_identity)
        key = calls.run(attempt, "kms:DescribeKey", lambda: key_metadata(kms, inputs.key))
        app = calls.run(
            attempt,
            "emr-serverless:GetApplication",
            lambda: emr.get_application(applicationId=inputs.application_id)["application"],
        )
        got_role = calls.run(
            attempt, "iam:GetRole", lambda: iam.get_role(RoleName=role.name)["Role"]
        )
        details = calls.run(account_details, iam)
        raise_if_nothing_answered([f.result() for f in (caller, key, app, got_role)])
        found = {
            "key_policy": calls.run(key_policy, key),
            "grants": calls.run(grants, key),
            "caller_policies": calls.run(policies, details, caller, None),
            "role_policies": calls.run(policies, details, caller, role),
            "caller_simulation": simulations(calls, key, caller, CALLER_ACTIONS),
            "role_simulation": simulations(calls, key, None, ROLE_ACTIONS),
        }
        return Facts(
            inputs=inputs,
            caller=caller.result(),
            key=key.result(),
            application=app.result(),
            role=got_role.result(),
            **{name: future.result() for name, future in found.items()},
        )
