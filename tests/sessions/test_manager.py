"""SessionManager against the local backend: encrypted sessions, statements, fail closed."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from emr_cmk_notebook import apps
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN
from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.sessions import SessionManager, StatementFailed
from emr_cmk_notebook.sessions.manager import SessionFailed
from tests.conftest import demo_app_id, key_arn, service_data_key_contexts
from tests.sessions.conftest import given_name, pointed_at, session_role

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(backend):
    """One session with alias/emr-analytics and a context, shared by the statement tests."""
    status = backend.status()
    with pointed_at(backend):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        info = manager.start(
            demo_app_id(status),
            session_role(status),
            key="alias/emr-analytics",
            context={"project": "churn"},
        )
        yield manager, info
        manager.close()


def test_session_runs_spark_on_the_requested_key_and_context(live, backend, demo):
    manager, info = live
    arn = key_arn(demo, "alias/emr-analytics")
    assert info.state == "idle"
    assert (info.key_arn, info.key_source) == (arn, "session override")
    assert dict(info.context) == {"project": "churn"}
    assert manager.run("spark.range(1000).count()").text == "1000"
    with pointed_at(backend):
        view = manager.livy_client(info.application_id).get_session(info.id)
    assert view["conf"][LIVY_KEY_ARN] == arn
    assert view["conf"][LIVY_CONTEXT] == "project:churn"
    text = repr(manager.status())
    assert arn in text and "session override" in text and "project=churn" in text


def test_the_service_used_the_key_with_application_id_and_the_custom_pair(live, backend, demo):
    _, info = live
    contexts = service_data_key_contexts(backend, key_arn(demo, "alias/emr-analytics"))
    assert {"applicationId": info.application_id, "project": "churn"} in contexts


def test_statement_errors_carry_the_remote_traceback(live):
    manager, _ = live
    result = manager.run("def f():\n    return 1 / 0\nf()")
    assert not result.ok and result.ename == "ZeroDivisionError"
    assert "line 2, in f" in result.traceback_text()
    with pytest.raises(StatementFailed, match=r"^ZeroDivisionError: division by zero$"):
        result.raise_for_error()


def test_sql_tables_come_back_as_typed_pandas(live):
    manager, _ = live
    frame = manager.run("SELECT id, CAST(id AS STRING) AS s FROM range(3)", kind="sql").to_frame()
    assert list(frame.columns) == ["id", "s"]
    assert frame["id"].tolist() == [0, 1, 2] and str(frame["id"].dtype) == "Int64"


def test_a_statement_past_its_timeout_is_cancelled_and_the_session_stays_usable(live):
    manager, _ = live
    with pytest.raises(ServiceFault, match="cancelled"):
        manager.run("import time\ntime.sleep(60)", timeout=1)
    assert manager.run("21 * 2").text == "42"


def test_logs_and_list_show_the_session(live):
    manager, info = live
    assert any("ready" in line for line in manager.logs().lines)
    listed = manager.list(info.application_id)
    assert [s.id for s in listed.sessions if s.active] == [info.id]
    assert listed.to_frame().loc[0, "key_source"] == "session override"


def test_another_kernel_can_attach_and_sees_where_the_key_came_from(live, managers):
    _, info = live
    other = managers()
    attached = other.use(info.id, info.application_id)
    assert (attached.key_arn, attached.key_source) == (info.key_arn, "session override")
    assert not attached.started_here
    other.close()
    assert live[0].status().state == "idle", "closing an attached kernel leaves the session"


def test_a_disabled_key_is_refused_before_anything_starts(managers, app_id, role, demo):
    manager = managers()
    before = len(manager.livy_client(app_id).list_sessions())
    with pytest.raises(UserError) as refused:
        manager.start(app_id, role, key="alias/emr-disabled")
    assert key_arn(demo, "alias/emr-disabled") in str(refused.value)
    assert "Disabled" in str(refused.value)
    assert len(manager.livy_client(app_id).list_sessions()) == before


def test_a_disabled_key_with_the_check_skipped_is_refused_in_one_line(managers, app_id, role, demo):
    manager = managers()
    name = f"skip-{uuid.uuid4().hex[:6]}"
    with (
        pytest.warns(UserWarning, match="key check was skipped"),
        pytest.raises(UserError) as refused,
    ):
        manager.start(app_id, role, key="alias/emr-disabled", name=name, skip_check=True)
    # The service rejects the submission (ValidationException) with the KMS cause.
    assert "ValidationException" in str(refused.value)
    assert "DisabledException" in str(refused.value)
    assert key_arn(demo, "alias/emr-disabled") in str(refused.value)
    assert "\n" not in str(refused.value)
    assert [s for s in manager.livy_client(app_id).list_sessions() if given_name(s) == name] == []
    assert manager.sessions() == []


def test_a_key_the_service_cannot_use_with_the_check_skipped_fails_closed(
    managers, app_id, role, demo
):
    manager = managers()
    name = f"skip-{uuid.uuid4().hex[:6]}"
    key = "alias/emr-no-service-grant"
    with (
        pytest.warns(UserWarning, match="key check was skipped"),
        pytest.raises(SessionFailed) as failed,
    ):
        manager.start(app_id, role, key=key, name=name, skip_check=True)
    assert "AccessDeniedException" in str(failed.value)
    assert key_arn(demo, key) in str(failed.value)
    live = [
        s
        for s in manager.livy_client(app_id).list_sessions()
        if given_name(s) == name and s["state"] not in ("dead", "killed", "error")
    ]
    assert live == [] and manager.sessions() == []


def test_a_user_conf_cannot_replace_the_key(managers, app_id, role, demo):
    manager = managers()
    other = key_arn(demo, "alias/emr-no-service-grant")
    with pytest.raises(UserError, match="cannot be overridden"):
        manager.start(app_id, role, key="alias/emr-analytics", conf={LIVY_KEY_ARN: other})
    assert manager.sessions() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"transport": "telepathy"}, "unknown transport 'telepathy'"),
        (
            {"key": "alias/emr-analytics", "session_key_override": True},
            "is for --transport connect",
        ),
        ({"role_arn": "emr-session-role"}, "not an IAM role ARN"),
        ({"role_arn": "arn:aws:iam::111122223333:role/R/"}, "1 to 64 ASCII letters"),
        ({"role_arn": None}, "no execution role"),
        ({"key": "alias/emr-missing"}, "was not found"),
        ({"context": {"project": "x"}}, "--context needs --key"),
        ({"key": "alias/emr-analytics", "context": {"a": "b:c"}}, "ambiguous"),
        ({"application_id": "00nosuchapp00000"}, "no application has the id or name"),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(managers, app_id, role, kwargs, message):
    manager = managers()
    args = {"application_id": app_id, "role_arn": role, **kwargs}
    with pytest.raises(UserError) as refused:
        manager.start(args.pop("application_id"), args.pop("role_arn"), **args)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert manager.sessions() == []


def test_an_application_without_livy_is_refused(managers, role, aws_env):
    app = apps.create_application(AwsTarget(), f"nolivy-{uuid.uuid4().hex[:6]}", livy=False)
    with pytest.raises(UserError, match="does not have the Livy endpoint enabled"):
        managers().start(app.id, role)


def test_the_session_limit_is_a_clear_message_and_leaves_nothing(managers, backend, aws_env, role):
    app = apps.create_application(AwsTarget(), f"limit-{uuid.uuid4().hex[:6]}")
    backend.settings(livy_session_limit=1)
    try:
        manager = managers()
        first = manager.start(app.id, role)
        assert first.key_source == "AWS owned key"
        assert apps.get_application(AwsTarget(), app.id).state == "STARTED", "it was started"
        with pytest.raises(ServiceFault, match="already has 1 active Livy sessions"):
            manager.start(app.id, role)
        assert [s.id for s in manager.sessions()] == [first.id]
    finally:
        backend.settings(livy_session_limit=25)


def test_progress_reports_state_and_polling_starts_fast(managers, app_id, role, backend):
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    manager = managers()
    manager.start(
        app_id, role, progress=lambda text: seen.append((time.monotonic() - started, text))
    )
    assert seen and all("starting" in text for _, text in seen)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(seen)]
    assert gaps[0] < 0.3 and max(gaps) < 1.0


def test_an_idle_timeout_is_sent_only_to_releases_that_take_ttl(managers, aws_env, role):
    older = apps.create_application(AwsTarget(), f"ttl-{uuid.uuid4().hex[:6]}", release="emr-7.7.0")
    newer = apps.create_application(
        AwsTarget(), f"ttl-{uuid.uuid4().hex[:6]}", release="emr-spark-8.0.0"
    )
    manager = managers()
    with pytest.warns(UserWarning) as caught:
        kept = manager.start(older.id, role, idle_timeout_minutes=30)
    assert [str(w.message) for w in caught] == [
        f"application {older.id} runs emr-7.7.0, where a Livy session's idle timeout cannot be "
        "set (ttl needs emr-7.8.0 or later): --idle-timeout is not applied and the session ends "
        "after AWS's default hour without statements"
    ]
    assert manager.livy_client(older.id).get_session(kept.id)["ttl"] is None
    timed = manager.start(newer.id, role, idle_timeout_minutes=30)
    assert manager.livy_client(newer.id).get_session(timed.id)["ttl"] == "30m"


# Last: the failed task fills the session log, which other tests read.
def test_an_error_in_a_spark_task_is_one_short_line_naming_the_python_error(live):
    manager, _ = live
    result = manager.run("spark.sparkContext.parallelize([1, 2], 2).map(lambda x: x / 0).collect()")
    assert not result.ok
    # The whole Java and Python stacks stay in the traceback; the line names the root error.
    assert "ZeroDivisionError" in result.traceback_text() + str(result.evalue)
    with pytest.raises(StatementFailed) as failed:
        result.raise_for_error()
    line = str(failed.value)
    assert "\n" not in line and len(line) <= 400
    assert line.startswith(f"{result.ename}: ") and "ZeroDivisionError: division by zero" in line
    assert "\tat " not in line and " at org.apache" not in line
