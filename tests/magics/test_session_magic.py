"""%emr_session and %%emr_spark in a real IPython shell against the local backend."""

from __future__ import annotations

import time
import uuid

import pytest
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions import StatementFailed
from tests.conftest import demo_app_id, key_arn, submitter_without_data_keys
from tests.magics.conftest import Shell
from tests.sessions.conftest import pointed_at, session_role

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def started(backend):
    """Defaults set with %config, then one session started with the magic for this module."""
    status = backend.status()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    shell = Shell(ip)
    with pointed_at(backend):
        shell.run(f"%config EmrCmk.default_application = {demo_app_id(status)!r}")
        shell.run(f"%config EmrCmk.default_role = {session_role(status)!r}")
        info = shell.line("emr_session", "start --key alias/emr-analytics --context project=churn")
        yield info
        shell.line("emr_session", "stop --all")
        shell.run("%config EmrCmk.default_application = None")
        shell.run("%config EmrCmk.default_role = None")


def test_start_uses_the_configured_defaults_and_shows_key_and_source(started, shell, demo):
    assert started.application_id == demo_app_id(demo)
    status = repr(shell.line("emr_session", "status"))
    assert key_arn(demo, "alias/emr-analytics") in status
    assert "session override" in status and "project=churn" in status


def test_a_cell_runs_in_the_session_and_prints_its_output(started, shell, capsys):
    assert shell.run("%%emr_spark\nspark.range(1000).count()") is None
    assert capsys.readouterr().out.strip().endswith("1000")


def test_dash_o_brings_the_last_dataframe_back_as_pandas(started, shell):
    shell.run("%%emr_spark -o doubled\ndf = spark.range(4)\ndf.selectExpr('id', 'id * 2 AS twice')")
    frame = shell.user_ns["doubled"]
    assert list(frame.columns) == ["id", "twice"]
    assert frame["twice"].tolist() == [0, 2, 4, 6]


def test_sql_with_dash_o_is_a_typed_table(started, shell):
    shell.run("%%emr_spark --sql -o counted\nSELECT COUNT(*) AS n FROM range(7)")
    assert shell.user_ns["counted"]["n"].tolist() == [7]


def test_a_failing_cell_fails_with_one_line_and_shows_the_remote_traceback(started, shell, capsys):
    with pytest.raises(StatementFailed) as failed:
        shell.run("%%emr_spark\nx = {}\nx['missing']")
    assert str(failed.value) == "KeyError: 'missing'"
    err = capsys.readouterr().err
    assert 'File "<stdin>", line 2' in err and "KeyError" in err


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%emr_session start --idle-timeout soon", "invalid int value"),
        ("%emr_session start --transport connect --spark-name 1x", "not a Python name"),
        ("%emr_session start --transport connect --tag team", "--tag 'team' is not K=V"),
        ("%emr_session start --tag team=risk", "--tag is for --transport connect"),
        ("%emr_session start --transport connect --key alias/emr-analytics", "application's key"),
        (
            "%emr_session start --key alias/emr-analytics --context applicationId=00other",
            "encryption context key applicationId belongs to EMR Serverless",
        ),
        ("%emr_session frobnicate", "invalid choice"),
        ("%emr_session stop 3 --all", "give one of a session id, --all, --orphans"),
        ("%emr_session stop --all --orphans", "give one of a session id, --all, --orphans"),
        ("%emr_session stop 3 --application-id app", "--application-id goes with --orphans"),
        ("%emr_session stop --dry-run", "--dry-run goes with --orphans"),
        ("%emr_session use 999", "not known here"),
        ("%%emr_spark\n   ", "the cell is empty"),
        ("%%emr_spark -o 1x\nspark.range(1)", "not a Python variable name"),
        ("%%emr_spark -o out\ndf = spark.range(1)", "end the cell with the DataFrame"),
        ("%%emr_spark -o out\nspark.range(1", "line 1"),
    ],
)
def test_bad_arguments_are_one_line_and_start_nothing(started, shell, cell, message):
    with pytest.raises(UserError) as refused:
        shell.run(cell)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert len(shell.line("emr_session", "list").sessions) == 1


def test_no_credential_reaches_the_output(started, shell, capsys, backend):
    shell.line("emr_session", "status")
    shell.line("emr_session", "logs")
    shell.run("%%emr_spark\nspark.range(3).count()")
    with pytest.raises(StatementFailed):
        shell.run("%%emr_spark\nraise ValueError('boom')")
    seen = capsys.readouterr()
    secret = backend.env()["AWS_SECRET_ACCESS_KEY"]
    for text in (seen.out, seen.err, repr(shell.line("emr_session", "list"))):
        assert secret not in text and "Signature=" not in text and "Credential=" not in text


def test_stop_deletes_the_session_and_later_cells_say_so(backend, shell, demo):
    with pointed_at(backend):
        app = demo_app_id(demo)
        role = session_role(demo)
        info = shell.line("emr_session", f"start --application-id {app} --role {role}")
        assert info.key_source == "AWS owned key"
        shell.line("emr_session", f"stop {info.id}")
        with pytest.raises(UserError, match="no active session"):
            shell.run("%%emr_spark\n1")


@pytest.mark.parametrize("transport", ["livy", "connect"])
def test_start_rejected_at_submission_is_one_line_and_starts_nothing(
    shell, backend, demo, transport, monkeypatch, capsys
):
    role, key = session_role(demo), key_arn(demo, "alias/emr-analytics")
    emr = backend.client("emr-serverless")
    # An application this kernel has not used yet, so its Livy client signs as the new user.
    app = emr.create_application(
        name=f"rejected-{uuid.uuid4().hex[:6]}",
        releaseLabel="emr-7.13.0",
        type="Spark",
        interactiveConfiguration={"livyEndpointEnabled": True, "sessionEnabled": True},
        clientToken=str(uuid.uuid4()),
    )["applicationId"]
    for wanted in ("CREATED", "STARTED"):
        deadline = time.monotonic() + 20
        while emr.get_application(applicationId=app)["application"]["state"] != wanted:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if wanted == "CREATED":
            emr.start_application(applicationId=app)
    for name, value in submitter_without_data_keys(backend).items():
        monkeypatch.setenv(name, value)
    override = " --session-key-override" if transport == "connect" else ""
    with pytest.raises(UserError) as refused:
        shell.line(
            "emr_session",
            f"start --application-id {app} --role {role} --key {key} --transport {transport} "
            f"--skip-check{override}",
        )
    message = str(refused.value)
    assert key in message and "kms:GenerateDataKey" in message
    assert "\n" not in message
    assert "the key check was skipped" in capsys.readouterr().err
    assert emr.list_sessions(applicationId=app)["sessions"] == []
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager

    # Livy sessions are visible to their creator only: this user's list is the proof.
    as_user = SessionManager(AwsTarget(), cleanup_at_exit=False)
    assert as_user.livy_client(app).list_sessions() == []
