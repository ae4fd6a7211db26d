"""Spark Connect sessions from a notebook: the key route, the injected spark, tokens, clean-up."""

from __future__ import annotations

import logging
import os
import time
import uuid
from urllib.parse import quote

import pytest
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.apps import ApplicationView
from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN
from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.readiness import NotReady
from emr_cmk_notebook.sessions.connect import check_client, is_loopback
from emr_cmk_notebook.sessions.connect_session import ConnectFailed
from emr_cmk_notebook.sessions.connect_token import connect_url
from emr_cmk_notebook.sessions.manager import SkippedCheckWarning
from emr_cmk_notebook.sessions.pyspark_compat import client_spark
from emr_cmk_notebook.sessions.results import APPLICATION_DEFAULT, AWS_OWNED
from tests.conftest import (
    app_id_named,
    key_arn,
    processes_mentioning,
    submitter_without_data_keys,
)
from tests.sessions.conftest import KEYED_CONTEXT, pointed_at


def test_url_adds_port_443_and_tls_and_percent_encodes_the_token():
    url = connect_url("abc.emr-serverless-services.us-east-1.amazonaws.com", "a+b/c=d;e")
    assert url == (
        "sc://abc.emr-serverless-services.us-east-1.amazonaws.com:443/;use_ssl=true;"
        "x-aws-proxy-auth=a%2Bb%2Fc%3Dd%3Be"
    )


def test_url_keeps_a_loopback_port_without_tls():
    assert connect_url("http://127.0.0.1:4321", "t") == (
        "sc://127.0.0.1:4321/;use_ssl=false;x-aws-proxy-auth=t"
    )
    assert is_loopback("http://127.0.0.1:4321")
    assert not is_loopback("https://abc.amazonaws.com")


def _application(release: str) -> ApplicationView:
    return ApplicationView.from_api(
        {
            "applicationId": "00app",
            "state": "STARTED",
            "releaseLabel": release,
            "arn": "arn:aws:emr-serverless:us-east-1:111122223333:/applications/00app",
            "interactiveConfiguration": {"sessionEnabled": True},
        }
    )


def test_on_aws_emr_7_needs_a_spark_3_5_client_and_emr_spark_8_a_4_0_one():
    assert client_spark() == "4.0"  # the `local` extra's pyspark, which the tests run with
    with pytest.raises(UserError) as caught:
        check_client(_application("emr-7.13.0"), local=False)
    assert str(caught.value).startswith(
        "pyspark 4.0 cannot talk to Spark 3.5 (emr-7.13.0 on 00app)"
    )
    assert "pyspark[connect]==3.5.*" in caught.value.hint
    check_client(_application("emr-spark-8.0.0"), local=False)  # Spark 4.0: no complaint
    # The local backend runs Spark 4.0 whatever the label, so an emr-7.13.0 application there
    # takes the 4.0 client.
    check_client(_application("emr-7.13.0"), local=True)


def test_a_session_on_the_emr_spark_8_application_runs_with_the_pyspark_4_client(
    managers, demo, role
):
    app = app_id_named(demo, "spark4-app")
    manager = managers()
    info = manager.start(app, role, transport="connect", timeout=120)
    assert (info.key_source, info.key_arn) == (AWS_OWNED, None)
    assert manager.connect_session(info.id).spark.range(4).count() == 4
    assert manager.stop(info.id) == [info.id]


def test_spark_properties_for_the_disk_key_go_through_session_key_override_only(
    managers, demo, app_id, role
):
    key = key_arn(demo, "alias/emr-analytics")
    manager = managers()
    for conf in ({LIVY_KEY_ARN: key}, {LIVY_CONTEXT: "project:x"}):
        with pytest.raises(UserError) as refused:
            manager.start(app_id, role, transport="connect", conf=conf)
        assert "is not set for this session and cannot be overridden" in str(refused.value)
        assert "--session-key-override" in refused.value.hint
    # Next to --key K --session-key-override, only K itself may be repeated.
    other = key_arn(demo, "alias/emr-no-service-grant")
    with pytest.raises(UserError, match=f"is '{key}' for this session"):
        manager.start(
            app_id, role, key, transport="connect", session_key_override=True,
            conf={LIVY_KEY_ARN: other},
        )  # fmt: skip
    emr = manager.target.client("emr-serverless")
    assert (
        emr.list_sessions(applicationId=app_id, states=["SUBMITTED", "STARTING"])["sessions"] == []
    )
    assert manager.sessions() == []


