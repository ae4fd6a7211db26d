"""A session that cannot be ended is reported as a failure, with its id, and stays listed: a
session that keeps billing must never be reported as ended."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.sessions import StopFailed

pytestmark = pytest.mark.integration


def test_a_failed_livy_delete_is_an_error_naming_the_session_which_stays_listed(
    network, managers, app_id, role
):
    manager = managers(network.endpoint)
    info = manager.start(app_id, role, name="delete-refused")
    network.fail("DELETE", rf"/sessions/{info.id}$", "503", times=10)
    with pytest.raises(StopFailed) as failed:
        manager.stop()
    message = str(failed.value)
    assert f"session {info.id}" in message and "still running" in message and "\n" not in message
    assert manager.sessions() == [info] and manager.active is info
    assert info.id in [s.id for s in manager.list(app_id).sessions]
    network.rules.clear()
    assert manager.stop() == [info.id]
    assert manager.sessions() == []
    assert info.id not in [s.id for s in manager.list(app_id).sessions]


def test_a_failed_terminate_session_is_an_error_and_the_session_keeps_running_listed(
    network, managers, backend, app_id, role
):
    manager = managers(network.endpoint)
    info = manager.start(app_id, role, transport="connect", timeout=120)
    network.fail("DELETE", rf"/applications/{app_id}/sessions/{info.id}$", "503", times=10)
    with pytest.raises(StopFailed, match=f"session {info.id}: .*TerminateSession"):
        manager.stop(info.id)
    emr = backend.client("emr-serverless")
    assert emr.get_session(applicationId=app_id, sessionId=info.id)["session"]["state"] in (
        "STARTED",
        "IDLE",
    )
    assert [s.id for s in manager.sessions()] == [info.id]
    network.rules.clear()
    assert manager.stop(info.id) == [info.id]
    assert emr.get_session(applicationId=app_id, sessionId=info.id)["session"]["state"] == (
        "TERMINATED"
    )


def test_the_magic_says_the_stop_failed_and_keeps_the_session(
    network, aws_env, app_id, role, capsys
):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    ip.run_line_magic("config", f"EmrCmk.endpoint_url = {network.endpoint!r}")
    try:
        info = ip.run_line_magic(
            "emr_session", f"start --application-id {app_id} --role {role} --name magic-refused"
        )
        network.fail("DELETE", rf"/sessions/{info.id}$", "503", times=10)
        with pytest.raises(StopFailed, match=f"could not stop session {info.id}"):
            ip.run_line_magic("emr_session", "stop")
        assert "stopped" not in capsys.readouterr().out
        listed = ip.run_line_magic("emr_session", f"list --application-id {app_id}")
        assert [s.id for s in listed.sessions if s.active] == [info.id]
        network.rules.clear()
        ip.run_line_magic("emr_session", "stop")
        assert f"stopped session(s) {info.id}" in capsys.readouterr().out
    finally:
        network.rules.clear()
        ip.run_line_magic("config", "EmrCmk.endpoint_url = None")
