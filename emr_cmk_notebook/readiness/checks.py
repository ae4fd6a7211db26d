"""The readiness checks: each turns what AWS answered into ``pass``, ``fail``, ``warn`` or
``unknown``, with the reason in plain words and, for a fail, the fix.

Nothing here calls AWS; ``gather`` did. A check never passes on something it could not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.core.arns import KEY_ARN_PATTERN
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.policy import InvalidPolicy, Policy
from emr_cmk_notebook.keys import KeyFacts
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
    carries_encryption_context,
    principal_context,
    service_context,
)
from emr_cmk_notebook.readiness.identity import IdentityPolicies, Principal
from emr_cmk_notebook.readiness.permissions import (
    caller_pass_role,
    caller_transport,
    role_document,
    role_trust,
)
from emr_cmk_notebook.readiness.verdict import (
    Check,
    principal_policy_fix,
    unidentified,
    waiting,
)

_RANK = {"fail": 3, "unknown": 2, "warn": 1, "pass": 0}
_CONTEXT_PREFIX = "kms:encryptioncontext:"


@dataclass
class _Policy:
    parsed: Policy | None
    text: str | None
    why: str = ""
    how: str = ""
    detail: str = ""


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
        why = f"the key policy could not be read ({raw.brief}){where}"
        return _Policy(None, None, why, how, str(raw))
    if raw is None:
        return _Policy(None, None, "the key could not be read", "")
    try:
        return _Policy(Policy.parse(raw), raw)
    except InvalidPolicy as exc:
        return _Policy(None, raw, "the key policy cannot be evaluated", how, str(exc))


def _worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: _RANK[s]) if statuses else "unknown"


CALLER_READS_KEY = "caller can read the key"
CUSTOMER_MANAGED = "a customer managed key"
_AWS_ALIAS = re.compile(r"(?:^|:)alias/aws/")


def aws_managed(facts: Facts) -> bool:
    """An AWS managed key (KeyManager AWS; only they carry ``alias/aws/...`` names)."""
    if _AWS_ALIAS.search(facts.inputs.key):
        return True
    return not isinstance(facts.key, Unreadable) and facts.key.get("KeyManager") == "AWS"


def _key_waits_on(facts: Facts, *, policy: bool) -> str | None:
    """What the checks of the key wait on, or None; ``policy`` for those of its key policy."""
    key = facts.key
    if isinstance(key, Unreadable):
        if key.denied:
            return CALLER_READS_KEY
        return "the key is found" if key.missing else "the key can be read"
    if policy and aws_managed(facts):
        return CUSTOMER_MANAGED
    return None


def key_found(facts: Facts) -> Check:
    title = "Key resolves and is visible"
    key = facts.key
    asked = facts.inputs.key
    if isinstance(key, Unreadable):
        how = f"run `aws kms describe-key --key-id {asked} --region {facts.inputs.region}`"
        if key.denied:
            return Check("key_found", title, "unknown", f"waits on: {CALLER_READS_KEY}", how)
        if key.missing:
            reason = (
                f"KMS key {asked!r} was not found in {facts.inputs.region}: an alias name only "
                "finds keys in your own account, so give a key ARN for another account's key"
            )
        else:
            reason = f"KMS key {asked!r} could not be read ({key.brief})"
        return Check("key_found", title, "unknown", reason, how, detail=str(key))
    shown = f"{asked} resolves to {key['Arn']}" if asked != key["Arn"] else f"{asked} exists"
    return Check("key_found", title, "pass", shown)


def key_manager(facts: Facts) -> Check:
    title = "Key is a customer managed key"
    on = _key_waits_on(facts, policy=False)
    if on:
        return waiting("key_manager", title, on)
    if aws_managed(facts):
        reason = (
            f"{facts.inputs.key} is an AWS managed key, which cannot encrypt EMR Serverless disks "
            "and whose key policy cannot be changed: create a customer managed key and use it"
        )
        how = (
            f"run `aws kms create-key --region {facts.app_region} --description "
            "'EMR Serverless disks'` and give that key's ARN"
        )
        return Check("key_manager", title, "fail", reason, how)
    return Check("key_manager", title, "pass", "the key is customer managed")


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
    on = _key_waits_on(facts, policy=False)
    if on or isinstance(facts.key, Unreadable):
        return waiting("key_state", title, on or "")
    key = KeyFacts.of(facts.key)
    if key.enabled:
        return Check("key_state", title, "pass", f"the key is {key.state}")
    advice = _STATE_ADVICE.get(key.state, "KMS answers KMSInvalidStateException")
    reason = (
        f"the key is {key.state}, so EMR Serverless cannot make data keys for disks: "
        f"{advice.format(arn=key.arn)}"
    )
    return Check("key_state", title, "fail", reason)


def key_spec(facts: Facts) -> Check:
    title = "Key is a symmetric encryption key"
    on = _key_waits_on(facts, policy=False)
    if on or isinstance(facts.key, Unreadable):
        return waiting("key_spec", title, on or "")
    key = KeyFacts.of(facts.key)
    if key.symmetric:
        return Check("key_spec", title, "pass", f"{key.key_spec} with {key.key_usage}")
    reason = (
        f"the key is {key.key_spec} with KeyUsage {key.key_usage}; disk encryption needs "
        "SYMMETRIC_DEFAULT with ENCRYPT_DECRYPT (KMS answers InvalidKeyUsageException): "
        "create a symmetric key"
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
        reason = f"application {app_id} could not be read ({app.brief})"
        return Check("application_found", title, "unknown", reason, how, detail=str(app))
    reason = f"{app.get('name', app_id)} ({app_id}) is {app.get('state')} in {facts.app_region}"
    return Check("application_found", title, "pass", reason)


def key_region(facts: Facts) -> Check:
    title = "Key is in the application's region"
    on = _key_waits_on(facts, policy=False)
    if on or isinstance(facts.key, Unreadable):
        return waiting("key_region", title, on or "")
    key_at, app_at = KeyFacts.of(facts.key).region, facts.app_region
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
    if policies.exists or isinstance(simulated, dict) or role_document(facts) is not None:
        return Check("role_found", title, "pass", f"{role} exists")
    reason = f"{role} was not found in its account's IAM"
    if policies.exists is None:
        reason = f"whether {role} exists could not be read"
    how = f"run `aws iam get-role --role-name {role.rsplit('/', 1)[-1]}`"
    return Check("role_found", title, "unknown", reason, how, detail=policies.how)


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


def _summarise(
    who: str, actions: Sequence[str], verdicts: Sequence[Access]
) -> tuple[Status, str, str]:
    """The worst verdict, one sentence for it, and the engine's reason for each action."""
    status = _worst([v.status for v in verdicts])
    failing = [(a, v) for a, v in zip(actions, verdicts, strict=True) if v.status == status]
    if status == "pass":
        return status, f"{', '.join(actions)} allowed: {verdicts[0].reason}", ""
    detail = "; ".join(f"{a}: {v.reason}" for a, v in failing)
    first = failing[0][1]
    if status != "fail":
        return status, first.reason, detail if len(failing) > 1 else ""
    names = ", ".join(a for a, _ in failing)
    if first.explicit_deny:
        why = "a statement explicitly denies it"
    elif first.key_side_missing and first.identity_side_missing:
        why = "neither the key policy nor an identity policy allows it"
    elif first.key_side_missing:
        why = "the key policy does not allow it"
    elif first.identity_side_missing:
        why = "no identity policy allows it"
    else:
        return status, f"{names}: {first.reason}", detail
    near = [m for m in (first.decision.statements if first.decision else []) if m.near_miss]
    if near and first.key_side_missing:
        why += f" (closest: {near[0].name}: {near[0].near_miss})"
    return status, f"{who} may not call {names}: {why}", detail


