"""A check's verdict and the pieces every check shares: waiting on another, an unknown caller,
and the identity-policy fix for a user or role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emr_cmk_notebook.readiness import fixes
from emr_cmk_notebook.readiness.access import Status
from emr_cmk_notebook.readiness.calls import Unreadable
from emr_cmk_notebook.readiness.gather import Facts
from emr_cmk_notebook.readiness.identity import Principal


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
    detail: str = ""  # what AWS said, word for word, when a call failed

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
            "detail": self.detail,
        }


def waiting(check_id: str, title: str, on: str) -> Check:
    """An unknown that names what it waits on instead of repeating its cause."""
    return Check(check_id, title, "unknown", f"waits on: {on}")


def unidentified(check_id: str, title: str, facts: Facts) -> Check:
    """An unknown for a caller STS could not name (what STS said goes to detail)."""
    caller = facts.caller
    detail = str(caller) if isinstance(caller, Unreadable) else ""
    reason = "the caller could not be identified (sts:GetCallerIdentity failed)"
    return Check(check_id, title, "unknown", reason, detail=detail)


def principal_policy_fix(
    principal: Principal, policy_name: str, statements: Sequence[Mapping[str, Any]], note: str = ""
) -> fixes.Fix:
    """An inline policy for the principal's user or role (an assumed role's role)."""
    kind: fixes.FixKind = "role_policy" if principal.kind == "role" else "user_policy"
    return fixes.identity_fix(
        kind, principal.name, principal.account, policy_name, statements, note
    )
