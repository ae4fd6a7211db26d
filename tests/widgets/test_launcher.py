"""The session launcher against the local backend: pickers, validation, readiness, start, stop."""

from __future__ import annotations

import json

import pytest

from emr_cmk_notebook.core.errors import UserError
from tests.conftest import demo_app_id
from tests.sessions.conftest import session_role
from tests.widgets.conftest import READY_KEY, WAIT, fill_ready_form

pytestmark = pytest.mark.integration


def test_the_pickers_offer_what_the_account_holds(backend, demo, launcher):
    iam = backend.client("iam")
    ec2_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    ec2_role = iam.create_role(
        RoleName="widget-test-ec2-only", AssumeRolePolicyDocument=json.dumps(ec2_trust)
    )["Role"]["Arn"]
    try:
        launcher.role.value = ""
        launcher.background.run(launcher._load_choices)
        launcher.wait_idle(WAIT)
    finally:
        iam.delete_role(RoleName="widget-test-ec2-only")

    labels = dict((value, label) for label, value in launcher.application.options)
    app_id = demo_app_id(demo)
    assert "demo-app" in labels[app_id] and "emr-7.13.0" in labels[app_id]
    assert "Livy on" in labels[app_id] and "sessions on" in labels[app_id]
    assert session_role(demo) in launcher.role.options
    assert ec2_role not in launcher.role.options
    seeded = {k["alias"] for k in demo["keys"] if k["account"] == "111122223333"}
    assert seeded <= set(launcher.key.options)


def test_the_launcher_is_built_through_the_injected_factory(launcher, factory):
    made = [control for _, control in factory.made]
    assert launcher.start_button in made and launcher.readiness in made
    assert launcher.widget in made
    assert any(kind == "Combobox" for kind, _ in factory.made)


def test_a_ready_key_enables_start_and_shows_the_key_state(demo, launcher):
    fill_ready_form(launcher, demo)
    assert launcher.report is not None and launcher.report.ready
    assert not launcher.start_button.disabled
    assert "Enabled · SYMMETRIC_DEFAULT" in launcher.key_info.value
    assert launcher.readiness.value == launcher.report._repr_html_()


def test_a_key_that_is_not_ready_disables_start_and_shows_the_same_report_as_key_check(
    demo, launcher, shell
):
    fill_ready_form(launcher, demo, key="alias/emr-no-service-grant")
    assert launcher.start_button.disabled
    checked = shell.line(
        "emr_key_check",
        f"--key alias/emr-no-service-grant --application-id {demo_app_id(demo)} "
        f"--role {session_role(demo)}",
    )
    assert not checked.ready
    for failure in checked.failures:
        assert failure.title in launcher.readiness.value


def test_the_override_enables_start_with_a_loud_warning(demo, launcher):
    fill_ready_form(launcher, demo, key="alias/emr-no-service-grant")
    assert launcher.start_button.disabled
    launcher.override.value = True
    assert not launcher.start_button.disabled
    assert "WARNING: the readiness check is skipped" in launcher.override_warning.value


def test_a_disabled_key_shows_its_state_beside_the_key(demo, launcher):
    fill_ready_form(launcher, demo, key="alias/emr-disabled")
    assert "is Disabled" in launcher.key_info.value
    assert launcher.start_button.disabled


def test_an_unknown_key_is_an_error_beside_the_key_field(demo, launcher):
    fill_ready_form(launcher, demo, key="alias/no-such-key")
    assert "was not found" in launcher.errors["key"].value
    assert launcher.start_button.disabled


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role", "emr-session-role", "is not an IAM role ARN"),
        ("role", "", "choose or type an execution role ARN"),
        ("key", "", "choose a key alias or type a key ARN"),
    ],
)
def test_a_bad_field_shows_one_line_beside_it_and_disables_start(
    demo, launcher, field, value, message
):
    fill_ready_form(launcher, demo)
    getattr(launcher, field).value = value
    shown = launcher.errors[field].value
    assert message in shown and "\n" not in shown
    assert launcher.start_button.disabled
    launcher.wait_idle(WAIT)
    assert launcher.start_button.disabled


def _nine_pairs(editor):
    editor.set_pairs([f"k{i}=v{i}" for i in range(9)])
    return editor.message


def _empty_key(editor):
    return editor.add_row("", "churn").message


def _duplicate(editor):
    editor.add_row("project", "churn")
    return editor.add_row("project", "risk").message


def _service_key(editor):
    return editor.add_row("applicationId", "00other").message


@pytest.mark.parametrize(
    ("make_invalid", "message"),
    [
        (_nine_pairs, "9 pairs; at most 8 are allowed, remove 1"),
        (_empty_key, "empty key"),
        (_duplicate, "'project' is given twice"),
        (_service_key, "encryption context key applicationId belongs to EMR Serverless"),
    ],
    ids=["nine-pairs", "empty-key", "duplicate", "service-key"],
)
def test_an_invalid_context_disables_start_with_the_error_beside_the_field(
    demo, launcher, make_invalid, message
):
    fill_ready_form(launcher, demo)
    assert not launcher.start_button.disabled
    beside = make_invalid(launcher.context)
    assert message in beside.value
    launcher.wait_idle(WAIT)
    assert launcher.start_button.disabled
    launcher.start_button.click()
    assert "cannot start yet" in launcher.status.value
    assert launcher.manager.sessions() == []
    with pytest.raises(UserError, match="fix the form first"):
        launcher.start()


