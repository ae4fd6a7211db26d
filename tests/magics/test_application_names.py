"""--application-id takes a name too, and what is missing is named before anything starts."""

from __future__ import annotations

import uuid

import pytest

from emr_cmk_notebook.core.errors import UserError
from tests.conftest import demo_app_id
from tests.sessions.conftest import session_role

pytestmark = pytest.mark.integration


def _application(backend, name: str) -> str:
    return backend.client("emr-serverless").create_application(
        name=name,
        releaseLabel="emr-7.13.0",
        type="Spark",
        interactiveConfiguration={"livyEndpointEnabled": True},
        clientToken=str(uuid.uuid4()),
    )["applicationId"]


def _refused(shell, capsys, line: str) -> str:
    """The one-line error of ``%emr_session start LINE``, once nothing was shown as starting."""
    with pytest.raises(UserError) as refused:
        shell.line("emr_session", f"start {line}")
    shown = capsys.readouterr()
    assert "starting a session" not in shown.out + shown.err
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_session_starts_on_an_application_given_by_name(shell, demo, capsys):
    info = shell.line("emr_session", f"start --application-id demo-app --role {session_role(demo)}")
    try:
        assert info.application_id == demo_app_id(demo)
        assert "starting a session on demo-app" in capsys.readouterr().out
        listed = shell.line("emr_session", "list --application-id demo-app")
        assert [s.id for s in listed.sessions] == [info.id]
        used = shell.line("emr_session", f"use {info.id} --application-id demo-app")
        assert used is info and used.started_here
    finally:
        shell.line("emr_session", "stop --all")


def test_a_name_several_applications_share_is_refused_with_their_ids(shell, backend, demo, capsys):
    name = f"twin-{uuid.uuid4().hex[:6]}"
    ids = {_application(backend, name), _application(backend, name)}
    message = _refused(shell, capsys, f"--application-id {name} --role {session_role(demo)}")
    assert f"2 applications are named '{name}'" in message
    assert all(app_id in message for app_id in ids)


@pytest.mark.parametrize("value", ["no-such-app", "00nosuchapp0000"])
def test_a_missing_application_is_named_with_what_exists(shell, demo, capsys, value):
    message = _refused(shell, capsys, f"--application-id {value} --role {session_role(demo)}")
    assert f"no application has the id or name '{value}'" in message
    assert f"demo-app ({demo_app_id(demo)})" in message


def test_a_missing_key_is_named_before_anything_starts(shell, backend, demo, capsys):
    app = demo_app_id(demo)
    before = backend.client("emr-serverless").list_sessions(applicationId=app)["sessions"]
    message = _refused(
        shell,
        capsys,
        f"--application-id demo-app --role {session_role(demo)} --key alias/no-such-key",
    )
    assert "alias/no-such-key" in message
    assert backend.client("emr-serverless").list_sessions(applicationId=app)["sessions"] == before


def test_the_key_check_takes_a_name(shell, demo):
    report = shell.line(
        "emr_key_check",
        f"--key alias/emr-analytics --application-id demo-app --role {session_role(demo)}",
    )
    assert report.application_id == demo_app_id(demo) and report.ready


@pytest.mark.parametrize("key", ["", " --key alias/emr-analytics --skip-check"])
def test_a_missing_role_is_named_before_anything_starts(shell, backend, demo, capsys, key):
    app = demo_app_id(demo)
    before = backend.client("emr-serverless").list_sessions(applicationId=app)["sessions"]
    role = "arn:aws:iam::111122223333:role/no-such-role"
    message = _refused(shell, capsys, f"--application-id demo-app --role {role}{key}")
    assert f"execution role {role} does not exist" in message
    assert backend.client("emr-serverless").list_sessions(applicationId=app)["sessions"] == before


def test_jobs_and_the_application_magic_take_a_name(shell, demo, job_script):
    app = demo_app_id(demo)
    view = shell.line(
        "emr_job",
        f"submit --application-id demo-app --role {session_role(demo)} "
        f"--entry-point {job_script} --wait",
    )
    assert view.state == "SUCCESS" and view.application_id == app
    listed = shell.line("emr_job", "list --application-id demo-app")
    assert view.id in {j.id for j in listed.jobs}
    assert shell.line("emr_app", "show --application-id demo-app").id == app
