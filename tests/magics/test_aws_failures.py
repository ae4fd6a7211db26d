"""Every magic that calls AWS: with no credentials, or an endpoint that does not answer, the cell
fails with one line (``Type: message``) that says what to change and no traceback;
``%config EmrCmk.debug = True`` shows the full one, botocore's error included.

A new magic line that calls AWS gets one entry in ``MAGICS``.
"""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.core import errors
from tests.aws_failures import APP, FAILURES, FAKE_SECRET, KEY, ROLE, dead_endpoint

MAGICS = {
    "app show": f"emr_app show --application-id {APP}",
    "app create": f"emr_app create --name analytics --key {KEY}",
    "app update": f"emr_app update --application-id {APP} --key {KEY}",
    "job submit": f"emr_job submit --application-id {APP} --role {ROLE} --key {KEY} "
    "--entry-point s3://bucket/job.py",
    "job status": f"emr_job status 00fakerun --application-id {APP}",
    "job cancel": f"emr_job cancel 00fakerun --application-id {APP}",
    "job logs": f"emr_job logs 00fakerun --application-id {APP}",
    "job list": f"emr_job list --application-id {APP}",
    "key check": f"emr_key_check --application-id {APP} --role {ROLE} --key {KEY}",
    "key usage": f"emr_key_usage --key {KEY} --since 1d",
    "session start": f"emr_session start --application-id {APP} --role {ROLE} --key {KEY}",
    "session list": f"emr_session list --application-id {APP}",
    "session use": f"emr_session use 1 --application-id {APP}",
}
CASES = [(magic, failure) for magic in MAGICS for failure in FAILURES]


@pytest.fixture
def ip(emr_cmk_home):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "emr_cmk_notebook")
    yield shell
    shell.run_line_magic("config", "EmrCmk.debug = False")


@pytest.mark.parametrize(("magic", "failure"), CASES)
def test_the_cell_fails_with_one_line(ip, magic, failure, monkeypatch, tmp_path, capsys):
    case = FAILURES[failure]
    must_say = case.arrange(monkeypatch, tmp_path)
    result = ip.run_cell(f"%{MAGICS[magic]}")
    error = result.error_in_exec
    assert isinstance(error, getattr(errors, case.family)), repr(error)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert text.strip().splitlines()[-1] == f"{type(error).__name__}: {error}"
    assert must_say in str(error) and "%emr_local start" in str(error)
    assert "Traceback" not in text and FAKE_SECRET not in text


def test_debug_shows_the_full_traceback(ip, monkeypatch, tmp_path, capsys):
    dead_endpoint(monkeypatch, tmp_path)
    ip.run_line_magic("config", "EmrCmk.debug = True")
    result = ip.run_cell(f"%{MAGICS['job list']}")
    assert isinstance(result.error_in_exec, errors.ServiceFault)
    shown = capsys.readouterr().out
    assert "EndpointConnectionError" in shown and "direct cause" in shown
    assert FAKE_SECRET not in shown
