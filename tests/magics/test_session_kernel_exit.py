"""A real Jupyter kernel ends the sessions it started (Livy and Spark Connect) when it shuts down,
except kept ones."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.livy import LivyClient
from tests.conftest import demo_app_id
from tests.sessions.conftest import given_name, pointed_at, session_role

pytestmark = pytest.mark.integration


def test_kernel_shutdown_deletes_its_sessions_unless_kept(backend, demo):
    from jupyter_client.manager import start_new_kernel

    app, role = demo_app_id(demo), session_role(demo)
    with pointed_at(backend):
        kernel, client = start_new_kernel(kernel_name="python3")
        try:
            for code in (
                "%load_ext emr_cmk_notebook",
                f"%emr_session start --application-id {app} --role {role} --name kernel-ends",
                f"%emr_session start --application-id {app} --role {role} --name kernel-kept "
                "--keep",
                f"%emr_session start --application-id {app} --role {role} --name connect-ends "
                "--transport connect",
                "assert spark.range(3).count() == 3",
            ):
                reply = client.execute_interactive(code, timeout=180, output_hook=lambda _: None)
                assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
            kernel.shutdown_kernel(now=False)
        livy = LivyClient.for_application(AwsTarget(), app)
        states = {given_name(s): (s["id"], s["state"]) for s in livy.list_sessions()}
        connect = AwsTarget().client("emr-serverless").list_sessions(applicationId=app)
    assert "kernel-ends" not in states
    # spark.stop() alone would leave a Spark Connect session billing: the kernel terminated it.
    ended = [s["state"] for s in connect["sessions"] if s.get("name") == "connect-ends"]
    assert ended == ["TERMINATED"]
    kept_id, kept_state = states["kernel-kept"]
    assert kept_state == "idle"
    assert livy.delete_session(kept_id)
