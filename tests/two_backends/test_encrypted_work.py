"""Encrypted work end to end, written once and run on both backends (``[local]``, ``[aws]``).

On a throwaway application and key: readiness for the execution role, a Livy session with a
session-level key running one statement, CloudTrail evidence for it, a job run with a job-level
key, and the key's usage. ``[aws]`` runs only with ``pytest --aws`` (README "Testing against
AWS"); everything it creates is deleted when the module ends.
"""

from __future__ import annotations

import pytest

from emr_cmk_notebook import jobs
from emr_cmk_notebook.core.encryption import LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.readiness import check_readiness
from emr_cmk_notebook.sessions import SessionManager
from emr_cmk_notebook.sessions.evidence import NOT_YET_VISIBLE, VERIFIED, verify_session
from emr_cmk_notebook.usage.key_usage import KeyUsage

pytestmark = pytest.mark.integration

# The smallest workers EMR Serverless offers (1 vCPU; 2 GB plus Spark's 384 MB overhead fits a
# 3 GB worker), one executor: what a run costs on AWS is worked out from these in the README.
SMALLEST_WORKERS = {
    "spark.driver.cores": "1",
    "spark.driver.memory": "2g",
    "spark.executor.cores": "1",
    "spark.executor.memory": "2g",
    "spark.executor.instances": "1",
    "spark.dynamicAllocation.enabled": "false",
}
JOB_SCRIPT = b"""\
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("emr-cmk-test").getOrCreate()
print("rows:", spark.range(10).count())
spark.stop()
"""


@pytest.fixture(scope="module")
def application(sandbox):
    return sandbox.create_application()


@pytest.fixture(scope="module")
def disk_key(sandbox, application) -> str:
    return sandbox.create_disk_key(application)


def context(sandbox, work: str) -> dict[str, str]:
    """The encryption context of one piece of work in this run (it shows in CloudTrail)."""
    return {"emr-cmk-test": sandbox.run_id, "work": work}


@pytest.fixture(scope="module")
def livy(sandbox, application, disk_key):
    """A Livy session on the session-level key: started, one statement run, then stopped at
    once (a live session bills by the second); the tests look at what it answered."""
    manager = SessionManager(sandbox.target, cleanup_at_exit=False)
    sandbox.on_teardown(
        f"Livy sessions on {application.id} (stopping the application ends them)",
        lambda: manager.stop(all_sessions=True),
    )
    info = manager.start(
        application.id,
        sandbox.role_arn,
        key=disk_key,
        context=context(sandbox, "session"),
        conf=SMALLEST_WORKERS,
        timeout=sandbox.patience_s,
    )
    view = manager.livy_client(application.id).get_session(info.id)
    result = manager.run("spark.range(10).count()", timeout=sandbox.patience_s)
    manager.stop(info.id)
    return info, view, result


@pytest.fixture(scope="module")
def job(sandbox, application, disk_key):
    """A job run on the job-level key, submitted and waited for."""
    entry_point = sandbox.put_object("job.py", JOB_SCRIPT)
    encryption = DiskEncryption.from_parts(disk_key, context(sandbox, "job"))
    spark_params = " ".join(f"--conf {k}={v}" for k, v in SMALLEST_WORKERS.items())
    submitted = jobs.submit(
        sandbox.target, application.id, sandbox.role_arn, entry_point,
        encryption=encryption, spark_params=spark_params, name=f"emr-cmk-test-{sandbox.run_id}",
    )  # fmt: skip
    sandbox.on_teardown(
        f"job run {submitted.id} on {application.id}",
        lambda: (
            jobs.status(sandbox.target, application.id, submitted.id).finished
            or jobs.cancel(sandbox.target, application.id, submitted.id)
        ),
    )
    return jobs.wait(sandbox.target, application.id, submitted.id, timeout=sandbox.patience_s)


def test_readiness_says_the_role_may_use_the_new_key(sandbox, application, disk_key):
    report = check_readiness(
        disk_key,
        application.id,
        sandbox.role_arn,
        context(sandbox, "session"),
        target=sandbox.target,
    )
    assert report.ready, repr(report)
    statuses = {check.id: check.status for check in report.checks}
    for check in ("key_state", "key_spec", "service_access", "role_access", "caller_access"):
        assert statuses[check] == "pass", repr(report)
    assert report.key_arn == disk_key


def test_a_livy_session_runs_spark_on_its_session_key(livy, application, disk_key, sandbox):
    info, view, result = livy
    assert (info.key_arn, info.key_source) == (disk_key, "session override")
    assert dict(info.context) == context(sandbox, "session")
    # SessionManager fails closed on this view: a session not showing the key is deleted.
    assert (view.get("conf") or {}).get(LIVY_KEY_ARN) == disk_key, f"the Livy view: {view}"
    assert info.application_id == application.id
    assert result.ok and result.text == "10"


def test_cloudtrail_shows_the_session_key_was_used_by_the_service(livy, disk_key, sandbox):
    info, _, _ = livy
    evidence = sandbox.await_cloudtrail(
        lambda: _settled(verify_session(info, sandbox.target)),
        f"EMR Serverless's GenerateDataKey on {disk_key} for session {info.id}",
    )
    assert evidence.status == VERIFIED, evidence.message
    assert evidence.used_key_arn == disk_key
    assert evidence.context == context(sandbox, "session")


def _settled(evidence):
    return None if evidence.status == NOT_YET_VISIBLE else evidence


def test_a_job_run_succeeds_on_its_job_level_key(job, application, disk_key, sandbox):
    assert job.state == "SUCCESS", job.state_details
    assert (job.key_arn, job.key_origin) == (disk_key, "job override")
    assert job.context == context(sandbox, "job")
    assert job.application_id == application.id


def test_key_usage_shows_the_service_using_the_key_for_the_session_and_the_job(
    livy, job, application, disk_key, sandbox
):
    wanted = {"session", "job"}

    def service_calls():
        usage = KeyUsage.fetch(
            disk_key,
            start=sandbox.started_at,
            application_id=application.id,
            target=sandbox.target,
            cache=False,
        )
        frame = usage.to_frame()
        calls = frame[
            (frame["identity_type"] == "AWSService") & (frame["event_name"] == "GenerateDataKey")
        ]
        works = {(c or {}).get("work") for c in calls["encryption_context"]}
        return (usage, calls) if wanted <= works else None

    usage, calls = sandbox.await_cloudtrail(
        service_calls, f"EMR Serverless's GenerateDataKey on {disk_key} for the session and the job"
    )
    assert usage.key_arn == disk_key
    assert set(calls["key_arn"]) == {disk_key}
    assert set(calls["application_id"]) == {application.id}
    for pairs in calls["encryption_context"]:
        assert pairs["applicationId"] == application.id
        assert pairs["emr-cmk-test"] == sandbox.run_id