def test_the_add_button_stops_at_eight_pairs(launcher):
    for _ in range(8):
        launcher.context.add_button.click()
    assert len(launcher.context.rows) == 8
    assert launcher.context.add_button.disabled
    launcher.context.rows[0].remove.click()
    assert not launcher.context.add_button.disabled


def test_a_secret_looking_value_warns_but_does_not_block(demo, launcher):
    fill_ready_form(launcher, demo)
    row = launcher.context.add_row("owner", "AKIAIOSFODNN7EXAMPLE")
    assert "AWS access key id" in row.message.value and "⚠" in row.message.value
    assert "AKIAIOSFODNN7EXAMPLE" not in row.message.value
    launcher.wait_idle(WAIT)
    assert not launcher.start_button.disabled


def test_a_context_livy_cannot_carry_is_refused_beside_the_row(demo, launcher):
    fill_ready_form(launcher, demo)
    row = launcher.context.add_row("team", "risk:eu")
    assert "cannot go to Livy" in row.message.value
    launcher.wait_idle(WAIT)
    assert launcher.start_button.disabled


def test_start_reaches_idle_shows_the_dashboard_and_stop_deletes_it(demo, launcher):
    fill_ready_form(launcher, demo)
    launcher.context.add_row("project", "churn")
    launcher.wait_idle(WAIT)
    launcher.start_button.click()
    launcher.wait_idle(600)

    info = launcher.session
    assert info is not None and info.state == "idle", launcher.status.value
    assert "<b>idle</b>" in launcher.status.value and "took" in launcher.status.value
    assert info.context == {"project": "churn"} and info.key_arn in launcher.status.value
    assert launcher.manager.active is info
    assert 'href="http' in launcher.dashboard.value
    for shown in ("started at", "idle since", "idle timeout"):
        assert shown in launcher.dashboard.value
    assert launcher.start_button.disabled and not launcher.stop_button.disabled

    launcher.stop_button.click()
    launcher.wait_idle(WAIT)
    assert "<b>stopped</b>" in launcher.status.value
    listed = launcher.manager.livy_client(info.application_id).list_sessions()
    assert info.id not in [int(view["id"]) for view in listed]
    assert launcher.dashboard.value == "" and launcher.stop_button.disabled
    assert not launcher.start_button.disabled


def test_emr_session_without_arguments_returns_the_launcher_on_the_kernels_sessions(demo, shell):
    from emr_cmk_notebook.widgets import SessionLauncher

    shell.run(f"%config EmrCmk.default_key = {READY_KEY!r}")
    shell.run("%config EmrCmk.default_context = ['project=churn']")
    try:
        made = shell.line("emr_session")
        assert isinstance(made, SessionLauncher)
        made.wait_idle(WAIT)
        magics = shell.ip.magics_manager.registry["EmrCmk"]
        assert made.kernel is magics.kernel()
        assert made.key.value == READY_KEY
        assert [(r.key.value, r.value.value) for r in made.context.rows] == [("project", "churn")]
        assert "application/vnd.jupyter.widget-view+json" in made._repr_mimebundle_()
    finally:
        shell.run("%config EmrCmk.default_key = None")
        shell.run("%config EmrCmk.default_context = []")


def test_the_package_launcher_function_makes_a_launcher(backend):
    import emr_cmk_notebook
    from emr_cmk_notebook.widgets import SessionLauncher
    from tests.sessions.conftest import pointed_at

    with pointed_at(backend):
        made = emr_cmk_notebook.launcher(key=READY_KEY)
        made.wait_idle(WAIT)
    assert isinstance(made, SessionLauncher) and made.key.value == READY_KEY
    assert made.application.options


def test_a_quick_change_of_mind_shows_the_readiness_of_the_last_choice(demo, launcher):
    launcher.application.value = demo_app_id(demo)
    launcher.role.value = session_role(demo)
    launcher.key.value = "alias/emr-no-service-grant"
    launcher.key.value = READY_KEY
    assert launcher.start_button.disabled  # nothing checked yet for the new key
    launcher.wait_idle(WAIT)
    assert launcher.report.ready and launcher.report.key == READY_KEY
    assert not launcher.start_button.disabled


def test_spark_connect_from_the_launcher_uses_the_applications_key_and_binds_spark(
    demo_app_keyed, demo, launcher
):
    launcher.kernel.namespace = {}
    launcher.transport.value = "connect"
    fill_ready_form(launcher, demo)
    # The application's key carries project=churn; without it the form says how to set it.
    assert "use the application's key" in launcher.errors["key"].value
    assert "%emr_app update --application-id" in launcher.errors["key"].value
    assert launcher.start_button.disabled
    launcher.context.add_row("project", "churn")
    launcher.wait_idle(WAIT)
    assert launcher.errors["key"].value == "" and not launcher.start_button.disabled

    launcher.start_button.click()
    launcher.wait_idle(600)
    info = launcher.session
    assert info is not None and info.transport == "connect", launcher.status.value
    assert "spark is its SparkSession" in launcher.status.value
    assert 'href="http' in launcher.dashboard.value
    assert "vCPU-hours" in launcher.dashboard.value and "billed usage" in launcher.dashboard.value
    assert launcher.kernel.namespace["spark"].range(10).count() == 10

    launcher.stop_button.click()
    launcher.wait_idle(WAIT)
    assert "<b>stopped</b>" in launcher.status.value and "spark" not in launcher.kernel.namespace
    emr = launcher.manager.target.client("emr-serverless")
    view = emr.get_session(applicationId=info.application_id, sessionId=info.id)["session"]
    assert view["state"] == "TERMINATED"
