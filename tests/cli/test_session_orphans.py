"""`emr-cmk session stop --orphans` from a shell, after a real kernel was killed holding live
sessions: it names what it stops, stops only what the orphan rule says, and a stop that fails is
exit 1 naming the session that still runs."""

from __future__ import annotations

import json

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.conf import EXECUTION_ROLE
from emr_cmk_notebook.sessions.livy import LivyClient
from emr_cmk_notebook.sessions.owner import Owner
from tests.cli.test_session_cmd import emr_cmk
from tests.conftest import demo_app_id
from tests.kernels import crash_holding
from tests.sessions.conftest import given_name, pointed_at, session_role
from tests.sessions.faulty_network import FaultyNetwork

pytestmark = pytest.mark.integration


def test_stop_orphans_ends_what_a_killed_kernel_left_and_only_that(backend, demo, runtime_dir):
    app, role = demo_app_id(demo), session_role(demo)
    start = f"%emr_session start --application-id {app} --role {role}"
    with pointed_at(backend):
        crash_holding(
            f"{start} --name left-livy",
            f"{start} --name left-connect --transport connect",
        )
        livy = LivyClient.for_application(AwsTarget(), app)
        # The same user's dead kernel, but on another host: not this host's to judge.
        elsewhere = Owner("another-host", Owner.here().user, 4242, "k-elsewhere")
        livy.create_session({"kind": "pyspark", "name": elsewhere.stamp("elsewhere"),
                             "conf": {EXECUTION_ROLE: role}})  # fmt: skip
        try:
            _stop_orphans_as_a_user_would(backend, app, livy, runtime_dir)
        finally:
            for session in livy.list_sessions():
                livy.delete_session(session["id"])


def _stop_orphans_as_a_user_would(backend, app: str, livy: LivyClient, runtime_dir) -> None:
    emr = AwsTarget().client("emr-serverless")
    by_name = {given_name(s): s for s in livy.list_sessions()}
    livy_id, elsewhere_id = str(by_name["left-livy"]["id"]), by_name["elsewhere"]["id"]
    connect_id = next(
        s["sessionId"]
        for s in emr.list_sessions(applicationId=app)["sessions"]
        if s.get("name") == "left-connect"
    )

    listed = emr_cmk(backend, "stop", "--orphans", "--dry-run", "--application-id", app)
    assert listed.returncode == 0, listed.stderr
    # Both orphans, each with its transport and who started it; nothing else, nothing stopped.
    lines = listed.stdout.splitlines()
    assert lines[0] == "2 orphaned session(s), not stopped (dry run):"
    assert dict(line.split()[:2] for line in lines[1:]) == {livy_id: "livy", connect_id: "connect"}
    assert all(f"started by {Owner.here().user}@{Owner.here().host} (pid " in x for x in lines[1:])
    assert len(lines) == 3  # not the session of the kernel on another host
    assert livy.session_state(int(livy_id)) == "idle"

    # Livy refuses the DELETE of one orphan: the other is still stopped, and the run fails.
    network = FaultyNetwork(backend.endpoint)
    try:
        network.fail("DELETE", rf"/sessions/{livy_id}$", "503", times=30)
        failed = emr_cmk(
            backend, "stop", "--orphans", "--application-id", app, "--json",
            as_user={"AWS_ENDPOINT_URL": network.endpoint},
        )  # fmt: skip
    finally:
        network.close()
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"emr-cmk: could not stop session {livy_id}: ")
    # The line ends on what it costs; nothing about a list a shell does not have.
    assert error.endswith("it is still running (and billed)")
    outcome = {str(s["id"]): s["stopped"] for s in json.loads(failed.stdout)["sessions"]}
    assert outcome == {livy_id: False, connect_id: True}
    assert livy.session_state(int(livy_id)) == "idle"
    connect = emr.get_session(applicationId=app, sessionId=connect_id)["session"]
    assert connect["state"] in ("TERMINATING", "TERMINATED")

    # No --application-id: the notes the dead kernel left on this host say where to look.
    stopped = emr_cmk(backend, "stop", "--orphans")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines()[0] == "stopped 1 orphaned session(s):"
    assert stopped.stdout.splitlines()[1].split()[:3] == [livy_id, "livy", app]
    assert livy_id not in [str(s["id"]) for s in livy.list_sessions()]
    assert list(runtime_dir.glob("emr-cmk-sessions/*.json")) == []

    again = emr_cmk(backend, "stop", "--orphans", "--application-id", app)
    assert (again.returncode, again.stdout.strip()) == (0, "no orphaned sessions")
    assert livy.session_state(elsewhere_id) in ("starting", "idle")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stop"], "give a session id or --orphans"),
        (["stop", "3", "--orphans"], "give a session id or --orphans"),
        (["stop", "3", "--dry-run", "--application-id", "x"], "--dry-run goes with --orphans"),
        (["stop", "3"], "a session id needs --application-id"),
    ],
)
def test_stop_arguments_that_do_not_fit_are_exit_2_and_one_line(backend, args, message):
    done = emr_cmk(backend, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.strip().count("\n") == 0