def test_key_that_is_not_the_applications_stops_with_the_update_command(
    managers, demo, app_id, role
):
    key = key_arn(demo, "alias/emr-analytics")
    with pytest.raises(UserError) as caught:
        managers().start(app_id, role, key, transport="connect")
    assert "use the application's key" in str(caught.value)
    assert caught.value.hint.startswith(f"%emr_app update --application-id {app_id} --key {key}")
    emr = managers().target.client("emr-serverless")
    assert (
        emr.list_sessions(applicationId=app_id, states=["SUBMITTED", "STARTING"])["sessions"] == []
    )


@pytest.mark.parametrize(
    ("release", "interactive", "message", "hint"),
    [
        (
            "emr-7.13.0",
            {"livyEndpointEnabled": True},
            "application {app} does not have sessions enabled",
            "%emr_app update --application-id {app} --sessions --restart",
        ),
        (
            "emr-7.12.0",
            {"livyEndpointEnabled": True},
            "application {app} runs emr-7.12.0; Spark Connect sessions need emr-7.13.0 or later",
            "create an application on emr-7.13.0 or later, or use --transport livy",
        ),
    ],
)
def test_an_application_that_cannot_run_connect_sessions_is_refused_with_the_way_out(
    backend, managers, role, release, interactive, message, hint
):
    with pointed_at(backend):
        emr = managers().target.client("emr-serverless")
        app = emr.create_application(
            name=f"no-connect-{uuid.uuid4().hex[:6]}",
            releaseLabel=release,
            type="Spark",
            interactiveConfiguration=interactive,
            clientToken=str(uuid.uuid4()),
        )["applicationId"]
        with pytest.raises(UserError) as caught:
            managers().start(app, role, transport="connect")
    assert str(caught.value) == f"{message} ({hint})".format(app=app)
    assert emr.list_sessions(applicationId=app)["sessions"] == []


def test_a_session_the_key_policy_refuses_fails_clearly_and_is_gone(backend, managers, demo, role):
    key = key_arn(demo, "alias/emr-analytics")
    emr = managers().target.client("emr-serverless")
    app = emr.create_application(
        name=f"connect-{uuid.uuid4().hex[:6]}",
        releaseLabel="emr-7.13.0",
        type="Spark",
        interactiveConfiguration={"sessionEnabled": True},
        diskEncryptionConfiguration={"encryptionKeyArn": key},
        clientToken=str(uuid.uuid4()),
    )["applicationId"]
    while emr.get_application(applicationId=app)["application"]["state"] != "CREATED":
        time.sleep(0.05)
    emr.start_application(applicationId=app)
    while emr.get_application(applicationId=app)["application"]["state"] != "STARTED":
        time.sleep(0.05)
    # The demo key's policy lets the service use it for the demo application only: the
    # readiness check sees that before anything starts...
    with pytest.raises(NotReady) as refused:
        managers().start(app, role, key, transport="connect", timeout=60)
    assert "aws:SourceArn" in str(refused.value)
    assert emr.list_sessions(applicationId=app)["sessions"] == []
    # ...and without it, the service's refusal fails the session with the reason.
    with pytest.warns(SkippedCheckWarning), pytest.raises(ServiceFault) as caught:
        managers().start(app, role, key, transport="connect", timeout=60, skip_check=True)
    assert "is FAILED: Unable to use KMS key" in str(caught.value)
    sessions = emr.list_sessions(applicationId=app)["sessions"]
    assert [s["state"] for s in sessions] == ["FAILED"]
    assert processes_mentioning(f"connect-{sessions[0]['sessionId']}-") == []


