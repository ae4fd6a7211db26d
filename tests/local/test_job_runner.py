"""Job runs execute their entry point with local, encrypted Spark."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import demo_app_id, wait_for_job

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"

SPARK_JOB = """
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("count").getOrCreate()
n = spark.range(int(sys.argv[1])).count()
assert spark.conf.get("spark.io.encryption.enabled") == "true"
print("counted", n)
spark.stop()
sys.exit(0 if n == int(sys.argv[1]) else 3)
"""


def run_to_end(emr, app_id: str, driver: dict, timeout: float = 240.0) -> dict:
    run_id = emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": driver},
    )["jobRunId"]
    return wait_for_job(emr, app_id, run_id, timeout)


def test_spark_entry_point_from_s3_runs_with_io_encryption(backend, demo):
    s3 = backend.client("s3")
    bucket = f"jobs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="count.py", Body=SPARK_JOB.encode())
    emr = backend.client("emr-serverless")
    run = run_to_end(
        emr,
        demo_app_id(demo),
        {"entryPoint": f"s3://{bucket}/count.py", "entryPointArguments": ["1000"]},
    )
    assert run["state"] == "SUCCESS", run["stateDetails"]


def test_failing_entry_point_fails_the_run_with_its_last_words(backend, demo, tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("raise SystemExit('bad input: no rows')\n")
    run = run_to_end(
        backend.client("emr-serverless"), demo_app_id(demo), {"entryPoint": str(script)}
    )
    assert run["state"] == "FAILED"
    assert "bad input: no rows" in run["stateDetails"]


def test_missing_entry_point_fails_the_run(backend, demo):
    run = run_to_end(
        backend.client("emr-serverless"), demo_app_id(demo), {"entryPoint": "/nonexistent/job.py"}
    )
    assert run["state"] == "FAILED"
    assert "/nonexistent/job.py not found" in run["stateDetails"]


def test_cancel_stops_a_running_entry_point(backend, demo, tmp_path):
    script = tmp_path / "slow.py"
    marker = tmp_path / "still-running"
    script.write_text(
        f"import time, pathlib\nfor _ in range(600):\n    pathlib.Path({str(marker)!r}).touch()\n"
        "    time.sleep(0.1)\n"
    )
    emr = backend.client("emr-serverless")
    app_id = demo_app_id(demo)
    run_id = emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": {"entryPoint": str(script)}},
    )["jobRunId"]
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    emr.cancel_job_run(applicationId=app_id, jobRunId=run_id)
    while time.monotonic() < deadline:
        if emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]["state"] == "CANCELLED":
            break
        time.sleep(0.1)
    marker.unlink()
    time.sleep(0.5)
    assert not marker.exists(), "the entry point kept running after cancel"
