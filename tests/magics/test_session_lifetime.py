"""Cost and lifetime in a real kernel: sessions left by a killed kernel are named orphans by the
next one and ended with ``stop --orphans``; ``status`` shows start, idle, timeout, dashboard and
usage; a session idle too long is said in one line before the next cell."""

from __future__ import annotations

import time

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.livy import LivyClient
from tests.conftest import demo_app_id
from tests.kernels import Kernel, crash_holding
from tests.sessions.conftest import given_name, pointed_at, session_role

pytestmark = pytest.mark.integration


def test_sessions_of_a_killed_kernel_are_orphans_the_next_kernel_ends(backend, demo, runtime_dir):
    app, role = demo_app_id(demo), session_role(demo)
    start = f"%emr_session start --application-id {app} --role {role}"
    with pointed_at(backend):
        crash_holding(
            f"{start} --name left-livy",
            f"{start} --name left-connect --transport connect",
            f"{start} --name left-kept --keep",
        )
        livy = LivyClient.for_application(AwsTarget(), app)
        emr = AwsTarget().client("emr-serverless")
        by_name = {given_name(s): s for s in livy.list_sessions()}
        assert by_name["left-livy"]["state"] == "idle", "SIGKILL left it running"

        after = Kernel()
        try:
            loaded = after.run("%load_ext emr_cmk_notebook")
            listed = after.run(f"%emr_session list --application-id {app}")
            stopped = after.run(f"%emr_session stop --orphans --application-id {app}")
            again = after.run(f"%emr_session list --application-id {app}")
        finally:
            after.shutdown()
        livy_after = {given_name(s): s["state"] for s in livy.list_sessions()}
        connect = emr.list_sessions(applicationId=app)["sessions"]
        connect_states = {s.get("name"): s["state"] for s in connect}
        kept_id = by_name["left-kept"]["id"]
        livy.delete_session(kept_id)

    # One line at load, before any AWS call: two sessions (the kept one is not an orphan).
    assert "2 sessions started by a kernel that no longer runs" in loaded
    assert "stop --orphans" in loaded and len(loaded.strip().splitlines()) == 1
    orphan_lines = [line for line in listed.splitlines() if "ORPHANED" in line]
    assert len(orphan_lines) == 2
    assert any("left-livy" in line for line in orphan_lines)
    assert any("left-connect" in line for line in orphan_lines)
    assert not any("left-kept" in line for line in orphan_lines)
    assert str(by_name["left-livy"]["id"]) in stopped and "orphaned" in stopped
    assert "ORPHANED" not in again
    assert "left-livy" not in livy_after
    assert livy_after["left-kept"] == "idle"
    assert connect_states["left-connect"] in ("TERMINATING", "TERMINATED")
    assert list(runtime_dir.glob("emr-cmk-sessions/*.json")) == []


def test_status_shows_lifetime_and_cost_and_an_idle_session_is_said_once(
    backend, demo, runtime_dir
):
    app, role = demo_app_id(demo), session_role(demo)
    start = f"%emr_session start --application-id {app} --role {role}"
    with pointed_at(backend):
        kernel = Kernel()
        try:
            kernel.run("%load_ext emr_cmk_notebook")
            kernel.run(f"{start} --name lifetime-connect --transport connect --idle-timeout 20")
            time.sleep(2)
            status = kernel.run("%emr_session status")
            kernel.run(f"{start} --name lifetime-livy")
            kernel.run("%%emr_spark\nprint(1 + 1)")
            # Set within the cell that waits: the check before it still sees the default.
            kernel.run(
                "get_ipython().run_line_magic('config', 'EmrCmk.idle_notice_minutes = 0.05')\n"
                "import time; time.sleep(4)"
            )
            noticed = kernel.run("x = 1")
            once = kernel.run("y = 2")
            livy_status = kernel.run("%emr_session status")
        finally:
            kernel.shutdown()

    for label in ("started at", "idle since", "idle timeout", "dashboard", "total usage"):
        assert label in status, status
    assert "20 min" in status
    assert "vCPU-hours" in status and "memory GB-hours" in status
    assert "storage GB-hours" in status and "billed usage" in status
    assert "http" in status.split("dashboard", 1)[1].splitlines()[0]
    idle_lines = [line for line in noticed.splitlines() if "has been idle for" in line]
    assert len(idle_lines) == 2, noticed  # both sessions: idle for 3 s+ each
    assert all("%emr_session stop" in line for line in idle_lines)
    assert "has been idle" not in once
    assert "idle since" in livy_status and "(not idle)" not in livy_status
