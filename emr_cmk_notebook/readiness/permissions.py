"""Readiness beyond the key: the execution role trusts EMR Serverless, and the caller may pass
it and holds the permissions of the way work is started (Livy, Spark Connect, job runs).

The role's trust policy is read with iam:GetRole; the caller's permissions come from its identity
policies alone (the engine in ``core.policy``), as the key checks read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emr_cmk_notebook.core.policy import Decision, InvalidPolicy, Policy, Request, evaluate
from emr_cmk_notebook.readiness import fixes
from emr_cmk_notebook.readiness.calls import Unreadable
from emr_cmk_notebook.readiness.gather import SERVICE_PRINCIPAL, Facts
from emr_cmk_notebook.readiness.identity import Principal, document
from emr_cmk_notebook.readiness.verdict import (
    Check,
    principal_policy_fix,
    unidentified,
    waiting,
)


def role_document(facts: Facts) -> dict[str, Any] | None:
    """The execution role as iam:GetRole answered, when it is the role asked about."""
    role = facts.role
    if isinstance(role, Unreadable) or role.get("Arn") != facts.inputs.role_arn:
        return None
    return role


def _trust_policy(document: Mapping[str, Any], role_arn: str) -> Policy:
    """A trust policy as a resource policy: its statements apply to the role itself."""
    raw = document.get("Statement", [])
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    resource = ("Resource", "NotResource")
    scoped = [
        s if any(k in s for k in resource) else {**s, "Resource": role_arn} for s in statements
    ]
    return Policy.parse({**document, "Statement": scoped})


def role_trust(facts: Facts) -> Check:
    check_id, title = "role_trust", "EMR Serverless may assume the execution role"
    role_arn = facts.inputs.role_arn
    name, account = role_arn.rsplit("/", 1)[-1], role_arn.split(":")[4]
    how = f"run `aws iam get-role --role-name {name} --query Role.AssumeRolePolicyDocument`"
    got, role = facts.role, role_document(facts)
    caller = facts.caller_principal
    if role is None and (caller is None or caller.account != account):
        reason = f"the role is in account {account}, whose IAM cannot be read from here"
        return Check(check_id, title, "unknown", reason, how)
    if isinstance(got, Unreadable):
        if got.missing:
            return waiting(check_id, title, "execution role exists")
        reason = f"the role's trust policy could not be read ({got.brief})"
        return Check(check_id, title, "unknown", reason, how, detail=str(got))
    if role is None:  # GetRole answered for another role of the same name
        reason = f"the role's trust policy could not be read from account {account}"
        return Check(check_id, title, "unknown", reason, how)
    trust = document(role.get("AssumeRolePolicyDocument") or {"Statement": []})
    context = {"aws:SourceAccount": facts.app_account, "aws:SourceArn": facts.app_arn}
    request = Request(SERVICE_PRINCIPAL, "sts:AssumeRole", role_arn, context)
    try:
        decision = evaluate(request, _trust_policy(trust, role_arn))
    except InvalidPolicy as exc:
        reason = "the role's trust policy cannot be evaluated"
        return Check(check_id, title, "unknown", reason, how, detail=str(exc))
    detail = decision.reason.replace("key_policy", "trust policy")
    if decision.allowed:
        return Check(
            check_id, title, "pass", f"its trust policy lets {SERVICE_PRINCIPAL} assume it"
        )
    if decision.decision == "explicit_deny":
        reason = f"its trust policy explicitly denies {SERVICE_PRINCIPAL}: remove that statement"
        return Check(check_id, title, "fail", reason, how, detail=detail)
    reason = (
        f"its trust policy does not let {SERVICE_PRINCIPAL} assume it for application "
        f"{facts.inputs.application_id}"
    )
    found = (fixes.trust_fix(name, account, trust),)
    return Check(check_id, title, "fail", reason, how, found, "static (trust policy)", detail)


TRANSPORT_ACTIONS = {
    "livy": (("emr-serverless:AccessLivyEndpoints", ""),),
    "connect": (
        ("emr-serverless:StartSession", ""),
        ("emr-serverless:GetSession", "/sessions/*"),
        ("emr-serverless:GetSessionEndpoint", "/sessions/*"),
        ("emr-serverless:TerminateSession", "/sessions/*"),
    ),
    "job": (("emr-serverless:StartJobRun", ""),),
}


def _identity_decision(
    principal: Principal,
    documents: Sequence[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, Any],
) -> Decision:
    """The caller's identity policies alone on a same-account resource with no resource policy."""
    account = resource.split(":")[4]
    lets_iam_decide = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "*",
                "Resource": "*",
            }
        ]
    }
    keys = {"aws:PrincipalArn": principal.arn, **context}
    return evaluate(
        Request(principal.caller_arn, action, resource, keys), lets_iam_decide, documents
    )


