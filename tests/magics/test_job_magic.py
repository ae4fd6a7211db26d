"""%emr_job against the local backend."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.core.errors import UserError
from tests.conftest import demo_app_id, key_arn, submitter_without_data_keys

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"


def test_job_magic_submits_and_waits(shell, demo, job_script):
    app = demo_app_id(demo)
    view = shell.line(
        "emr_job",
        f"submit --application-id {app} --role {ROLE} --entry-point {job_script} "
        "--key alias/emr-analytics --context env=dev --wait",
    )
    assert view.state == "SUCCESS"
    assert "job override" in view._repr_html_()
    listed = shell.line("emr_job", f"list --application-id {app}")
    assert view.id in {j.id for j in listed.jobs}


def test_job_magic_needs_an_application(shell):
    with pytest.raises(UserError, match="no application"):
        shell.line("emr_job", "list")


@pytest.mark.parametrize(
    "line",
    [
        "emr_job submit --entry-point job.py --role {role} --key alias/emr-analytics "
        "--context applicationId=x --application-id {app}",
        "emr_key_check --key alias/emr-analytics --context applicationId=x --role {role} "
        "--application-id {app}",
        "emr_app update --key alias/emr-analytics --context applicationId=x --application-id {app}",
    ],
)
def test_the_context_key_the_service_owns_is_refused_before_any_call(shell, demo, line):
    app = demo_app_id(demo)
    name, _, args = line.format(app=app, role=ROLE).partition(" ")
    before = shell.line("emr_app", f"show --application-id {app}").to_dict()
    with pytest.raises(UserError, match=r"^encryption context key applicationId belongs to EMR"):
        shell.line(name, args)
    assert shell.line("emr_app", f"show --application-id {app}").to_dict() == before


def test_job_rejected_at_submission_is_one_line(
    shell, backend, demo, job_script, monkeypatch, capsys
):
    app = demo_app_id(demo)
    emr = backend.client("emr-serverless")
    before = len(emr.list_job_runs(applicationId=app, maxResults=50)["jobRuns"])
    for name, value in submitter_without_data_keys(backend).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError) as refused:
        shell.line(
            "emr_job",
            f"submit --application-id {app} --role {ROLE} --entry-point {job_script} "
            "--key alias/emr-analytics --skip-check",
        )
    message = str(refused.value)
    assert message.startswith("StartJobRun: Unable to use KMS key ")
    assert key_arn(demo, "alias/emr-analytics") in message and "kms:GenerateDataKey" in message
    assert "\n" not in message
    assert len(emr.list_job_runs(applicationId=app, maxResults=50)["jobRuns"]) == before
    assert "the key check was skipped" in capsys.readouterr().err
