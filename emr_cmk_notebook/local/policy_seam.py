"""The single place where the local backend decides whether a key policy lets a KMS call through.

Every KMS call, the user's and the emulated service's, asks ``KeyPolicySeam.authorize`` after the
key's state and spec checks. The default seam allows everything; the key-policy engine replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


class KeyPolicySeam:
    """Allows every call: the behaviour until a key-policy engine is plugged in."""

    def authorize(self, request: KeyAccessRequest) -> Verdict:
        """Decide one call."""
        return Verdict(True)
