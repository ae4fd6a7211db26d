"""%emr_app against the local backend: show, create with a key, update with previous and new."""

from __future__ import annotations

import uuid

import pytest

from emr_cmk_notebook.core.errors import UserError
from tests.conftest import demo_app_id, key_arn

pytestmark = pytest.mark.integration


def test_show_the_demo_application(shell, demo):
    view = shell.line("emr_app", f"show --application-id {demo_app_id(demo)}")
    assert view.name == "demo-app"
    assert view.livy_enabled and view.sessions_enabled
    assert "demo-app" in view._repr_html_()


def test_create_resolves_the_alias_and_stores_the_key(shell, demo):
    name = f"app-{uuid.uuid4().hex[:6]}"
    view = shell.line(
        "emr_app", f"create --name {name} --key alias/emr-analytics --context project=churn"
    )
    assert view.encryption.key == key_arn(demo, "alias/emr-analytics")
    assert dict(view.encryption.context) == {"project": "churn"}


def test_create_refuses_a_disabled_key(shell):
    with pytest.raises(UserError, match="Disabled"):
        shell.line("emr_app", "create --name nope --key alias/emr-disabled")


def test_update_shows_previous_and_new_and_unsets(shell, demo):
    name = f"upd-{uuid.uuid4().hex[:6]}"
    app = shell.line("emr_app", f"create --name {name} --key alias/emr-analytics")
    change = shell.line("emr_app", f"update --application-id {app.id} --unset-key")
    assert change.previous.encryption is not None
    assert change.new.encryption is None
    text = repr(change)
    assert key_arn(demo, "alias/emr-analytics") in text and "AWS owned key" in text
    assert "keep the key they started with" in text


def test_update_of_a_running_application_needs_restart(shell, demo):
    with pytest.raises(UserError, match="--restart"):
        shell.line(
            "emr_app",
            f"update --application-id {demo_app_id(demo)} --key alias/emr-analytics",
        )


def test_bad_arguments_are_one_line_usage_errors(shell):
    with pytest.raises(UserError) as exc:
        shell.line("emr_app", "update --application-id x")
    assert "nothing to change" in str(exc.value)
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match="invalid choice"):
        shell.line("emr_app", "frobnicate")


@pytest.mark.parametrize(
    "magic",
    [
        "emr_app create --name x --context a=b",
        "emr_app update --application-id 00fakeapp0000001 --context a=b",
        "emr_job submit --application-id 00fakeapp0000001 --role "
        "arn:aws:iam::111122223333:role/emr-session-role --entry-point s3://b/j.py --context a=b",
        "emr_session start --application-id 00fakeapp0000001 --role "
        "arn:aws:iam::111122223333:role/emr-session-role --context a=b",
    ],
)
def test_a_context_without_a_key_is_the_same_line_in_every_magic(shell, magic, capsys):
    result = shell.ip.run_cell(f"%{magic}")
    assert isinstance(result.error_in_exec, UserError)
    shown = capsys.readouterr()
    assert (shown.out + shown.err).strip() == (
        "UserError: --context needs --key: the context belongs to a key"
    )
