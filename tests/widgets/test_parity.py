"""The launcher and ``%emr_session`` are two views over one kernel: driven through the same
scenarios, a session either of them starts is exposed, listed and stopped the same way."""

from __future__ import annotations

import pytest

from tests.sessions.conftest import KEYED_CONTEXT, pointed_at, session_role
from tests.widgets.conftest import READY_KEY, WAIT, fill_ready_form

pytestmark = pytest.mark.integration


def _with_magic(shell, app, demo, transport: str):
    context = " ".join(f"--context {k}={v}" for k, v in KEYED_CONTEXT.items())
    return shell.line(
        "emr_session",
        f"start --application-id {app.id} --role {session_role(demo)} --key {READY_KEY} "
        f"{context} --transport {transport}",
    )


def _with_launcher(shell, app, demo, transport: str):
    from emr_cmk_notebook.widgets import SessionLauncher

    launcher = SessionLauncher.for_magics(shell.ip.magics_manager.registry["EmrCmk"])
    launcher.wait_idle(WAIT)
    launcher.transport.value = transport
    for name, value in KEYED_CONTEXT.items():
        launcher.context.add_row(name, value)
    fill_ready_form(launcher, demo)
    launcher.start()
    launcher.wait_idle(600)
    assert launcher.session is not None, launcher.status.value
    return launcher.session


DRIVERS = {"magic": _with_magic, "launcher": _with_launcher}


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_a_spark_connect_session_binds_spark_and_stopping_it_takes_spark_back(
    driver, shell, demo_app_keyed, demo, backend
):
    shell.user_ns.pop("spark", None)
    with pointed_at(backend):
        info = DRIVERS[driver](shell, demo_app_keyed, demo, "connect")
        assert shell.run("spark.range(4).count()") == 4
        listed = shell.line("emr_session", f"list --application-id {demo_app_keyed.id}")
        assert [s.id for s in listed.sessions if s.active] == [info.id]
        shell.line("emr_session", "stop")
    assert "spark" not in shell.user_ns
    emr = backend.client("emr-serverless")
    session = emr.get_session(applicationId=info.application_id, sessionId=info.id)["session"]
    assert session["state"] == "TERMINATED"


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_a_livy_session_is_offered_to_sparkmagic_and_stopping_it_withdraws_it(
    driver, shell, demo_app_keyed, demo, backend
):
    pytest.importorskip("sparkmagic")
    from emr_cmk_notebook.integrations.sparkmagic import session_name

    with pointed_at(backend):
        info = DRIVERS[driver](shell, demo_app_keyed, demo, "livy")
        registry = shell.ip.magics_manager.registry["RemoteSparkMagics"]
        registered = registry.spark_controller.session_manager.sessions
        assert session_name(info.id) in registered
        shell.line("emr_session", "stop")
    assert session_name(info.id) not in registered
    livy = (
        shell.ip.magics_manager.registry["EmrCmk"].kernel().manager.livy_client(info.application_id)
    )
    assert info.id not in [int(s["id"]) for s in livy.list_sessions() if s["state"] != "killed"]
