"""KMS grants: whether one of a key's grants lets a principal make one call.

Works on grants in the ``ListGrants`` shape (``GranteePrincipal``, ``Operations``,
``Constraints``), so the readiness checks and the local backend read them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _role_of_session(principal: str) -> str | None:
    """``arn:aws:iam::ACCOUNT:role/NAME`` for an assumed-role session ARN, else None."""
    fields = principal.split(":", 5)
    if len(fields) != 6 or not fields[5].startswith("assumed-role/"):
        return None
    name = fields[5].split("/")[1]
    return f"arn:{fields[1]}:iam::{fields[4]}:role/{name}"


def _constraints_hold(constraints: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    equals = constraints.get("EncryptionContextEquals")
    if equals is not None and dict(equals) != dict(context):
        return False
    subset = constraints.get("EncryptionContextSubset") or {}
    return all(context.get(name) == value for name, value in subset.items())


def granting_grant(
    grants: Iterable[Mapping[str, Any]],
    principal: str,
    action: str,
    encryption_context: Mapping[str, str] | None = None,
) -> Mapping[str, Any] | None:
    """The first grant that lets ``principal`` call ``action`` (``kms:Decrypt``), or None."""
    operation = action.split(":", 1)[-1]
    names = {principal.lower()}
    role = _role_of_session(principal)
    if role is not None:
        names.add(role.lower())
    for grant in grants:
        if str(grant.get("GranteePrincipal", "")).lower() not in names:
            continue
        if operation not in (grant.get("Operations") or ()):
            continue
        if _constraints_hold(grant.get("Constraints") or {}, encryption_context or {}):
            return grant
    return None
