"""The local sessions API: real states, limits, idempotency, the key flow, and the auth proxy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from emr_cmk_notebook.sessions.pyspark_compat import keep_release_pool
from tests.conftest import demo_app_id, key_arn, processes_mentioning, service_data_key_contexts

pytestmark = pytest.mark.integration
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
START_TIMEOUT = 180.0
KEY_ARN_PROPERTY = "spark.emr-serverless.disk.encryptionKeyArn"


def start(emr, app_id: str, **extra) -> str:
    return emr.start_session(
        applicationId=app_id, executionRoleArn=ROLE, clientToken=str(uuid.uuid4()), **extra
    )["sessionId"]


def wait_state(emr, app_id: str, session_id: str, leaving: set[str], timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = emr.get_session(applicationId=app_id, sessionId=session_id)["session"]
        if session["state"] not in leaving:
            return session
        time.sleep(0.1)
    raise AssertionError(f"session {session_id} still {session['state']} after {timeout} s")


def spark_for(endpoint: dict, token: str | None = None):
    from pyspark.sql.connect.session import SparkSession

    keep_release_pool()  # as the notebook client does: closed sessions leave the others working

    port = endpoint["endpoint"].rsplit(":", 1)[1]
    url = f"sc://127.0.0.1:{port}/;use_ssl=false"
    if token is not None:
        url += f";x-aws-proxy-auth={quote(token, safe='')}"
    return SparkSession.builder.remote(url).create()


def refused(endpoint: dict, token: str | None) -> str:
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    spark = spark_for(endpoint, token)
    with pytest.raises(SparkConnectGrpcException) as caught:
        spark.range(3).count()
    return str(caught.value)


@pytest.fixture(scope="module")
def world(backend) -> dict:
    return backend.status()


@pytest.fixture(scope="module")
def emr(backend):
    return backend.client("emr-serverless")


@pytest.fixture(scope="module")
def live(backend, emr, world) -> Iterator[tuple[str, str]]:
    """One running session with the demo key as an override and context project=churn."""
    app_id = demo_app_id(world)
    overrides = {
        "runtimeConfiguration": [
            {
                "classification": "spark-defaults",
                "properties": {
                    KEY_ARN_PROPERTY: key_arn(world, "alias/emr-analytics"),
                    "spark.emr-serverless.disk.encryptionContext": "project:churn",
                },
            }
        ]
    }
    session_id = start(emr, app_id, configurationOverrides=overrides, name="shared")
    session = wait_state(emr, app_id, session_id, {"SUBMITTED", "STARTING"})
    assert session["state"] == "STARTED", session.get("stateDetails")
    yield app_id, session_id
    emr.terminate_session(applicationId=app_id, sessionId=session_id)


# --- without Spark ----------------------------------------------------------------------------


def test_application_without_sessions_is_refused(backend, emr):
    app_id = emr.create_application(
        name=f"nosessions-{uuid.uuid4().hex[:6]}",
        releaseLabel="emr-7.13.0",
        type="Spark",
        interactiveConfiguration={"livyEndpointEnabled": True},
        clientToken=str(uuid.uuid4()),
    )["applicationId"]
    with pytest.raises(ClientError) as caught:
        start(emr, app_id)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "interactiveConfiguration.sessionEnabled" in str(caught.value)


def test_unknown_session_is_not_found(emr, world):
    with pytest.raises(ClientError) as caught:
        emr.get_session(applicationId=demo_app_id(world), sessionId="00nosuchsession0")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_key_the_service_may_not_use_fails_the_session_with_the_kms_reason_and_no_process(
    emr, world
):
    app_id = demo_app_id(world)
    # The caller may use this key, so StartSession passes; its policy forgets the service.
    key = key_arn(world, "alias/emr-no-service-grant")
    overrides = {
        "runtimeConfiguration": [
            {"classification": "spark-defaults", "properties": {KEY_ARN_PROPERTY: key}}
        ]
    }
    session_id = start(emr, app_id, configurationOverrides=overrides)
    session = wait_state(emr, app_id, session_id, {"SUBMITTED", "STARTING"}, timeout=20)
    assert session["state"] == "FAILED"
    assert key in session["stateDetails"]
    assert "AccessDeniedException" in session["stateDetails"]
    assert processes_mentioning(f"connect-{session_id}-") == []


def test_client_token_returns_the_same_session(emr, world):
    app_id = demo_app_id(world)
    token = str(uuid.uuid4())
    first = emr.start_session(applicationId=app_id, executionRoleArn=ROLE, clientToken=token)
    again = emr.start_session(applicationId=app_id, executionRoleArn=ROLE, clientToken=token)
    assert again["sessionId"] == first["sessionId"]
    emr.terminate_session(applicationId=app_id, sessionId=first["sessionId"])
    ended = wait_state(emr, app_id, first["sessionId"], {"SUBMITTED", "STARTING", "TERMINATING"})
    assert ended["state"] in ("TERMINATED", "FAILED")


def test_endpoint_of_a_session_that_is_not_ready_is_refused(emr, world):
    app_id = demo_app_id(world)
    session_id = start(emr, app_id)
    emr.terminate_session(applicationId=app_id, sessionId=session_id)
    with pytest.raises(ClientError) as caught:
        emr.get_session_endpoint(applicationId=app_id, sessionId=session_id)
    assert "its endpoint is available once it is STARTED" in str(caught.value)


# --- with a Spark Connect server --------------------------------------------------------------


def test_count_runs_through_the_proxy_with_the_token(emr, live):
    app_id, session_id = live
    endpoint = emr.get_session_endpoint(applicationId=app_id, sessionId=session_id)
    assert endpoint["endpoint"].startswith("http://127.0.0.1:")
    spark = spark_for(endpoint, endpoint["authToken"])
    assert spark.range(10).count() == 10
    # The client releases a finished query in the background: BUSY, then IDLE.
    state = wait_state(emr, app_id, session_id, {"STARTED", "BUSY"}, timeout=10)
    assert state["state"] == "IDLE"
    assert "idleSince" in state


def test_missing_and_wrong_tokens_are_refused(emr, live):
    app_id, session_id = live
    endpoint = emr.get_session_endpoint(applicationId=app_id, sessionId=session_id)
    assert "missing x-aws-proxy-auth" in refused(endpoint, None)
    wrong = refused(endpoint, "not-the-token")
    assert "not valid for this session" in wrong
    assert endpoint["authToken"] not in wrong


def test_expired_token_is_refused_and_a_new_one_works(backend, emr, live):
    app_id, session_id = live
    backend.settings(session_token_ttl=1)
    try:
        old = emr.get_session_endpoint(applicationId=app_id, sessionId=session_id)
    finally:
        backend.settings(session_token_ttl=3600)
    time.sleep(1.5)
    assert "has expired" in refused(old, old["authToken"])
    new = emr.get_session_endpoint(applicationId=app_id, sessionId=session_id)
    assert spark_for(new, new["authToken"]).range(4).count() == 4


def test_service_used_the_override_key_with_the_session_context(backend, world, live):
    app_id, _ = live
    contexts = service_data_key_contexts(backend, key_arn(world, "alias/emr-analytics"))
    assert {"applicationId": app_id, "project": "churn"} in contexts


def test_list_shows_the_session_and_filters_by_state(emr, live):
    app_id, session_id = live
    listed = emr.list_sessions(applicationId=app_id, states=["IDLE", "STARTED", "BUSY"])
    assert session_id in [s["sessionId"] for s in listed["sessions"]]
    failed = emr.list_sessions(applicationId=app_id, states=["FAILED"])["sessions"]
    assert session_id not in [s["sessionId"] for s in failed]


def test_session_limit_refuses_one_more_live_session(backend, emr, live):
    app_id, _ = live
    backend.settings(session_limit=1)
    try:
        with pytest.raises(ClientError) as caught:
            start(emr, app_id)
    finally:
        backend.settings(session_limit=25)
    assert caught.value.response["Error"]["Code"] == "ServiceQuotaExceededException"


def test_terminate_and_idle_timeout_leave_no_process(backend, emr, world):
    app_id = demo_app_id(world)
    stopped = start(emr, app_id)
    idle = start(emr, app_id)
    for session_id in (stopped, idle):
        state = wait_state(emr, app_id, session_id, {"SUBMITTED", "STARTING"})["state"]
        assert state == "STARTED"
        assert processes_mentioning(f"connect-{session_id}-")
    backend.settings(session_idle_timeout=1)
    try:
        emr.terminate_session(applicationId=app_id, sessionId=stopped)
        ended = [
            wait_state(emr, app_id, s, {"STARTED", "IDLE", "TERMINATING"}, timeout=30)
            for s in (stopped, idle)
        ]
    finally:
        backend.settings(session_idle_timeout=0)
    assert [s["state"] for s in ended] == ["TERMINATED", "TERMINATED"]
    assert "idle for more than" in ended[1]["stateDetails"]
    assert processes_mentioning(f"connect-{stopped}-") == []
    assert processes_mentioning(f"connect-{idle}-") == []


def test_server_that_dies_fails_the_session(emr, world):
    app_id = demo_app_id(world)
    session_id = start(emr, app_id)
    assert wait_state(emr, app_id, session_id, {"SUBMITTED", "STARTING"})["state"] == "STARTED"
    for process in processes_mentioning(f"connect-{session_id}-"):
        process.kill()
    session = wait_state(emr, app_id, session_id, {"STARTED", "IDLE"}, timeout=30)
    assert session["state"] == "FAILED"
    assert "exited unexpectedly" in session["stateDetails"]


def test_usage_grows_with_time_and_the_configured_size_and_stops_at_the_end(backend, emr, world):
    app_id = demo_app_id(world)
    big = {"spark.driver.cores": "8", "spark.driver.memory": "32g"}
    overrides = {"runtimeConfiguration": [{"classification": "spark-defaults", "properties": big}]}
    sized = start(emr, app_id, configurationOverrides=overrides)
    plain = start(emr, app_id)
    for session_id in (sized, plain):
        wait_state(emr, app_id, session_id, {"SUBMITTED", "STARTING"})
    time.sleep(2)
    views = {
        s: emr.get_session(applicationId=app_id, sessionId=s)["session"] for s in (sized, plain)
    }
    for session_id in (sized, plain):
        emr.terminate_session(applicationId=app_id, sessionId=session_id)
    ended = wait_state(emr, app_id, plain, {"STARTED", "IDLE", "TERMINATING"}, timeout=30)
    later = emr.get_session(applicationId=app_id, sessionId=plain)["session"]
    time.sleep(1.5)
    frozen = emr.get_session(applicationId=app_id, sessionId=plain)["session"]

    sized_used, plain_used = (views[s]["totalResourceUtilization"] for s in (sized, plain))
    assert plain_used["vCPUHour"] > 0 and plain_used["storageGBHour"] > 0
    # 8 vCPU, 32 GB against the default 4 vCPU, 16 GB, for about as long.
    assert sized_used["vCPUHour"] / sized_used["memoryGBHour"] == pytest.approx(8 / 32, rel=1e-3)
    assert plain_used["vCPUHour"] / plain_used["memoryGBHour"] == pytest.approx(4 / 16, rel=1e-3)
    # AWS bills at least a minute.
    assert views[plain]["billedResourceUtilization"]["vCPUHour"] == pytest.approx(4 / 60, rel=1e-4)
    assert ended["state"] == "TERMINATED"
    assert frozen["totalResourceUtilization"] == later["totalResourceUtilization"]
    assert frozen["totalExecutionDurationSeconds"] >= 2
