"""The gate in front of every session (both transports) and every job run with a key.

``require_role`` refuses an execution role that does not exist, key or not. The key gate resolves
the key, warns about context pairs that look like secrets, and then either runs the
readiness check (refusing what would fail) or, when the user skipped it, says so loudly.
"""

from __future__ import annotations

from collections.abc import Callable

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import CheckFailed, UserError, warn_skipped_check


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


def require_role(target: AwsTarget, role_arn: str, application_arn: str) -> None:
    """Refuse an execution role missing from the application's account, before anything starts
    (a role in another account, or one the caller may not read, is left to the service)."""
    from botocore.exceptions import ClientError

    from emr_cmk_notebook.core.arns import parse_arn

    role, account = parse_arn(role_arn), parse_arn(application_arn).account
    if role.account != account:
        return
    try:
        target.client("iam").get_role(RoleName=role.resource.rsplit("/", 1)[-1])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            raise UserError(
                f"execution role {role_arn} does not exist in account {account}",
                field="role",
                hint="pass --role with the ARN of an existing role",
            ) from None
