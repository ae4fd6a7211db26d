"""One principal's access to the key for one action, from whatever could be read.

The key policy side is always static (the engine on the key policy); the identity side is the
simulator's answer when there is one, else the engine on the policies that could be read. When
either side is missing the answer is ``unknown`` unless the other side alone settles it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from emr_cmk_notebook.core.grants import granting_grant
from emr_cmk_notebook.core.policy import Decision, Policy, Request, evaluate

Status = Literal["pass", "fail", "warn", "unknown"]


@dataclass(frozen=True)
class Access:
    """The verdict for one action, which side is missing, and how it was decided."""

    status: Status
    reason: str
    key_side_missing: bool = False
    identity_side_missing: bool = False
    explicit_deny: bool = False
    decision: Decision | None = None


def _allow(action: str, key_arn: str) -> dict[str, Any]:
    return {"Statement": [{"Effect": "Allow", "Action": action, "Resource": key_arn}]}


def _account_root_policy(account: str) -> dict[str, Any]:
    root = f"arn:aws:iam::{account}:root"
    return {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}
        ]
    }


def decide(
    *,
    principal: str,
    account: str | None,
    action: str,
    key_arn: str,
    context: Mapping[str, Any],
    key_policy: Policy | None,
    identity: Sequence[Mapping[str, Any]] | None,
    simulated: str | None = None,
    grants: Sequence[Mapping[str, Any]] | None = None,
    encryption_context: Mapping[str, str] | None = None,
) -> Access:
    """Decide one call; ``account`` is None for a service principal (only the key policy counts)."""
    service = account is None
    request = Request(principal, action, key_arn, dict(context))
    if simulated == "explicitDeny":
        return Access("fail", f"an identity policy explicitly denies {action}", explicit_deny=True)
    if simulated is not None:
        identity = [_allow(action, key_arn)] if simulated == "allowed" else []
    grant = granting_grant(grants or (), principal, action, encryption_context)
    key_account = key_arn.split(":")[4]
    if key_policy is not None and (identity is not None or service):
        decision = evaluate(request, key_policy, identity or [])
        if decision.allowed:
            return Access("pass", decision.reason, decision=decision)
        if decision.decision == "explicit_deny":
            return Access("fail", decision.reason, explicit_deny=True, decision=decision)
        if grant is not None:
            return Access("pass", f"grant {grant.get('GrantId')} allows {action}")
        key_ok = evaluate(request, key_policy, [_allow(action, key_arn)]).allowed
        identity_ok = service or evaluate(request, _account_root_policy(account), identity).allowed
        reason = decision.reason
        if grants is None:
            reason += " (grants could not be listed, so a grant that allows it was not seen)"
        return Access("fail", reason, not key_ok, not identity_ok, decision=decision)
    if key_policy is not None:
        if not evaluate(request, key_policy, [_allow(action, key_arn)]).allowed:
            decision = evaluate(request, key_policy, [])
            return Access("fail", decision.reason, key_side_missing=True, decision=decision)
        return Access(
            "unknown",
            f"the key policy allows {action} for {principal} (given an identity policy that "
            "allows it), but its identity policies could not be read",
        )
    if service:
        return Access("unknown", "the key policy could not be read")
    if identity is None:
        return Access(
            "unknown",
            f"neither the key policy nor the identity policies of {principal} could be read",
        )
    own = evaluate(request, _account_root_policy(account), identity)
    if own.decision == "explicit_deny":
        return Access("fail", own.reason, explicit_deny=True, decision=own)
    if own.allowed:
        return Access(
            "unknown",
            f"its identity policies allow {action}, but the key policy could not be read to "
            "confirm it names this principal or its account",
        )
    if account != key_account and grant is None:
        return Access(
            "fail",
            f"no identity policy of {principal} allows {action} on this key, and a key in "
            f"another account ({key_account}) needs one",
            identity_side_missing=True,
            decision=own,
        )
    return Access(
        "unknown",
        f"no identity policy of {principal} allows {action}; it works only if the key policy "
        "names it directly, and the key policy could not be read",
    )
