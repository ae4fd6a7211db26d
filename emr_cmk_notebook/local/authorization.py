"""What the local EMR Serverless lets a caller do: IAM permissions, passed roles and role trust.

Every EMR Serverless API call and every Livy endpoint request is decided with the project's policy
engine (``core.policy``) against the caller's identity policies as ``policy_seam`` reads
them from moto's IAM. EMR Serverless has no resource-based policies, so the caller's own account
decides: the engine gets a stand-in resource policy that lets the account's IAM policies count
(the same shape as a key policy's root statement). Actions and resource ARNs follow the Service
Authorization Reference for EMR Serverless; ``iam:PassRole`` on the execution role, with
``iam:PassedToService`` = ``emr-serverless.amazonaws.com``, is needed wherever a role is passed.
The service assumes the execution role when work starts: its trust policy must let
``emr-serverless.amazonaws.com`` call ``sts:AssumeRole``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.iam.models import iam_backends

from emr_cmk_notebook.core.policy import InvalidPolicy, InvalidRequest, Request, evaluate
from emr_cmk_notebook.local.accounts import PARTITION
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import EMR_SERVERLESS_PRINCIPAL, Identity
from emr_cmk_notebook.local.policy_seam import identity_decision

SERVICE = "emr-serverless"
# Operations whose resource is the account's applications, not one of them.
_ACCOUNT_WIDE = frozenset({"ListApplications", "CreateApplication"})
# Operations that pass the execution role to the service (Livy: POST /sessions).
_PASSES_ROLE = frozenset({"StartJobRun", "StartSession", "AccessLivyEndpoints"})


def application_arn(region: str, account: str, app_id: str) -> str:
    """The ARN IAM policies name an application by."""
    return f"arn:aws:{SERVICE}:{region}:{account}:/applications/{app_id}"


def request_resource(operation: str, region: str, account: str, data: Mapping[str, Any]) -> str:
    """The resource ARN an EMR Serverless operation is authorised on."""
    named = str(data.get("resourceArn") or "").split(":", 5)
    if len(named) == 6 and named[4].isdigit():
        return ":".join(named)
    if operation in _ACCOUNT_WIDE or "applicationId" not in data:
        # UNVERIFIED for CreateApplication: AWS does not say which ARN a new application has
        # before it exists; a policy on applications/* covers it either way.
        return f"arn:aws:{SERVICE}:{region}:{account}:/applications/*"
    app = application_arn(region, account, data["applicationId"])
    if data.get("jobRunId"):
        return f"{app}/jobruns/{data['jobRunId']}"
    if data.get("sessionId"):
        return f"{app}/sessions/{data['sessionId']}"
    return app


def require(
    identity: Identity, action: str, resource: str, context: Mapping[str, Any] | None = None
) -> None:
    """Raise ``AccessDeniedException`` unless the caller's identity policies allow ``action``."""
    principal = identity.principal
    decision = identity_decision(identity, action, resource, context)
    if decision is None:
        raise _denied(principal, action, resource, "(a policy of the caller cannot be read)")
    if decision.allowed:
        return
    why = (
        "with an explicit deny in an identity-based policy"
        if decision.decision == "explicit_deny"
        else f"because no identity-based policy allows the {action} action"
    )
    raise _denied(principal, action, resource, why)


def require_pass_role(identity: Identity, role_arn: str) -> None:
    """``iam:PassRole`` on the execution role, passed to EMR Serverless."""
    require(identity, "iam:PassRole", role_arn, {"iam:PassedToService": EMR_SERVERLESS_PRINCIPAL})


class EmrAccess:
    """The access rules the local EMR Serverless and its Livy endpoint enforce."""

    def authorize_request(
        self, identity: Identity, region: str, operation: str, data: Mapping[str, Any]
    ) -> None:
        """Refuse a call the caller's policies do not allow (403 ``AccessDeniedException``).

        ``operation`` is an API operation, or ``AccessLivyEndpoints`` for the Livy endpoint;
        ``data`` its input (``applicationId``, ``jobRunId``, ``executionRoleArn``...).
        """
        resource = request_resource(operation, region, identity.account_id, data)
        require(identity, f"{SERVICE}:{operation}", resource)
        if operation in _PASSES_ROLE and data.get("executionRoleArn"):
            require_pass_role(identity, data["executionRoleArn"])

    def execution_role_problem(self, role_arn: str) -> str | None:
        """Why EMR Serverless cannot assume ``role_arn`` (a missing role, a trust policy that
        does not let the service in), or None when it can."""
        account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        try:
            role = iam_backends[account][PARTITION].get_role(name)
        except Exception:  # moto raises its own NoSuchEntity type
            return f"Execution role {role_arn} does not exist, so EMR Serverless cannot assume it"
        request = Request(EMR_SERVERLESS_PRINCIPAL, "sts:AssumeRole", role.arn)
        try:
            trust = _with_resource(json.loads(role.assume_role_policy_document), role.arn)
            allowed = evaluate(request, trust).allowed
        except (InvalidPolicy, InvalidRequest, ValueError) as exc:
            return f"The trust policy of execution role {role_arn} cannot be read: {exc}"
        if allowed:
            return None
        return (
            f"EMR Serverless could not assume execution role {role_arn}: its trust policy does "
            f"not allow {EMR_SERVERLESS_PRINCIPAL} to call sts:AssumeRole"
        )


def _with_resource(trust: Mapping[str, Any], role_arn: str) -> dict[str, Any]:
    """A trust policy with its implicit resource, the role itself, written out."""
    statements = trust.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    return {
        **trust,
        "Statement": [
            s if "Resource" in s or "NotResource" in s else {**s, "Resource": role_arn}
            for s in statements
        ],
    }


def _denied(principal: str, action: str, resource: str, why: str) -> AwsError:
    return AwsError(
        "AccessDeniedException",
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}",
        403,
    )