def _details(*said: str) -> str:
    return "; ".join(filter(None, said))


def service_access(facts: Facts) -> Check:
    check_id, title = "service_access", "Key policy lets EMR Serverless use the key"
    on = _key_waits_on(facts, policy=True)
    if on or facts.key_arn is None:
        return waiting(check_id, title, on or "")
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
    status, reason, said = _summarise(SERVICE_PRINCIPAL, SERVICE_ACTIONS, verdicts)
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
        fix = fixes.key_policy_fix(facts.key_arn, facts.app_region, [statement], policy.text)
        found = (fix,)
    source = "static (key policy)"
    detail = _details(said, policy.detail)
    return Check(check_id, title, status, reason, policy.how, found, source, detail)


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
    on = _key_waits_on(facts, policy=True)
    if on or facts.key_arn is None:
        return waiting(check_id, title, on or "")
    if principal is None:
        return unidentified(check_id, title, facts)
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
            encryption_context=encryption if carries_encryption_context(action) else None,
        )
        for action in actions
    ]
    status, reason, summary = _summarise(principal.caller_arn, actions, verdicts)
    if status == "unknown" and policy.why:
        reason = f"{reason} ({policy.why})"
    found: list[fixes.Fix] = []
    identity_missing = any(v.identity_side_missing for v in verdicts)
    same_account = principal.account == facts.key_arn.split(":")[4]
    key_missing = any(v.key_side_missing for v in verdicts)
    if identity_missing and principal.kind in ("user", "role"):
        statements = fixes.identity_statements(facts.key_arn, actions, via_region)
        found.append(principal_policy_fix(principal, _key_policy_name(facts.key_arn), statements))
    # In the key's own account a key policy naming the principal needs no identity policy,
    # so the key owner can fix it alone (this is what --apply writes).
    alternative = identity_missing and same_account and policy.parsed is not None
    # Unread, the key policy may lack this principal: another account's key needs it named.
    unread = policy.parsed is None and (status == "unknown" or not same_account)
    if key_missing or alternative or (unread and status != "pass"):
        statements = fixes.principal_key_statements(principal.arn, actions, via_region)
        note = "or, instead of the identity policy above, this" if alternative else ""
        if unread:
            note = _UNREAD_KEY_POLICY.format(account=principal.account)
        found.append(
            fixes.key_policy_fix(facts.key_arn, facts.app_region, statements, policy.text, note)
        )
    side = "simulated with iam:SimulatePrincipalPolicy" if simulation else "static"
    unreadable = policies.how if policies is not None and not policies.readable else ""
    detail = _details(summary, policy.detail, unreadable)
    source = f"identity policies: {side}; key policy: static"
    return Check(check_id, title, status, reason, policy.how, tuple(found), source, detail)