def _caller_may(
    facts: Facts,
    check_id: str,
    title: str,
    wants: Sequence[tuple[str, str, Mapping[str, Any]]],
    statement: Mapping[str, Any],
    policy_name: str,
) -> Check:
    """Whether the caller's identity policies allow every (action, resource, context) wanted."""
    principal = facts.caller_principal
    actions = [action for action, _, _ in wants]
    if principal is None:
        return unidentified(check_id, title, facts)
    if principal.kind == "root":
        return Check(check_id, title, "pass", f"the account root may call {', '.join(actions)}")
    how = (
        f"run `aws iam simulate-principal-policy --policy-source-arn {principal.arn} "
        f"--action-names {' '.join(actions)}`"
    )
    policies = facts.caller_policies
    if principal.kind == "other" or policies is None or policies.documents is None:
        reason = f"the caller's identity policies could not be read, so {actions[0]} is not checked"
        detail = policies.how if policies is not None else ""
        return Check(check_id, title, "unknown", reason, how, detail=detail)
    missing, denied, said = [], [], []
    for action, resource, context in wants:
        try:
            decision = _identity_decision(principal, policies.documents, action, resource, context)
        except InvalidPolicy as exc:
            reason = "an identity policy of the caller cannot be evaluated"
            return Check(check_id, title, "unknown", reason, how, detail=str(exc))
        if decision.decision == "explicit_deny":
            denied.append(action)
            said.append(decision.reason)
        elif not decision.allowed:
            missing.append(action)
            said.append(decision.reason.replace("key_policy Statement[0]: ", ""))
    source = "identity policies: static"
    if denied:
        reason = f"an identity policy of {principal.arn} explicitly denies {', '.join(denied)}"
        return Check(check_id, title, "fail", reason, how, (), source, "; ".join(said))
    if missing:
        reason = f"no identity policy of {principal.arn} allows {', '.join(missing)}"
        fix = principal_policy_fix(principal, policy_name, [statement])
        return Check(check_id, title, "fail", reason, how, (fix,), source, "; ".join(said))
    return Check(
        check_id, title, "pass", f"identity policies allow {', '.join(actions)}", "", (), source
    )


def caller_pass_role(facts: Facts) -> Check:
    check_id, title = "caller_pass_role", "Caller may pass the execution role to EMR Serverless"
    role = facts.inputs.role_arn
    principal = facts.caller_principal
    if principal is not None and principal.account != role.split(":")[4]:
        reason = (
            f"the role is in account {role.split(':')[4]} and the caller in {principal.account}: "
            "a caller can pass only its own account's roles, so use a role in that account"
        )
        return Check(check_id, title, "fail", reason)
    statement = {
        "Sid": "EmrCmkPassRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": role,
        "Condition": {"StringEquals": {"iam:PassedToService": SERVICE_PRINCIPAL}},
    }
    wants = [("iam:PassRole", role, {"iam:PassedToService": SERVICE_PRINCIPAL})]
    name = "emr-cmk-pass-" + role.rsplit("/", 1)[-1]
    return _caller_may(facts, check_id, title, wants, statement, name)


def caller_transport(facts: Facts) -> Check:
    transport = facts.inputs.transport
    check_id = "caller_transport"
    title = {
        "livy": "Caller may use the application's Livy endpoint",
        "connect": "Caller may start and reach Spark Connect sessions",
        "job": "Caller may start job runs",
    }[transport]
    app_arn = facts.app_arn
    wants = [(action, app_arn + tail, {}) for action, tail in TRANSPORT_ACTIONS[transport]]
    statement = {
        "Sid": "EmrCmk" + transport.capitalize(),
        "Effect": "Allow",
        "Action": [action for action, _, _ in wants],
        "Resource": [app_arn, f"{app_arn}/*"],
    }
    name = f"emr-cmk-{transport}-{facts.inputs.application_id}"
    return _caller_may(facts, check_id, title, wants, statement, name)
