"""The gate in front of every session (both transports) and every job run with a key.

It resolves the key, warns about context pairs that look like secrets, and then either runs the
readiness check (refusing what would fail) or, when the user skipped it, says so loudly.
"""

from __future__ import annotations

from collections.abc import Callable

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import CheckFailed, warn_skipped_check


def pass_gate(
    target: AwsTarget,
    encryption: DiskEncryption,
    application_id: str,
    role_arn: str,
    *,
    transport: str,
    skip_check: bool,
    also: Callable[[DiskEncryption], None] | None = None,
) -> DiskEncryption:
    """``encryption`` with its key resolved to an ARN, once the key may be used for ``transport``
    (livy, connect or job); ``also`` is the transport's own refusal, made before readiness."""
    from emr_cmk_notebook.keys import resolve

    encryption.warn_if_secret()
    resolved, facts = resolve(target.client("kms"), encryption)
    if also is not None:
        also(resolved)
    if skip_check:
        what = "job run" if transport == "job" else "session"
        warn_skipped_check(facts.arn, f"{what} fails to start")
        return resolved
    problem = facts.problem()
    if problem:
        raise CheckFailed(problem, hint="choose an enabled symmetric encryption key")
    from emr_cmk_notebook.readiness import require_ready

    require_ready(resolved, application_id, role_arn, target=target, transport=transport)
    return resolved
