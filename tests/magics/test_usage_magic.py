"""%emr_key_usage against the local backend."""

from __future__ import annotations

import uuid

import pytest

from emr_cmk_notebook.core.errors import UserError
from tests.conftest import demo_app_id

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"


def test_usage_of_a_job_shows_up_with_its_context(shell, demo, job_script):
    marker = uuid.uuid4().hex[:8]
    shell.line(
        "emr_job",
        f"submit --application-id {demo_app_id(demo)} --role {ROLE} --entry-point {job_script} "
        f"--key alias/emr-analytics --context audit={marker} --wait",
    )
    usage = shell.line(
        "emr_key_usage", "--key alias/emr-analytics --since 1h --no-cache -o usage_frame"
    )
    frame = shell.user_ns["usage_frame"]
    ours = frame[frame["ctx.audit"] == marker]
    assert set(ours["event_name"]) >= {"GenerateDataKey", "Decrypt"}
    assert set(ours["application_id"]) == {demo_app_id(demo)}
    assert "GenerateDataKey" in usage._repr_html_()


def test_a_bad_window_is_a_one_line_error(shell):
    with pytest.raises(UserError) as exc:
        shell.line("emr_key_usage", "--key alias/emr-analytics --since yesterday-ish")
    assert "\n" not in str(exc.value)
    assert "--since" in str(exc.value)


def test_source_takes_at_most_one_path(shell):
    with pytest.raises(UserError, match="at most one path"):
        shell.line("emr_key_usage", "--key k --source files a b")


def test_a_trail_bucket_in_s3_is_read_with_a_warning_above(shell, backend, demo):
    marker = uuid.uuid4().hex
    key = next(k["arn"] for k in demo["keys"] if k["alias"] == "alias/emr-analytics")
    backend.client("kms").generate_data_key(
        KeyId=key, KeySpec="AES_256", EncryptionContext={"audit": marker}
    )
    bucket = "s3://emr-cmk-cloudtrail-111122223333/"
    backend.settings(trail_kms_events="excluded")
    try:
        usage = shell.line(
            "emr_key_usage", f"--key {key} --since 1h --source files {bucket} --quiet -o frame"
        )
    finally:
        backend.settings(trail_kms_events="logged")
    assert usage._repr_html_().startswith(
        "<p><b>warning:</b> may be incomplete: trail emr-cmk-trail"
    )
    assert "excludes KMS events" in usage.to_dict()["completeness"]
    assert "read " in usage.notes[-1] and bucket in usage.notes[-1]


def test_usage_rows_are_tied_to_the_session_this_kernel_started(shell, demo):
    from tests.sessions.conftest import session_role

    marker = uuid.uuid4().hex[:8]
    info = shell.line(
        "emr_session",
        f"start --application-id {demo_app_id(demo)} --role {session_role(demo)} "
        f"--key alias/emr-analytics --context audit={marker}",
    )
    try:
        shell.line(
            "emr_key_usage",
            f"--key alias/emr-analytics --since 1h --no-cache --session {info.id} -o session_rows",
        )
    finally:
        shell.line("emr_session", f"stop {info.id}")
    frame = shell.user_ns["session_rows"]
    assert len(frame) and set(frame["session"]) == {str(info.id)}
    assert set(frame["ctx.audit"]) == {marker}
