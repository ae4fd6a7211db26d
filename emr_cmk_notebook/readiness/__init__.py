"""Readiness: will a key, an application, an execution role and the caller let encrypted work start?

from emr_cmk_notebook.readiness import check_readiness, apply_fix
report = check_readiness("alias/emr-analytics", "00abc...", "arn:aws:iam::111122223333:role/R")
report.ready, report.failures           # and report shows itself as a table in a notebook
apply_fix(report)                        # merges the key-policy fixes into the key policy
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from emr_cmk_notebook import apps
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.arns import quoted, role_arn_problem
from emr_cmk_notebook.core.encryption import DiskEncryption
from emr_cmk_notebook.core.errors import CheckFailed, UserError
from emr_cmk_notebook.readiness.checks import Check, run_checks
from emr_cmk_notebook.readiness.fixes import AppliedFix, Fix, apply_fix
from emr_cmk_notebook.readiness.gather import TRANSPORTS, Inputs, gather
from emr_cmk_notebook.readiness.report import ReadinessReport

__all__ = [
    "AppliedFix",
    "Check",
    "Fix",
    "NotReady",
    "ReadinessReport",
    "apply_fix",
    "check_readiness",
    "require_ready",
]


class NotReady(CheckFailed):
    """A readiness gate refused to start work; ``report`` says what failed and how to fix it."""

    def __init__(self, report: ReadinessReport):
        self.report = report
        key = report.key_arn or report.key
        failures = list(report.failures)
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            reason = f"{' '.join(failures[0].reason.split())}{more}"
        else:
            reason = report.verdict
        super().__init__(
            f"key {key} is not ready: {reason}",
            hint="the report shows every check and its fix; --skip-check starts anyway",
        )


def require_ready(
    encryption: DiskEncryption,
    application_id: str,
    role_arn: str,
    *,
    target: AwsTarget,
    transport: str,
) -> ReadinessReport:
    """The gate in front of sessions and job runs (``transport`` livy, connect or job): the
    report, or ``NotReady`` when it fails."""
    report = check_readiness(
        encryption.key_arn,
        application_id,
        role_arn,
        dict(encryption.context),
        target=target,
        transport=transport,
    )
    if not report.ready:
        raise NotReady(report)
    return report


def _role(role_arn: str) -> str:
    problem = role_arn_problem(role_arn)
    if problem:
        raise UserError(f"--role {quoted(role_arn, 80)} {problem}", field="role")
    return role_arn


def check_readiness(
    key: str,
    application_id: str,
    role_arn: str,
    context: Mapping[str, str] | Iterable[str] | str | None = None,
    *,
    target: AwsTarget | None = None,
    transport: str = "livy",
) -> ReadinessReport:
    """Check every requirement for starting encrypted work over ``transport`` (``livy``,
    ``connect`` or ``job``); bad input raises ``UserError``."""
    encryption = DiskEncryption.from_parts(key, context)
    if transport not in TRANSPORTS:
        raise UserError(
            f"--transport {quoted(str(transport))} is not one of {', '.join(TRANSPORTS)}",
            field="transport",
        )
    if not isinstance(application_id, str) or not application_id:
        raise UserError("--application-id is empty", field="application_id")
    role_arn = _role(role_arn)
    target = target or AwsTarget()
    if not apps.APPLICATION_ID.fullmatch(application_id):
        # Not an id, so a name; an id that does not exist is the application_found check's.
        application_id = apps.get_application(target, application_id).id
    inputs = Inputs(
        key=encryption.key,
        application_id=application_id,
        role_arn=role_arn,
        context=dict(encryption.context),
        region=target.resolved_region(),
        transport=transport,
    )
    started = time.perf_counter()
    facts = gather(inputs, target)
    checks = run_checks(facts)
    caller = facts.caller_principal
    return ReadinessReport(
        key=inputs.key,
        key_arn=facts.key_arn,
        application_id=application_id,
        role_arn=role_arn,
        caller_arn=caller.caller_arn if caller else None,
        region=inputs.region,
        transport=transport,
        checks=checks,
        elapsed_s=time.perf_counter() - started,
        target=target,
    )
