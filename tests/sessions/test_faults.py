"""Lost answers, throttling and 5xx between the kernel and the service: no duplicate, no orphan."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from emr_cmk_notebook.core.errors import ServiceFault
from emr_cmk_notebook.sessions.livy import LivyClient, livy_url
from tests.sessions.conftest import given_name

pytestmark = pytest.mark.integration


def test_a_lost_create_answer_does_not_make_a_second_session(network, managers, app_id, role):
    network.fail("POST", r"/livy/.*/sessions$", "lose_answer")
    network.fail("GET", r"/sessions/\d+/state$", "503", times=2)
    manager = managers(network.endpoint)
    info = manager.start(app_id, role, name="lost-answer")
    named = [
        s for s in manager.livy_client(app_id).list_sessions() if given_name(s) == "lost-answer"
    ]
    assert [s["id"] for s in named] == [info.id]
    posts = [s for m, p, s in network.seen if m == "POST" and p.endswith("/sessions")]
    assert posts == [503], "the lookup by name found it, so the POST was not sent again"
    assert manager.run("1 + 1").text == "2"


def test_throttled_statements_are_retried_but_failed_ones_are_not(network, managers, app_id, role):
    manager = managers(network.endpoint)
    manager.start(app_id, role)
    network.fail("POST", r"/statements$", "throttle", times=2)
    assert manager.run("3 * 3").text == "9"
    network.fail("POST", r"/statements$", "503")
    with pytest.raises(ServiceFault, match="503"):
        manager.run("4 * 4")
    statements = [p for m, p, s in network.seen if m == "POST" and p.endswith("/statements")]
    assert len(statements) == 4, "two throttled, one run, one 503 not retried"


def test_a_throttled_emr_api_still_starts_one_session(managers, backend, app_id, role):
    backend.settings(
        faults={"throttle_rate": 0.3, "error_rate": 0.1, "services": ["emr-serverless"], "seed": 7}
    )
    try:
        manager = managers()
        info = manager.start(app_id, role, name="throttled-api")
    finally:
        backend.settings(faults={})
    named = [
        s for s in manager.livy_client(app_id).list_sessions() if given_name(s) == "throttled-api"
    ]
    assert [s["id"] for s in named] == [info.id]


def test_sessions_started_here_end_when_python_exits_unless_kept(aws_env, app_id, role):
    script = textwrap.dedent(
        f"""
        from emr_cmk_notebook.sessions import SessionManager
        manager = SessionManager()
        gone = manager.start({app_id!r}, {role!r}, name="ends-at-exit")
        kept = manager.start({app_id!r}, {role!r}, name="kept-at-exit", keep=True)
        print(gone.id, kept.id)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    from emr_cmk_notebook.clients import AwsTarget

    client = LivyClient(livy_url(AwsTarget(), app_id), _credentials(), "us-east-1")
    states = {given_name(s): s["state"] for s in client.list_sessions()}
    assert "ends-at-exit" not in states
    assert states.get("kept-at-exit") == "idle"
    kept_id = int(done.stdout.split()[1])
    assert client.delete_session(kept_id)


def _credentials():
    import boto3

    return boto3.Session().get_credentials()
