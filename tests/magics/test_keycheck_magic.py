"""%emr_key_check against the local backend: verdicts, defaults, and --apply."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.errors import UserError
from tests.conftest import demo_app_id

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"


def test_ready_key_reports_ready(shell, demo):
    report = shell.line(
        "emr_key_check",
        f"--key alias/emr-analytics --application-id {demo_app_id(demo)} --role {ROLE} "
        "--context project=churn",
    )
    assert report.ready
    assert "pass" in report._repr_html_().lower()


def test_the_transport_names_the_permissions_checked(shell, demo):
    line = f"--key alias/emr-analytics --application-id {demo_app_id(demo)} --role {ROLE}"
    livy = shell.line("emr_key_check", line)
    job = shell.line("emr_key_check", f"{line} --transport job")
    assert "AccessLivyEndpoints" in livy.check("caller_transport").reason
    assert "StartJobRun" in job.check("caller_transport").reason and job.transport == "job"


def test_defaults_come_from_config_and_a_missing_one_is_named(shell, demo):
    shell.run(f"%config EmrCmk.default_application = '{demo_app_id(demo)}'")
    shell.run(f"%config EmrCmk.default_role = '{ROLE}'")
    try:
        report = shell.line("emr_key_check", "--key alias/emr-disabled")
        assert not report.ready
        assert report.check("key_state").status == "fail"
        with pytest.raises(UserError, match="--key"):
            shell.line("emr_key_check", "")
    finally:
        shell.run("%config EmrCmk.default_application = None")
        shell.run("%config EmrCmk.default_role = None")


def test_apply_turns_a_missing_service_grant_into_ready(shell, demo, backend):
    kms = backend.client("kms")
    key_id = kms.describe_key(KeyId="alias/emr-no-service-grant")["KeyMetadata"]["KeyId"]
    original = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    line = f"--key alias/emr-no-service-grant --application-id {demo_app_id(demo)} --role {ROLE}"
    try:
        assert not shell.line("emr_key_check", line).ready
        assert shell.line("emr_key_check", line + " --apply").ready
    finally:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=original)


def test_a_refused_session_start_shows_the_report_above_the_error(shell, demo, capsys):
    from emr_cmk_notebook.readiness import NotReady

    with pytest.raises(NotReady) as exc:
        shell.line(
            "emr_session",
            f"start --application-id {demo_app_id(demo)} --role {ROLE} "
            "--key alias/emr-no-service-grant",
        )
    assert "is not ready" in str(exc.value) and "\n" not in str(exc.value)
    shown = capsys.readouterr().out
    assert "Key policy lets EMR Serverless use the key" in shown
    assert "aws kms put-key-policy" in shown
