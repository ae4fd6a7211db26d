"""The checker and the local backend agree: a job succeeds exactly when the report is ready."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.readiness import check_readiness
from tests.conftest import demo_app_id, key_arn
from tests.readiness.conftest import NO_KMS_ROLE, SESSION_ROLE, run_job

pytestmark = pytest.mark.integration

# alias -> (ready?, the check that explains it, the KMS error a job meets)
SEEDED = {
    "alias/emr-analytics": (True, None, None),
    "alias/emr-disabled": (False, "key_state", "DisabledException"),
    "alias/emr-asymmetric": (False, "key_spec", "InvalidKeyUsageException"),
    "alias/emr-no-service-grant": (False, "service_access", "AccessDeniedException"),
    "alias/emr-wrong-context-key": (False, "service_access", "AccessDeniedException"),
}


@pytest.mark.parametrize("alias", sorted(SEEDED))
def test_job_succeeds_exactly_when_the_report_is_ready(backend, job_script, demo, target, alias):
    ready, cause, error = SEEDED[alias]
    app_id = demo_app_id(demo)
    report = check_readiness(alias, app_id, SESSION_ROLE, target=target)
    run = run_job(backend, job_script, app_id, key_arn(demo, alias), SESSION_ROLE)
    assert report.ready is ready
    assert (run["state"] == "SUCCESS") is ready
    if not ready:
        assert report.check(cause).status == "fail"
        assert error in run["stateDetails"]


def test_shared_key_is_ready_with_the_unreadable_parts_named(backend, job_script, demo, target):
    app_id = demo_app_id(demo)
    shared = demo["shared_key_arn"]
    report = check_readiness(shared, app_id, SESSION_ROLE, target=target)
    assert report.ready
    assert "could not be verified" in report.verdict
    service = report.check("service_access")
    assert service.status == "unknown"
    assert "444455556666" in service.reason and "get-key-policy" in service.how_to_check
    # The statement to ask the key owner for comes anyway.
    assert service.fixes[0].statement["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
    assert run_job(backend, job_script, app_id, shared, SESSION_ROLE)["state"] == "SUCCESS"


def test_wrong_context_key_is_named_as_the_cause(demo, target):
    report = check_readiness(
        "alias/emr-wrong-context-key", demo_app_id(demo), SESSION_ROLE, target=target
    )
    reason = report.check("service_access").reason
    assert "kms:EncryptionContext:aws:emr-serverless:application-id" in reason
    assert "never sends" in reason and "kms:EncryptionContext:applicationId" in reason


def test_role_without_kms_is_not_ready_and_gets_a_role_policy(demo, target):
    report = check_readiness("alias/emr-analytics", demo_app_id(demo), NO_KMS_ROLE, target=target)
    role = report.check("role_access")
    assert not report.ready and role.status == "fail"
    commands = [fix.command for fix in role.fixes]
    assert any(
        c.startswith("aws iam put-role-policy --role-name emr-no-kms-role") for c in commands
    )


def test_job_with_a_role_without_kms_fails(backend, job_script, demo):
    app_id = demo_app_id(demo)
    run = run_job(backend, job_script, app_id, key_arn(demo, "alias/emr-analytics"), NO_KMS_ROLE)
    assert run["state"] == "FAILED"
    assert "AccessDeniedException" in run["stateDetails"]
    assert "emr-no-kms-role" in run["stateDetails"]