def test_a_start_the_service_rejects_is_one_line_and_leaves_nothing(
    backend, managers, demo, app_id, role, monkeypatch
):
    key = key_arn(demo, "alias/emr-analytics")
    emr = backend.client("emr-serverless")
    before = emr.list_sessions(applicationId=app_id)["sessions"]
    for name, value in submitter_without_data_keys(backend).items():
        monkeypatch.setenv(name, value)
    manager = managers()
    with pytest.warns(SkippedCheckWarning), pytest.raises(UserError) as refused:
        manager.start(
            app_id,
            role,
            key,
            transport="connect",
            session_key_override=True,
            skip_check=True,
            timeout=60,
        )
    assert str(refused.value).startswith(f"StartSession: Unable to use KMS key {key}")
    assert "kms:GenerateDataKey" in str(refused.value)
    assert emr.list_sessions(applicationId=app_id)["sessions"] == before
    assert manager.sessions() == []


def test_notebook_flow_count_refresh_verify_and_stop(
    backend, demo, app_id, role, capsys, caplog, monkeypatch
):
    from emr_cmk_notebook.sessions.connect_token import SessionToken

    key = key_arn(demo, "alias/emr-analytics")
    caplog.set_level(logging.DEBUG)  # pyspark's and grpc's logs too: no token may reach them
    issued: list[str] = []  # every token GetSessionEndpoint handed out (watched, not replaced)
    refresh = SessionToken._refresh

    def watched_refresh(self) -> None:
        refresh(self)
        issued.append(self._token)

    monkeypatch.setattr(SessionToken, "_refresh", watched_refresh)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")

    def run(cell: str):
        result = ip.run_cell(cell)
        if result.error_before_exec is not None:
            raise result.error_before_exec
        if result.error_in_exec is not None:
            raise result.error_in_exec
        return result.result

    backend.settings(session_token_ttl=3)
    try:
        with pointed_at(backend):
            info = run(
                f"%emr_session start --transport connect --application-id {app_id} "
                f"--role {role} --key {key} --context project=connect --session-key-override "
                "--spark-name sc_spark --tag team=risk --idle-timeout 30"
            )
            assert (info.transport, info.kind) == ("connect", None)
            emr = backend.client("emr-serverless")
            view = emr.get_session(applicationId=app_id, sessionId=info.id)["session"]
            # The user's tags, and who started the session (see sessions/owner.py).
            mine = {k: v for k, v in view["tags"].items() if not k.startswith("emr-cmk:")}
            assert (mine, view["idleTimeoutMinutes"]) == ({"team": "risk"}, 30)
            assert view["tags"]["emr-cmk:pid"] == str(os.getpid())
            assert run("sc_spark.range(10).count()") == 10
            # Longer than the token's life: the next query needs, and gets, a new token.
            time.sleep(3.5)
            assert run("sc_spark.range(7).count()") == 7
            evidence = run("%emr_session verify")
            assert evidence.key_arn == key
            assert evidence.status == "verified", evidence.message
            run("%emr_session stop")
            emr = backend.client("emr-serverless")
            session = emr.get_session(applicationId=app_id, sessionId=info.id)["session"]
    finally:
        backend.settings(session_token_ttl=3600)
    assert session["state"] == "TERMINATED"
    assert "sc_spark" not in ip.user_ns
    deadline = time.monotonic() + 15
    while processes_mentioning(f"connect-{info.id}-") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(f"connect-{info.id}-") == []
    printed = capsys.readouterr()
    assert "AWS does not document spark.emr-serverless.disk.*" in printed.err
    assert len(issued) >= 2  # the first token, and the one that replaced it
    shown = [printed.out, printed.err, caplog.text, repr(info), repr(evidence)]
    for token in issued:
        encoded = quote(token, safe="")
        for i, text in enumerate(shown):
            for what in (token, encoded):
                if what in text:
                    at = text.index(what)
                    raise AssertionError(f"{i}: {text[max(0, at - 300) : at + 80]}")


