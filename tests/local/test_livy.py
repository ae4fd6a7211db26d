"""The local Livy endpoint: signed requests only, EMR Serverless rules, real PySpark sessions."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT, SECURITY_ACCOUNT
from tests.conftest import (
    demo_app_id,
    iam_user_with,
    key_arn,
    processes_mentioning,
    service_data_key_contexts,
)

pytestmark = pytest.mark.integration
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
ROLE_CONF = {"emr-serverless.session.executionRoleArn": ROLE}
START_TIMEOUT = 120.0


class Livy:
    """A minimal signed Livy client for one application."""

    def __init__(self, url: str, access_key: str, secret: str):
        self.url = url
        self.credentials = Credentials(access_key, secret)

    def request(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        data = b"" if body is None else json.dumps(body).encode()
        signed = AWSRequest(
            method=method,
            url=self.url + path,
            data=data,
            headers={"Content-Type": "application/json"},
        )
        SigV4Auth(self.credentials, "emr-serverless", "us-east-1").add_auth(signed)
        return requests.request(
            method, self.url + path, data=data, headers=dict(signed.headers), timeout=60
        )

    def ok(self, method: str, path: str, body: dict | None = None) -> dict:
        answer = self.request(method, path, body)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def create(self, **body) -> dict:
        return self.ok("POST", "/sessions", {"kind": "pyspark", "conf": ROLE_CONF, **body})

    def wait_state(self, session_id: int, leaving: set[str], timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session = self.ok("GET", f"/sessions/{session_id}")
            if session["state"] not in leaving:
                return session
            time.sleep(0.1)
        raise AssertionError(f"session {session_id} still {session['state']} after {timeout} s")

    def run(self, session_id: int, code: str, kind: str | None = None, timeout: float = 60.0):
        body = {"code": code, **({"kind": kind} if kind else {})}
        statement = self.ok("POST", f"/sessions/{session_id}/statements", body)
        return self.wait_statement(session_id, statement["id"], timeout)

    def wait_statement(self, session_id: int, statement_id: int, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statement = self.ok("GET", f"/sessions/{session_id}/statements/{statement_id}")
            if statement["state"] in ("available", "error", "cancelled"):
                return statement
            time.sleep(0.05)
        raise AssertionError(f"statement {statement_id} still {statement['state']}")


def livy_for(backend, app_id: str, account: str = ANALYTICS_ACCOUNT) -> Livy:
    env = backend.env(account)
    return Livy(
        f"{backend.endpoint}/livy/{app_id}", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    )


def text(statement: dict) -> str:
    output = statement["output"]
    assert output["status"] == "ok", output
    return output["data"]["text/plain"]


def wait_gone(pid: int, local_dir: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        if not alive and not processes_mentioning(local_dir) and not Path(local_dir).exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"session process {pid} or local dir {local_dir} still there")


def create_application(backend, *, livy: bool, start: bool, release: str = "emr-7.13.0") -> str:
    emr = backend.client("emr-serverless")
    interactive = {"livyEndpointEnabled": livy}
    app_id = emr.create_application(
        name=f"livy-{uuid.uuid4().hex[:6]}",
        releaseLabel=release,
        type="Spark",
        interactiveConfiguration=interactive,
        clientToken=str(uuid.uuid4()),
    )["applicationId"]
    deadline = time.monotonic() + 10
    while emr.get_application(applicationId=app_id)["application"]["state"] != "CREATED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if start:
        emr.start_application(applicationId=app_id)
        while emr.get_application(applicationId=app_id)["application"]["state"] != "STARTED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return app_id


LIVY_ACCESS = {"Effect": "Allow", "Action": "emr-serverless:AccessLivyEndpoints", "Resource": "*"}


def user_livy(
    backend, app_id: str, statements: list[dict], *, account: str = ANALYTICS_ACCOUNT
) -> Livy:
    """A Livy client for a new IAM user of ``account`` with ``statements`` as its policy."""
    env = iam_user_with(backend, *statements, account=account)
    url = f"{backend.endpoint}/livy/{app_id}"
    return Livy(url, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(backend) -> dict:
    return backend.status()


@pytest.fixture(scope="module")
def livy(backend, world) -> Livy:
    return livy_for(backend, demo_app_id(world))


@pytest.fixture(scope="module")
def shared_session(livy, world) -> Iterator[dict]:
    """One idle session with the demo key and context project=churn, reused by many tests."""
    created = livy.create(
        name="shared",
        conf={
            **ROLE_CONF,
            "spark.emr-serverless.disk.encryptionKeyArn": key_arn(world, "alias/emr-analytics"),
            "spark.emr-serverless.disk.encryptionContext": "project:churn",
        },
    )
    assert created["state"] == "starting"
    session = livy.wait_state(created["id"], {"not_started", "starting"})
    assert session["state"] == "idle", session["log"]
    yield session
    livy.request("DELETE", f"/sessions/{session['id']}")


# --- the AWS layer: signatures and applications ---------------------------------------------


def test_status_lists_livy_url_only_for_livy_applications(backend, world):
    plain = create_application(backend, livy=False, start=False)
    apps = {a["id"]: a for a in backend.status()["applications"]}
    demo = demo_app_id(world)
    assert apps[demo]["livy_url"] == f"{backend.endpoint}/livy/{demo}"
    assert apps[plain]["livy_url"] is None


def test_unsigned_request_is_refused(livy):
    answer = requests.get(livy.url + "/sessions", timeout=10)
    assert answer.status_code == 403
    assert answer.json()["message"] == "Missing Authentication Token"


def test_wrong_secret_is_refused_without_echoing_secrets(backend, livy):
    env = backend.env()
    wrong = Livy(livy.url, env["AWS_ACCESS_KEY_ID"], "not-the-secret")
    answer = wrong.request("GET", "/sessions")
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert env["AWS_SECRET_ACCESS_KEY"] not in answer.text


def test_tampered_body_is_refused(livy):
    data = json.dumps({"kind": "pyspark", "conf": ROLE_CONF}).encode()
    signed = AWSRequest(method="POST", url=livy.url + "/sessions", data=data)
    SigV4Auth(livy.credentials, "emr-serverless", "us-east-1").add_auth(signed)
    tampered = data.replace(b"pyspark", b"sql")
    answer = requests.post(
        livy.url + "/sessions", data=tampered, headers=dict(signed.headers), timeout=10
    )
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_application_of_another_account_is_not_found(backend, world):
    outsider = user_livy(backend, demo_app_id(world), [LIVY_ACCESS], account=SECURITY_ACCOUNT)
    answer = outsider.request("GET", "/sessions")
    assert answer.status_code == 404
    assert answer.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_caller_without_access_livy_endpoints_is_refused(backend, world):
    app_id = demo_app_id(world)
    stranger = user_livy(backend, app_id, [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}])
    answer = stranger.request("GET", "/sessions")
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    message = answer.json()["message"]
    assert "emr-serverless:AccessLivyEndpoints" in message
    assert f"/applications/{app_id}" in message


def test_creating_a_session_needs_pass_role(backend, world):
    livy = user_livy(backend, demo_app_id(world), [LIVY_ACCESS])
    assert livy.request("GET", "/sessions").status_code == 200
    answer = livy.request("POST", "/sessions", {"kind": "pyspark", "conf": ROLE_CONF})
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert "iam:PassRole" in answer.json()["message"]
    assert livy.ok("GET", "/sessions")["sessions"] == []


def test_application_without_livy_is_refused(backend):
    app_id = create_application(backend, livy=False, start=True)
    answer = livy_for(backend, app_id).request("POST", "/sessions", {"conf": ROLE_CONF})
    assert answer.status_code == 400
    assert "livyEndpointEnabled" in answer.json()["message"]


def test_application_that_is_not_started_is_refused(backend):
    app_id = create_application(backend, livy=True, start=False)
    answer = livy_for(backend, app_id).request("POST", "/sessions", {"conf": ROLE_CONF})
    assert answer.status_code == 400
    assert "not STARTED" in answer.json()["message"]
    assert "StartApplication" in answer.json()["message"]


# --- session requests that never start Spark ------------------------------------------------


def test_missing_execution_role_is_refused(livy):
    answer = livy.request("POST", "/sessions", {"kind": "pyspark", "conf": {}})
    assert answer.status_code == 400
    assert "emr-serverless.session.executionRoleArn" in answer.json()["msg"]


@pytest.mark.parametrize(
    ("role", "says"),
    [
        (f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/" + "r" * 65, "1 to 64 ASCII letters"),
        (f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/Rôle", "1 to 64 ASCII letters"),
        (f"arn:aws:iam::{ANALYTICS_ACCOUNT}:user/analyst", "not an IAM role ARN"),
    ],
)
def test_execution_role_is_held_to_iams_role_rules(livy, role, says):
    conf = {"emr-serverless.session.executionRoleArn": role}
    answer = livy.request("POST", "/sessions", {"kind": "pyspark", "conf": conf})
    assert answer.status_code == 400
    assert says in answer.json()["msg"]


def test_alias_instead_of_key_arn_is_refused_with_the_validation_message(livy):
    alias_arn = f"arn:aws:kms:us-east-1:{ANALYTICS_ACCOUNT}:alias/emr-analytics"
    conf = {**ROLE_CONF, "spark.emr-serverless.disk.encryptionKeyArn": alias_arn}
    answer = livy.request("POST", "/sessions", {"kind": "pyspark", "conf": conf})
    assert answer.status_code == 400
    message = answer.json()["msg"]
    assert "spark.emr-serverless.disk.encryptionKeyArn" in message
    assert "not a KMS key ARN" in message


def test_disabled_key_is_rejected_at_create_and_no_session_is_left(livy, world):
    disabled = key_arn(world, "alias/emr-disabled")
    before = livy.ok("GET", "/sessions")["total"]
    conf = {**ROLE_CONF, "spark.emr-serverless.disk.encryptionKeyArn": disabled}
    answer = livy.request("POST", "/sessions", {"kind": "pyspark", "conf": conf})
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "ValidationException"
    assert disabled in answer.json()["message"]
    assert "DisabledException" in answer.json()["message"]
    assert livy.ok("GET", "/sessions")["total"] == before


def test_key_the_service_may_not_use_leaves_a_dead_session_and_no_process(livy, world):
    # The caller may use this key, so the create passes; its policy forgets the service.
    key = key_arn(world, "alias/emr-no-service-grant")
    conf = {**ROLE_CONF, "spark.emr-serverless.disk.encryptionKeyArn": key}
    created = livy.create(conf=conf)
    session = livy.wait_state(created["id"], {"not_started", "starting"}, timeout=20)
    assert session["state"] == "dead"
    log = "\n".join(livy.ok("GET", f"/sessions/{created['id']}/log")["log"])
    assert key in log
    assert "AccessDeniedException" in log
    app_id = demo_app_id(world)
    assert processes_mentioning(f"livy-{app_id}-{created['id']}-") == []
    livy.ok("DELETE", f"/sessions/{created['id']}")


def test_role_emr_serverless_cannot_assume_leaves_a_dead_session_naming_it(backend, livy):
    iam = backend.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    name = f"livy-untrusted-{uuid.uuid4().hex[:6]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    created = livy.create(conf={"emr-serverless.session.executionRoleArn": role})
    session = livy.wait_state(created["id"], {"not_started", "starting"}, timeout=20)
    assert session["state"] == "dead"
    log = "\n".join(livy.ok("GET", f"/sessions/{created['id']}/log")["log"])
    assert role in log
    assert "trust policy" in log
    livy.ok("DELETE", f"/sessions/{created['id']}")


def test_sessions_are_visible_only_to_their_creator(backend, world, livy, shared_session):
    other = user_livy(backend, demo_app_id(world), [LIVY_ACCESS])
    assert other.request("GET", f"/sessions/{shared_session['id']}").status_code == 404
    assert other.ok("GET", "/sessions")["sessions"] == []
    cancel = other.request("POST", f"/sessions/{shared_session['id']}/statements/0/cancel")
    assert cancel.status_code == 404
    mine = livy.ok("GET", "/sessions")
    assert shared_session["id"] in [s["id"] for s in mine["sessions"]]


def test_session_limit_refuses_one_more_live_session(backend, livy, shared_session):
    backend.settings(livy_session_limit=1)
    try:
        answer = livy.request("POST", "/sessions", {"kind": "pyspark", "conf": ROLE_CONF})
    finally:
        backend.settings(livy_session_limit=25)
    assert answer.status_code == 400
    assert "active Livy sessions" in answer.json()["msg"]


# --- statements in the shared session -------------------------------------------------------


def test_count_runs_in_spark(livy, shared_session):
    assert text(livy.run(shared_session["id"], "spark.range(1000).count()")) == "1000"


def test_service_used_the_key_with_the_session_context(backend, world, shared_session):
    contexts = service_data_key_contexts(backend, key_arn(world, "alias/emr-analytics"))
    assert {"applicationId": demo_app_id(world), "project": "churn"} in contexts


def test_spark_runs_with_io_encryption_and_its_own_local_dir(livy, shared_session):
    code = "(spark.conf.get('spark.io.encryption.enabled'), spark.conf.get('spark.local.dir'))"
    encrypted, local_dir = eval(text(livy.run(shared_session["id"], code)))
    assert encrypted == "true"
    assert Path(local_dir).is_dir()
    assert f"-{shared_session['id']}-" in Path(local_dir).name


def test_print_output_and_last_expression_form_the_text(livy, shared_session):
    statement = livy.run(shared_session["id"], "print('hello')\nanswer = 21 * 2\nanswer")
    assert text(statement) == "hello\n42"
    assert text(livy.run(shared_session["id"], "answer + 1")) == "43"


def test_statement_list_pages_like_livy(livy, shared_session):
    session_id = shared_session["id"]
    livy.run(session_id, "'listed'")
    everything = livy.ok("GET", f"/sessions/{session_id}/statements")
    total = everything["total_statements"]
    assert [s["id"] for s in everything["statements"]] == list(range(total))
    newest = livy.ok("GET", f"/sessions/{session_id}/statements?order=desc&size=1")
    assert newest["total_statements"] == total
    assert [s["output"]["data"]["text/plain"] for s in newest["statements"]] == ["'listed'"]


def test_sql_statement_returns_the_table_as_json(livy, shared_session):
    statement = livy.run(
        shared_session["id"], "SELECT id, id * 2 AS twice FROM range(3)", kind="sql"
    )
    data = statement["output"]["data"]
    table = data["application/json"]
    assert [f["name"] for f in table["schema"]["fields"]] == ["id", "twice"]
    assert table["data"] == [[0, 0], [1, 2], [2, 4]]
    assert "twice" in data["text/plain"]


def test_exception_becomes_an_error_output(livy, shared_session):
    statement = livy.run(shared_session["id"], "x = 1\n1 / 0")
    output = statement["output"]
    assert statement["state"] == "available"
    assert (output["status"], output["ename"], output["evalue"]) == (
        "error",
        "ZeroDivisionError",
        "division by zero",
    )
    assert any("ZeroDivisionError" in line for line in output["traceback"])


@pytest.mark.parametrize("code", ["spark.range(10**12).count()", "import time\ntime.sleep(60)"])
def test_cancel_interrupts_a_long_statement_quickly(livy, shared_session, code):
    session_id = shared_session["id"]
    statement = livy.ok("POST", f"/sessions/{session_id}/statements", {"code": code})
    deadline = time.monotonic() + 30
    while livy.ok("GET", f"/sessions/{session_id}/statements/{statement['id']}")["state"] != (
        "running"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert livy.ok("GET", f"/sessions/{session_id}/state")["state"] == "busy"
    time.sleep(1)
    cancelled_at = time.monotonic()
    path = f"/sessions/{session_id}/statements/{statement['id']}/cancel"
    assert livy.ok("POST", path) == {"msg": "canceled"}
    final = livy.wait_statement(session_id, statement["id"], timeout=15)
    assert final["state"] == "cancelled"
    assert time.monotonic() - cancelled_at < 10
    assert text(livy.run(session_id, "spark.range(5).count()")) == "5"


# --- ending sessions ------------------------------------------------------------------------


def session_process(livy: Livy, session_id: int) -> tuple[int, str]:
    code = "import os\n(os.getpid(), spark.conf.get('spark.local.dir'))"
    pid, local_dir = eval(text(livy.run(session_id, code)))
    assert Path(local_dir).is_dir()
    assert processes_mentioning(local_dir)
    return pid, local_dir


def test_delete_ends_the_process_and_removes_the_local_dir(livy):
    created = livy.create()
    assert livy.wait_state(created["id"], {"not_started", "starting"})["state"] == "idle"
    pid, local_dir = session_process(livy, created["id"])
    assert livy.ok("DELETE", f"/sessions/{created['id']}") == {"msg": "deleted"}
    wait_gone(pid, local_dir)
    assert livy.request("GET", f"/sessions/{created['id']}").status_code == 404


def test_ttl_is_refused_before_emr_7_8_0_where_aws_says_it_cannot_be_changed(backend):
    older = livy_for(
        backend, create_application(backend, livy=True, start=True, release="emr-7.7.0")
    )
    answer = older.request("POST", "/sessions", {"kind": "pyspark", "conf": ROLE_CONF, "ttl": "2h"})
    assert answer.status_code == 400
    assert answer.json()["msg"] == (
        "ttl cannot be set on release emr-7.7.0; the session timeout can be changed from "
        "emr-7.8.0 on"
    )
    assert older.ok("GET", "/sessions")["sessions"] == []


def test_ttl_ends_an_idle_session(livy):
    created = livy.create(ttl="2s")
    assert created["ttl"] == "2s"
    assert livy.wait_state(created["id"], {"not_started", "starting"})["state"] == "idle"
    pid, local_dir = session_process(livy, created["id"])
    session = livy.wait_state(created["id"], {"idle", "shutting_down"}, timeout=20)
    assert session["state"] == "dead"
    log = livy.ok("GET", f"/sessions/{created['id']}/log")["log"]
    assert any("idle for more than 2s" in line for line in log)
    wait_gone(pid, local_dir)
    livy.ok("DELETE", f"/sessions/{created['id']}")
