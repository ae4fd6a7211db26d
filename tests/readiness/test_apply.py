"""A failed check, --apply, a second check that passes, and a job that then succeeds."""

from __future__ import annotations

import json

import pytest

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.readiness import apply_fix, check_readiness
from tests.conftest import demo_app_id, key_arn
from tests.readiness.conftest import SESSION_ROLE, run_job

pytestmark = pytest.mark.integration


@pytest.fixture
def restore_policy(backend, demo):
    """Put the seeded key policy back after the test changed it."""
    kms = backend.client("kms")
    saved = {}

    def remember(alias: str) -> str:
        arn = key_arn(demo, alias)
        saved[arn] = kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
        return arn

    yield remember
    for arn, policy in saved.items():
        kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=policy)


def test_apply_turns_a_failed_check_into_a_pass_and_the_job_runs(
    backend, job_script, demo, target, restore_policy
):
    app_id = demo_app_id(demo)
    arn = restore_policy("alias/emr-no-service-grant")
    before = check_readiness("alias/emr-no-service-grant", app_id, SESSION_ROLE, target=target)
    assert not before.ready and before.check("service_access").status == "fail"
    shown = before._repr_html_()
    assert "not ready" in shown and "<details><summary>Fix: add to the key policy" in shown
    frame = before.to_frame()
    assert frame.set_index("id").loc["service_access", "status"] == "fail"
    applied = apply_fix(before)
    assert applied.applied and '+      "Sid": "EmrServerlessDisks' in applied.diff
    after = check_readiness("alias/emr-no-service-grant", app_id, SESSION_ROLE, target=target)
    assert after.ready, after.to_text()
    assert run_job(backend, job_script, app_id, arn, SESSION_ROLE)["state"] == "SUCCESS"


def test_apply_refuses_to_lock_the_account_root_out(backend, demo, target):
    kms = backend.client("kms")
    analyst = next(a["user_arn"] for a in demo["accounts"] if a["id"] == "111122223333")
    only_analyst = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": analyst}, "Action": "kms:*", "Resource": "*"}
        ],
    }
    created = kms.create_key(
        Policy=json.dumps(only_analyst), KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT"
    )
    arn = created["KeyMetadata"]["Arn"]
    report = check_readiness(arn, demo_app_id(demo), SESSION_ROLE, target=target)
    assert report.check("service_access").status == "fail"
    with pytest.raises(UserError, match="account root"):
        apply_fix(report)
    assert json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]) == only_analyst