def test_a_query_after_the_server_is_gone_says_so_at_once(managers, app_id, role):
    manager = managers()
    info = manager.start(app_id, role, transport="connect", timeout=120)
    spark = manager.connect_session(info.id).spark
    assert spark.range(3).count() == 3
    for process in processes_mentioning(f"connect-{info.id}-"):
        process.kill()
    deadline = time.monotonic() + 30
    while manager.status(info.id).state != "FAILED" and time.monotonic() < deadline:
        time.sleep(0.2)
    began = time.monotonic()
    with pytest.raises(ConnectFailed) as caught:
        spark.range(3).count()
    assert time.monotonic() - began < 10
    assert str(caught.value) == (
        f"session {info.id} is FAILED: The Spark Connect server exited unexpectedly; "
        "start a new session"
    )


def test_the_documented_route_uses_the_applications_key_and_other_kernels_can_attach(
    demo_app_keyed, managers, role
):
    app = demo_app_keyed
    owner = managers()
    info = owner.start(app.id, role, "alias/emr-analytics", KEYED_CONTEXT, transport="connect")
    assert (info.key_arn, info.key_source, info.context) == (
        app.encryption.key,
        APPLICATION_DEFAULT,
        KEYED_CONTEXT,
    )
    emr = owner.target.client("emr-serverless")
    view = emr.get_session(applicationId=app.id, sessionId=info.id)["session"]
    assert "configurationOverrides" not in view  # nothing but the application's key

    other = managers()
    listed = {i.id: i for i in other.list(app.id).sessions}
    assert listed[info.id].transport == "connect"
    shown = other.list(app.id)
    assert shown.to_frame().set_index("id").loc[info.id, "transport"] == "connect"
    assert f"{info.id} connect" in repr(shown)
    assert listed[info.id].key_arn == app.encryption.key
    attached = other.use(info.id, app.id)
    assert not attached.started_here
    assert other.connect_session(info.id).spark.range(5).count() == 5
    other.close()  # attached, not started there: it keeps running
    state = emr.get_session(applicationId=app.id, sessionId=info.id)["session"]["state"]
    assert state in ("STARTED", "IDLE", "BUSY")
    assert owner.stop(info.id) == [info.id]
    assert emr.get_session(applicationId=app.id, sessionId=info.id)["session"]["state"] == (
        "TERMINATED"
    )


def test_a_key_the_readiness_check_refuses_starts_nothing(managers, app_id, demo, role):
    key = key_arn(demo, "alias/emr-wrong-context-key")
    manager = managers()
    with pytest.raises(NotReady):
        manager.start(
            app_id, role, key, {"project": "x"}, transport="connect", session_key_override=True
        )
    emr = manager.target.client("emr-serverless")
    live = ["SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY"]
    assert emr.list_sessions(applicationId=app_id, states=live)["sessions"] == []


def test_calls_made_after_the_token_expired_carry_the_new_token(
    backend, managers, app_id, role, caplog, monkeypatch
):
    from pyspark.sql.connect.functions import udf
    from pyspark.sql.connect.session import SparkSession
    from pyspark.sql.types import LongType

    # pyspark logs (and otherwise ignores) a refused ReleaseExecute; let its log through.
    connect_log = logging.getLogger("pyspark.sql.connect.logging")
    monkeypatch.setattr(connect_log, "disabled", False)
    caplog.set_level(logging.WARNING, logger=connect_log.name)
    backend.settings(session_token_ttl=3)
    try:
        manager = managers()
        info = manager.start(app_id, role, transport="connect", timeout=120)
        spark = manager.connect_session(info.id).spark
        # pyspark's helpers (udf here) use the active session: the new one, not an ended one.
        assert SparkSession.active() is spark

        def slow(x: int) -> int:
            import time

            time.sleep(4)
            return x

        # The query outlives the token it started with; the calls that follow it must not
        # send that token again.
        assert spark.range(1).select(udf(slow, LongType())("id")).collect()[0][0] == 0
        assert spark.range(4).count() == 4
        time.sleep(1)  # ReleaseExecute runs in the background
    finally:
        backend.settings(session_token_ttl=3600)
    assert "auth token has expired" not in caplog.text
