"""The readiness checks: each turns what AWS answered into ``pass``, ``fail``, ``warn`` or
``unknown``, with the reason in plain words and, for a fail, the fix.

Nothing here calls AWS; ``gather`` did. A check never passes on something it could not read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.policy import InvalidPolicy, Policy
from emr_cmk_notebook.readiness import fixes
from emr_cmk_notebook.readiness.access import Access, Status, decide
from emr_cmk_notebook.readiness.calls import Unreadable
from emr_cmk_notebook.readiness.gather import (
    CALLER_ACTIONS,
    ROLE_ACTIONS,
    SERVICE_ACTIONS,
    SERVICE_PRINCIPAL,
    Facts,
    caller_context,
    principal_context,
    service_context,
)
from emr_cmk_notebook.readiness.identity import IdentityPolicies, Principal

_RANK = {"fail": 3, "unknown": 2, "warn": 1, "pass": 0}
_CONTEXT_PREFIX = "kms:encryptioncontext:"


@dataclass(frozen=True)
class Check:
    """One requirement: its verdict, why, how to check by hand, and the fixes for a fail."""

    id: str
    title: str
    status: Status
    reason: str
    how_to_check: str = ""
    fixes: tuple[fixes.Fix, ...] = ()
    source: str = "api"  # "api", "static", or what was simulated and what was static

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "reason": self.reason,
            "how_to_check": self.how_to_check,
            "source": self.source,
            "fixes": [fix.to_dict() for fix in self.fixes],
        }


@dataclass
class _Policy:
    parsed: Policy | None
    text: str | None
    why: str = ""
    how: str = ""


def _key_policy(facts: Facts) -> _Policy:
    raw = facts.key_policy
    arn = facts.key_arn
    how = (
        f"ask the owner of {arn} to run `aws kms get-key-policy --key-id {arn} "
        "--policy-name default` and confirm it has the statement below"
    )
    if isinstance(raw, Unreadable):
        owner = arn.split(":")[4] if arn else "?"
        mine = facts.caller_principal
        where = (
            f" (the key belongs to account {owner}; GetKeyPolicy works only in the key's account)"
            if mine and mine.account != owner
            else ""
        )
        return _Policy(None, None, f"the key policy could not be read: {raw}{where}", how)
    if raw is None:
        return _Policy(None, None, "the key could not be read", "")
    try:
        return _Policy(Policy.parse(raw), raw)
    except InvalidPolicy as exc:
        return _Policy(None, raw, f"the key policy cannot be evaluated: {exc}", how)


def _worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: _RANK[s]) if statuses else "unknown"


def _key_unknown(check_id: str, title: str, facts: Facts) -> Check:
    return Check(check_id, title, "unknown", f"the key could not be read ({facts.key})")


def key_found(facts: Facts) -> Check:
    title = "Key resolves and is visible"
    key = facts.key
    asked = facts.inputs.key
    if isinstance(key, Unreadable):
        if key.missing:
            reason = (
                f"KMS key {asked!r} was not found in {facts.inputs.region} ({key.code}); an alias "
                "name only finds keys in your own account, so give a key ARN for another "
                "account's key"
            )
        else:
            reason = f"the caller cannot see KMS key {asked!r}: {key}"
        how = f"run `aws kms describe-key --key-id {asked} --region {facts.inputs.region}`"
        return Check("key_found", title, "unknown", reason, how)
    shown = f"{asked} resolves to {key['Arn']}" if asked != key["Arn"] else f"{asked} exists"
    return Check("key_found", title, "pass", shown)


_STATE_ADVICE = {
    "Disabled": "KMS answers DisabledException; enable it with `aws kms enable-key --key-id {arn}`",
    "PendingDeletion": (
        "KMS answers KMSInvalidStateException; cancel the deletion with "
        "`aws kms cancel-key-deletion --key-id {arn}` and enable it"
    ),
    "PendingImport": "KMS answers KMSInvalidStateException until key material is imported",
    "Unavailable": "KMS answers KMSInvalidStateException while its custom key store is offline",
}


def key_state(facts: Facts) -> Check:
    title = "Key is enabled"
    if isinstance(facts.key, Unreadable):
        return _key_unknown("key_state", title, facts)
    state, arn = facts.key.get("KeyState", "Enabled"), facts.key["Arn"]
    if state == "Enabled":
        return Check("key_state", title, "pass", "the key is Enabled")
    advice = _STATE_ADVICE.get(state, "KMS answers KMSInvalidStateException").format(arn=arn)
    reason = f"the key is {state}, so EMR Serverless cannot make data keys for disks: {advice}"
    return Check("key_state", title, "fail", reason)


def key_spec(facts: Facts) -> Check:
    title = "Key is a symmetric encryption key"
    if isinstance(facts.key, Unreadable):
        return _key_unknown("key_spec", title, facts)
    spec = facts.key.get("KeySpec", "SYMMETRIC_DEFAULT")
    usage = facts.key.get("KeyUsage", "ENCRYPT_DECRYPT")
    if (spec, usage) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"):
        return Check("key_spec", title, "pass", "SYMMETRIC_DEFAULT with ENCRYPT_DECRYPT")
    reason = (
        f"the key is {spec} with KeyUsage {usage}; disk encryption needs SYMMETRIC_DEFAULT with "
        "ENCRYPT_DECRYPT (KMS answers InvalidKeyUsageException): create a symmetric key"
    )
    return Check("key_spec", title, "fail", reason)


def application_found(facts: Facts) -> Check:
    title = "Application exists"
    app = facts.application
    app_id = facts.inputs.application_id
    if isinstance(app, Unreadable):
        how = (
            f"run `aws emr-serverless get-application --application-id {app_id} "
            f"--region {facts.inputs.region}`"
        )
        return Check("application_found", title, "unknown", f"{app_id}: {app}", how)
    reason = f"{app.get('name', app_id)} ({app_id}) is {app.get('state')} in {facts.app_region}"
    return Check("application_found", title, "pass", reason)


def key_region(facts: Facts) -> Check:
    title = "Key is in the application's region"
    if isinstance(facts.key, Unreadable):
        return _key_unknown("key_region", title, facts)
    key_at, app_at = facts.key["Arn"].split(":")[3], facts.app_region
    if key_at == app_at:
        kind = " (a multi-Region key)" if facts.key.get("MultiRegion") else ""
        return Check("key_region", title, "pass", f"both are in {app_at}{kind}")
    replicas = facts.key.get("MultiRegionConfiguration", {}).get("ReplicaKeys", [])
    replica = next((r["Arn"] for r in replicas if r.get("Region") == app_at), None)
    reason = f"the key is in {key_at} and the application in {app_at}; KMS keys are regional"
    if replica:
        reason += f"; use the multi-Region replica {replica}"
    return Check("key_region", title, "fail", reason)


def role_found(facts: Facts) -> Check:
    title = "Execution role exists"
    policies, simulated = facts.role_policies, facts.role_simulation
    role = facts.inputs.role_arn
    if policies.exists or isinstance(simulated, dict):
        return Check("role_found", title, "pass", f"{role} exists")
    reason = f"{role} was not found: {policies.how}"
    if policies.exists is None:
        reason = f"whether {role} exists could not be read: {policies.how}"
    how = f"run `aws iam get-role --role-name {role.rsplit('/', 1)[-1]}`"
    return Check("role_found", title, "unknown", reason, how)


def _context_key_cause(access: Access, sent: Sequence[str]) -> str | None:
    """Name a statement conditioned on an encryption context key the service never sends."""
    if access.decision is None:
        return None
    for statement in access.decision.statements:
        key = (statement.failed_condition or "").partition(" ")[2]
        if not key.lower().startswith(_CONTEXT_PREFIX):
            continue
        name = key[len(_CONTEXT_PREFIX) :]
        if name not in sent:
            return (
                f"{statement.name} tests {key}, an encryption context key EMR Serverless never "
                f"sends (it sends {', '.join(sent)}); AWS documents "
                "kms:EncryptionContext:applicationId"
            )
    return None


def _summarise(actions: Sequence[str], verdicts: Sequence[Access]) -> tuple[Status, str]:
    status = _worst([v.status for v in verdicts])
    failing = [(a, v) for a, v in zip(actions, verdicts, strict=True) if v.status == status]
    if status == "pass":
        return status, f"{', '.join(actions)} allowed: {verdicts[0].reason}"
    return status, "; ".join(f"{a}: {v.reason}" for a, v in failing)


def service_access(facts: Facts) -> Check:
    check_id, title = "service_access", "Key policy lets EMR Serverless use the key"
    if facts.key_arn is None:
        return _key_unknown(check_id, title, facts)
    policy = _key_policy(facts)
    context = service_context(facts.inputs, facts.app_arn, facts.app_account)
    encryption = {**facts.inputs.context, "applicationId": facts.inputs.application_id}
    grants = facts.grants if isinstance(facts.grants, list) else None
    verdicts = [
        decide(
            principal=SERVICE_PRINCIPAL,
            account=None,
            action=action,
            key_arn=facts.key_arn,
            context=context,
            key_policy=policy.parsed,
            identity=None,
            grants=grants,
            encryption_context=encryption,
        )
        for action in SERVICE_ACTIONS
    ]
    status, reason = _summarise(SERVICE_ACTIONS, verdicts)
    if policy.parsed is None:
        status, reason = "unknown", policy.why
    cause = next(filter(None, (_context_key_cause(v, list(encryption)) for v in verdicts)), None)
    if cause:
        reason = f"{cause}. {reason}"
    found: tuple[fixes.Fix, ...] = ()
    if status == "unknown" or any(v.key_side_missing for v in verdicts):
        statement = fixes.service_statement(
            facts.app_arn, facts.app_account, facts.inputs.application_id
        )
        found = (fixes.key_policy_fix(facts.key_arn, facts.app_region, statement, policy.text),)
    return Check(check_id, title, status, reason, policy.how, found, "static (key policy)")


def _principal_check(
    facts: Facts,
    check_id: str,
    title: str,
    principal: Principal | None,
    policies: IdentityPolicies | None,
    simulated: Any,
    actions: Sequence[str],
    context_of: Callable[[Principal, str], dict[str, Any]],
    via_region: str | None,
) -> Check:
    if facts.key_arn is None:
        return _key_unknown(check_id, title, facts)
    if principal is None:
        return Check(
            check_id, title, "unknown", f"the caller could not be identified: {facts.caller}"
        )
    policy = _key_policy(facts)
    simulation = simulated if isinstance(simulated, dict) else {}
    identity = policies.documents if policies is not None else None
    grants = facts.grants if isinstance(facts.grants, list) else None
    encryption = {**facts.inputs.context, "applicationId": facts.inputs.application_id}
    verdicts = [
        decide(
            principal=principal.caller_arn,
            account=principal.account,
            action=action,
            key_arn=facts.key_arn,
            context=context_of(principal, action),
            key_policy=policy.parsed,
            identity=identity,
            simulated=simulation.get(action),
            grants=grants,
            encryption_context=None if action == "kms:DescribeKey" else encryption,
        )
        for action in actions
    ]
    status, reason = _summarise(actions, verdicts)
    if status == "unknown" and policy.why:
        reason = f"{reason} ({policy.why})"
    found: list[fixes.Fix] = []
    identity_missing = any(v.identity_side_missing for v in verdicts)
    same_account = principal.account == facts.key_arn.split(":")[4]
    key_missing = any(v.key_side_missing for v in verdicts)
    if identity_missing and principal.kind in ("user", "role"):
        kind = "role_policy" if principal.kind == "role" else "user_policy"
        statement = fixes.identity_statement(facts.key_arn, actions, via_region)
        found.append(fixes.identity_fix(kind, principal.name, facts.key_arn, statement))
    # In the key's own account a key policy naming the principal needs no identity policy,
    # so the key owner can fix it alone (this is what --apply writes).
    alternative = identity_missing and same_account and policy.parsed is not None
    if key_missing or alternative or (status == "unknown" and policy.parsed is None):
        statement = fixes.principal_key_statement(principal.arn, actions, via_region)
        note = "or, instead of the identity policy above, this" if alternative else ""
        found.append(
            fixes.key_policy_fix(facts.key_arn, facts.app_region, statement, policy.text, note)
        )
    side = "simulated with iam:SimulatePrincipalPolicy" if simulation else "static"
    how = policy.how
    if not how and policies is not None and not policies.readable:
        how = policies.how
    source = f"identity policies: {side}; key policy: static"
    return Check(check_id, title, status, reason, how, tuple(found), source)


def caller_access(facts: Facts) -> Check:
    region = facts.app_region
    return _principal_check(
        facts,
        "caller_access",
        "Caller may use the key through EMR Serverless",
        facts.caller_principal,
        facts.caller_policies,
        facts.caller_simulation,
        CALLER_ACTIONS,
        lambda principal, action: caller_context(facts.inputs, principal, action),
        region,
    )


def role_access(facts: Facts) -> Check:
    return _principal_check(
        facts,
        "role_access",
        "Execution role may use the key",
        Principal.parse(facts.inputs.role_arn),
        facts.role_policies,
        facts.role_simulation,
        ROLE_ACTIONS,
        lambda principal, action: principal_context(facts.inputs, principal, action),
        None,
    )


def grants(facts: Facts) -> Check:
    title = "Grants on the key are counted"
    found = facts.grants
    if found is None:
        return _key_unknown("grants", title, facts)
    if isinstance(found, Unreadable):
        reason = f"grants could not be listed ({found}); access that only a grant gives is not seen"
        how = f"run `aws kms list-grants --key-id {facts.key_arn}`"
        return Check("grants", title, "unknown", reason, how)
    names = {facts.inputs.role_arn.lower(), SERVICE_PRINCIPAL}
    if facts.caller_principal is not None:
        names |= {facts.caller_principal.arn.lower(), facts.caller_principal.caller_arn.lower()}
    relevant = [g for g in found if str(g.get("GranteePrincipal", "")).lower() in names]
    reason = f"{len(found)} grant(s) on the key, {len(relevant)} for the role, caller or service"
    return Check("grants", title, "pass", reason)


def context_secrets(facts: Facts) -> Check:
    title = "Encryption context has no secrets"
    found = DiskEncryption(facts.inputs.key, facts.inputs.context).secret_warnings()
    if found:
        return Check("context_secrets", title, "warn", "; ".join(found))
    if not facts.inputs.context:
        return Check("context_secrets", title, "pass", "no custom encryption context")
    reason = "no pair looks like a secret (the context is logged in plaintext in CloudTrail)"
    return Check("context_secrets", title, "pass", reason)


ALL_CHECKS = (
    key_found,
    key_state,
    key_spec,
    application_found,
    key_region,
    role_found,
    service_access,
    caller_access,
    role_access,
    grants,
    context_secrets,
)


def run_checks(facts: Facts) -> list[Check]:
    """Every check, in the order a user reads them."""
    return [check(facts) for check in ALL_CHECKS]
