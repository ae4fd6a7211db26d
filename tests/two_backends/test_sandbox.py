"""The ``--aws`` option and the sandbox: settings checked up front, one skip line without it,
and a teardown that deletes what it made and names what it could not."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.sessions.conftest import pointed_at, session_role
from tests.two_backends.sandbox import (
    KEY_DELETION_DAYS,
    RUN_ON_AWS,
    AwsSettings,
    Sandbox,
    SettingsMissing,
)

ROOT = Path(__file__).resolve().parents[2]
WORK = "tests/two_backends/test_encrypted_work.py"
ROLE = "arn:aws:iam::123456789012:role/emr-cmk-test-role"
GOOD = {
    "AWS_REGION": "us-east-1",
    "EMR_CMK_TEST_ROLE_ARN": ROLE,
    "EMR_CMK_TEST_S3_PREFIX": "s3://my-bucket/emr-cmk",
}


def pytest_run(*args: str) -> subprocess.CompletedProcess:
    """pytest in a child process, with no AWS or EMR_CMK_TEST settings in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EMR_CMK_TEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_aws_each_aws_variant_skips_with_the_line_saying_how_to_run_it():
    done = pytest_run(WORK, "-k", "aws", "-rs", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 5, done.stdout
    assert {line.split(": ", 1)[1] for line in skips} == {RUN_ON_AWS}
    assert "5 skipped, 5 deselected" in done.stdout


def test_aws_without_its_settings_stops_the_run_at_once_with_one_line():
    done = pytest_run("--aws", WORK)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "ERROR: --aws needs EMR_CMK_TEST_ROLE_ARN, EMR_CMK_TEST_S3_PREFIX, AWS_REGION "
        f"(or AWS_DEFAULT_REGION) set; {RUN_ON_AWS}"
    ]


def test_aws_settings_come_from_the_environment():
    settings = AwsSettings.from_environment({**GOOD, "EMR_CMK_TEST_CLOUDTRAIL_WAIT_MINUTES": "2"})
    assert settings == AwsSettings("us-east-1", ROLE, "s3://my-bucket/emr-cmk/", 120.0)
    fallback = {**GOOD, "AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert AwsSettings.from_environment(fallback).region == "eu-west-1"
    assert AwsSettings.from_environment(GOOD).cloudtrail_wait_s == 15 * 60


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"EMR_CMK_TEST_S3_PREFIX": ""}, "--aws needs EMR_CMK_TEST_S3_PREFIX set"),
        ({"EMR_CMK_TEST_ROLE_ARN": "emr-role"}, "EMR_CMK_TEST_ROLE_ARN: execution role 'emr-role'"),
        ({"EMR_CMK_TEST_S3_PREFIX": "my-bucket/x"}, "EMR_CMK_TEST_S3_PREFIX 'my-bucket/x' is not"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "but AWS_ENDPOINT_URL is set"),
        ({"EMR_CMK_TEST_CLOUDTRAIL_WAIT_MINUTES": "soon"}, "'soon' is not a number of minutes"),
    ],
)
def test_a_wrong_aws_setting_is_one_line_naming_it(change, says):
    with pytest.raises(SettingsMissing) as exc:
        AwsSettings.from_environment({**GOOD, **change})
    assert says in str(exc.value)
    assert "\n" not in str(exc.value)


def offline_sandbox(name: str) -> Sandbox:
    """A sandbox that makes no call: enough to exercise its waiting."""
    from emr_cmk_notebook.clients import AwsTarget

    return Sandbox(name, AwsTarget(region="us-east-1"), "123456789012", ROLE, "s3://b/p/", 0.0, 1.0)


def test_cloudtrail_lag_skips_on_aws_but_fails_locally():
    answers = iter([None, None, "found"])
    patient = offline_sandbox("local")
    patient.cloudtrail_wait_s = 5.0
    assert patient.await_cloudtrail(lambda: next(answers), "the call") == "found"
    with pytest.raises(pytest.skip.Exception, match="did not show the call within 0 min"):
        offline_sandbox("aws").await_cloudtrail(lambda: None, "the call")
    with pytest.raises(pytest.fail.Exception, match="local backend's CloudTrail did not show"):
        offline_sandbox("local").await_cloudtrail(lambda: None, "the call")


@pytest.mark.integration
def test_teardown_deletes_what_it_made_and_names_what_it_could_not(backend):
    with pointed_at(backend):
        box = Sandbox.local(backend, session_role(backend.status()))
        app = box.create_application()
        emr, kms, s3 = box.client("emr-serverless"), box.client("kms"), box.client("s3")
        box.on_teardown(
            "application 00gone", lambda: emr.delete_application(applicationId="00gone")
        )
        key = box.create_disk_key(app)
        uri = box.put_object("job.py", b"print('hi')\n")
        assert emr.list_tags_for_resource(resourceArn=app.arn)["tags"] == box.tags
        tags = kms.list_resource_tags(KeyId=key)["Tags"]
        assert tags == [{"TagKey": "emr-cmk-test", "TagValue": box.run_id}]

        left = box.tear_down()

        assert [line.split(": ")[:2] for line in left] == [
            ["application 00gone", "ResourceNotFoundException"]
        ]
        assert emr.get_application(applicationId=app.id)["application"]["state"] == "TERMINATED"
        described = kms.describe_key(KeyId=key)["KeyMetadata"]
        assert described["KeyState"] == "PendingDeletion"
        window = described["DeletionDate"] - datetime.datetime.now(datetime.UTC)
        assert datetime.timedelta(days=KEY_DELETION_DAYS - 1) < window
        assert window <= datetime.timedelta(days=KEY_DELETION_DAYS)
        bucket, _, name = uri[len("s3://") :].partition("/")
        with pytest.raises(ClientError, match=r"Not Found|404"):
            s3.head_object(Bucket=bucket, Key=name)
        assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert box.tear_down() == []