def _key_policy_name(key: str) -> str:
    tail = key.rsplit("/", 1)[-1] if KEY_ARN_PATTERN.fullmatch(key) else "disk-key"
    return f"emr-cmk-{tail}"


def _refused_key(facts: Facts, principal: Principal) -> tuple[str, str | None]:
    """The key a refused DescribeKey was about, as (resource, alias) for an identity statement.

    Its ARN comes from the input or from the refusal (KMS names the key ARN in it); failing that,
    an alias in the caller's own account, matched with ``kms:ResourceAliases``.
    """
    asked = facts.inputs.key
    said = facts.key.message if isinstance(facts.key, Unreadable) else ""
    found = KEY_ARN_PATTERN.fullmatch(asked) or KEY_ARN_PATTERN.search(said)
    if found:
        return found.group(0), None
    partition = principal.arn.split(":")[1] or "aws"
    region = facts.inputs.region
    if ":alias/" in asked:
        fields = asked.split(":")
        region, alias = fields[3], "alias/" + asked.split(":alias/", 1)[1]
        return f"arn:{partition}:kms:{region}:{fields[4]}:key/*", alias
    if asked.startswith("alias/"):
        return f"arn:{partition}:kms:{region}:{principal.account}:key/*", asked
    return f"arn:{partition}:kms:{region}:{principal.account}:key/{asked}", None


_UNREAD_KEY_POLICY = (
    "needed only when the key policy does not let account {account}'s IAM policies decide, "
    "e.g. for another account's key"
)


def _caller_refused(facts: Facts, check_id: str, title: str) -> Check:
    """The root cause when KMS refuses the caller DescribeKey: both halves of the fix."""
    principal = facts.caller_principal
    asked = facts.inputs.key
    how = f"run `aws kms describe-key --key-id {asked} --region {facts.inputs.region}`"
    if principal is None:
        return unidentified(check_id, title, facts)
    resource, alias = _refused_key(facts, principal)
    shown = resource if alias is None and "*" not in resource else asked
    reason = (
        f"the caller may not read the key: KMS refused {principal.caller_arn} "
        f"kms:DescribeKey on {shown}"
    )
    found: list[fixes.Fix] = []
    region = facts.app_region
    if principal.kind in ("user", "role"):
        statements = fixes.identity_statements(resource, CALLER_ACTIONS, region, alias)
        found.append(principal_policy_fix(principal, _key_policy_name(resource), statements))
    if principal.kind != "other":
        key_id = resource if alias is None and "*" not in resource else asked
        key_region = key_id.split(":")[3] if key_id.startswith("arn:") else facts.inputs.region
        note = _UNREAD_KEY_POLICY.format(account=principal.account)
        statements = fixes.principal_key_statements(principal.arn, CALLER_ACTIONS, region)
        found.append(fixes.key_policy_fix(key_id, key_region, statements, None, note))
    detail = str(facts.key)
    return Check(check_id, title, "fail", reason, how, tuple(found), "api", detail)


def caller_access(facts: Facts) -> Check:
    region = facts.app_region
    key = facts.key
    if isinstance(key, Unreadable) and key.denied:
        return _caller_refused(
            facts, "caller_access", "Caller may use the key through EMR Serverless"
        )
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


# What each transport's start needs of the caller: (action, resource under the application).
# GetSession, GetSessionEndpoint and TerminateSession act on a session of the application.
def grants(facts: Facts) -> Check:
    title = "Grants on the key are counted"
    found = facts.grants
    on = _key_waits_on(facts, policy=True)
    if on or found is None:
        return waiting("grants", title, on or "")
    if isinstance(found, Unreadable):
        reason = (
            f"grants could not be listed ({found.brief}), so access only a grant gives is not seen"
        )
        how = f"run `aws kms list-grants --key-id {facts.key_arn}`"
        return Check("grants", title, "unknown", reason, how, detail=str(found))
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
    key_manager,
    key_state,
    key_spec,
    application_found,
    key_region,
    role_found,
    role_trust,
    service_access,
    caller_access,
    caller_pass_role,
    caller_transport,
    role_access,
    grants,
    context_secrets,
)


def run_checks(facts: Facts) -> list[Check]:
    """Every check, in the order a user reads them."""
    return [check(facts) for check in ALL_CHECKS]
