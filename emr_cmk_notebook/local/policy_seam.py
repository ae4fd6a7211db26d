"""The single place where the local backend decides a call with the policy engine.

Every KMS call, the user's and the emulated service's, asks ``KeyPolicySeam.authorize`` after the
key's state and spec checks. A call is allowed when ``core.policy.evaluate`` allows it against the
key policy and the caller's identity policies read from moto's IAM (a user's inline, attached and
group policies; for an assumed-role session, its role's inline and attached policies), or when a
grant on the key allows it. For ``AWSService`` callers only the key policy counts, as at AWS.
Other permission checks of the backend (the IAM policy simulator) ask ``identity_decision``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moto.iam.models import iam_backends
from moto.kms.models import kms_backends

from emr_cmk_notebook.core.grants import granting_grant
from emr_cmk_notebook.core.policy import Decision, InvalidPolicy, InvalidRequest, Request, evaluate
from emr_cmk_notebook.local.accounts import PARTITION
from emr_cmk_notebook.local.identity import Identity


@dataclass(frozen=True)
class KeyAccessRequest:
    """One KMS call as the key policy sees it."""

    identity: Identity
    action: str  # e.g. "kms:GenerateDataKey"
    key_arn: str
    key_policy: str
    context: Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class Verdict:
    """The seam's answer; ``message`` is the AccessDeniedException text when not allowed."""

    allowed: bool
    message: str = ""


@dataclass(frozen=True)
class AttachedPolicy:
    """One identity policy of a principal, named as the IAM policy simulator names it."""

    id: str  # the inline policy's name, or the managed policy's ARN
    type: str  # ``user``, ``group`` or ``role`` (inline), ``aws-managed`` or ``user-managed``
    document: str


def _attached(owner: Any, kind: str) -> list[AttachedPolicy]:
    inline = [AttachedPolicy(name, kind, doc) for name, doc in owner.policies.items()]
    managed = [
        AttachedPolicy(
            policy.arn,
            "aws-managed" if ":iam::aws:policy/" in policy.arn else "user-managed",
            version.document,
        )
        for policy in owner.managed_policies.values()
        for version in policy.versions
        if version.is_default_version
    ]
    return inline + managed


def principal_policies(account_id: str, kind: str, name: str) -> list[AttachedPolicy]:
    """A user's (with its groups'), group's or role's identity policies; moto's NoSuchEntity
    error when there is no such principal."""
    iam = iam_backends[account_id][PARTITION]
    if kind == "role":
        return _attached(iam.get_role(name), "role")
    if kind == "group":
        return _attached(iam.get_group(name), "group")
    found = _attached(iam.get_user(name), "user")
    return found + [p for group in iam.get_groups_for_user(name) for p in _attached(group, "group")]


def identity_policies(identity: Identity) -> list[str]:
    """The identity policy documents that apply to ``identity`` (none for services and root)."""
    if identity.type == "AssumedRole" and identity.role_arn:
        kind, name = "role", identity.role_arn.rsplit("/", 1)[-1]
    elif identity.type == "IAMUser" and identity.user_name:
        kind, name = "user", identity.user_name
    else:
        return []
    try:
        return [p.document for p in principal_policies(identity.account_id, kind, name)]
    except Exception:  # moto raises its own NoSuchEntity types; a deleted principal has none
        return []


def account_decides(account: str) -> dict[str, Any]:
    """A resource policy that leaves the decision to the account's identity policies (for
    resources with no policy of their own, as the root statement of a key policy does)."""
    root = f"arn:aws:iam::{account}:root"
    return {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "*", "Resource": "*"}
        ]
    }


def identity_decision(
    identity: Identity, action: str, resource: str, context: Mapping[str, Any] | None = None
) -> Decision | None:
    """What the caller's identity policies alone say about ``action`` on ``resource`` (in the
    caller's account when the ARN names none); None when a policy cannot be read."""
    request = Request(
        identity.principal, action, resource, dict(context or {}), identity.account_id
    )
    try:
        docs = [json.loads(doc) for doc in identity_policies(identity) if doc]
        return evaluate(request, account_decides(identity.account_id), docs)
    except (InvalidPolicy, InvalidRequest, ValueError):
        return None


def _grants(key_arn: str) -> Iterable[dict[str, Any]]:
    fields = key_arn.split(":", 5)
    key = kms_backends[fields[4]][fields[3]].keys.get(fields[5].removeprefix("key/"))
    return [grant.to_json() for grant in key.grants.values()] if key is not None else []


def _encryption_context(request: KeyAccessRequest) -> dict[str, str]:
    prefix = "kms:encryptioncontext:"
    return {
        name[len(prefix) :]: str(value)
        for name, value in request.context.items()
        if name.lower().startswith(prefix) and name.lower() != "kms:encryptioncontextkeys"
    }


class KeyPolicySeam:
    """Decides each KMS call with the key-policy engine, the caller's IAM policies and grants."""

    def authorize(self, request: KeyAccessRequest) -> Verdict:
        """Allow, or refuse with the message AWS KMS gives plus the engine's reason."""
        principal = request.identity.principal
        docs = [] if request.identity.type == "AWSService" else identity_policies(request.identity)
        call = Request(principal, request.action, request.key_arn, dict(request.context))
        try:
            decision = evaluate(call, request.key_policy, [json.loads(d) for d in docs if d])
        except (InvalidPolicy, InvalidRequest, ValueError) as exc:
            return Verdict(
                False, f"{_denied(principal, request)} (the policy cannot be read: {exc})"
            )
        if decision.allowed:
            return Verdict(True)
        if decision.decision == "implicit_deny" and granting_grant(
            _grants(request.key_arn), principal, request.action, _encryption_context(request)
        ):
            return Verdict(True)
        why = "with an explicit deny in a resource-based policy"
        if decision.decision == "implicit_deny":
            side = "identity-based" if _key_policy_defers(request) else "resource-based"
            why = f"because no {side} policy allows the {request.action} action"
        return Verdict(False, f"{_denied(principal, request)} {why} ({decision.reason})")


def _key_policy_defers(request: KeyAccessRequest) -> bool:
    """Whether the key policy lets the caller's own account decide (so the identity side failed)."""
    account = request.key_arn.split(":")[4]
    if request.identity.type == "AWSService" or request.identity.account_id != account:
        return False
    root = Request(f"arn:aws:iam::{account}:root", request.action, request.key_arn, {})
    try:
        return evaluate(root, request.key_policy).allowed
    except (InvalidPolicy, InvalidRequest):
        return False


def _denied(principal: str, request: KeyAccessRequest) -> str:
    return (
        f"User: {principal} is not authorized to perform: {request.action} "
        f"on resource: {request.key_arn}"
    )
