"""Every ``emr-cmk`` command that calls AWS: with no credentials, or an endpoint that does not
answer, one line on stderr that says what to change, no traceback, and the exit code of its family
(2 for something to change, 1 for AWS not reachable). ``--debug`` shows the full traceback.

A new command that calls AWS gets one line in ``COMMANDS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emr_cmk_notebook.cli import main
from tests.aws_failures import APP, FAILURES, FAKE_SECRET, KEY, ROLE, dead_endpoint

COMMANDS = {
    "job submit": f"job submit --application-id {APP} --role {ROLE} --key {KEY} --entry-point "
    "s3://bucket/job.py",
    "job status": f"job status --application-id {APP} 00fakerun",
    "job cancel": f"job cancel --application-id {APP} 00fakerun",
    "job list": f"job list --application-id {APP}",
    "key-check": f"key-check --application-id {APP} --role {ROLE} --key {KEY}",
    "session start": f"session start --application-id {APP} --role {ROLE} --key {KEY}",
    "session list": f"session list --application-id {APP}",
    "session status": f"session status --application-id {APP} 1",
    "session verify": f"session verify --application-id {APP} 1",
    "session stop": f"session stop --application-id {APP} 1",
    "usage fetch": f"usage fetch --key {KEY} --since 1d",
}
HINTS = {"no credentials": 'eval "$(emr-cmk local env)"', "dead endpoint": "local backend"}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("command", COMMANDS)
def test_one_line_and_the_exit_code_of_its_family(
    command, failure, monkeypatch, tmp_path, capsys, emr_cmk_home
):
    case = FAILURES[failure]
    must_say = case.arrange(monkeypatch, tmp_path)
    code = main(COMMANDS[command].split())
    err = capsys.readouterr().err
    assert code == case.exit_code, err
    assert err.count("\n") == 1 and err.startswith("emr-cmk: "), err
    assert must_say in err and HINTS[failure] in err, err
    assert "Traceback" not in err and FAKE_SECRET not in err


def test_debug_shows_the_botocore_traceback_and_no_secret(monkeypatch, tmp_path, emr_cmk_home):
    endpoint = dead_endpoint(monkeypatch, tmp_path)
    argv = COMMANDS["job list"].split()
    cli = [str(Path(sys.executable).parent / "emr-cmk")]

    plain = subprocess.run([*cli, *argv], env=dict(os.environ), capture_output=True, text=True)
    debug = subprocess.run(
        [*cli, "--debug", *argv], env=dict(os.environ), capture_output=True, text=True
    )

    assert plain.returncode == debug.returncode == 1
    assert plain.stderr.count("\n") == 1 and endpoint in plain.stderr
    assert "Traceback" in debug.stderr and "EndpointConnectionError" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()
    assert FAKE_SECRET not in debug.stderr
