"""Shared fixtures: one local backend per test session, on a random loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

AWS_SETTINGS = pytest.StashKey[object]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--aws",
        action="store_true",
        help="also run tests/two_backends against AWS itself (see README 'Testing against AWS')",
    )


def pytest_configure(config: pytest.Config) -> None:
    """With ``--aws``, the settings it needs are read now: a missing one stops the run at once."""
    if not config.getoption("--aws"):
        return
    from tests.two_backends.sandbox import AwsSettings, SettingsMissing

    try:
        config.stash[AWS_SETTINGS] = AwsSettings.from_environment()
    except SettingsMissing as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def emr_cmk_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private EMR_CMK_HOME so tests never touch the user's running backend."""
    home = str(tmp_path_factory.mktemp("emr-cmk-home"))
    previous = os.environ.get("EMR_CMK_HOME")
    os.environ["EMR_CMK_HOME"] = home
    yield home
    if previous is None:
        os.environ.pop("EMR_CMK_HOME", None)
    else:
        os.environ["EMR_CMK_HOME"] = previous


@pytest.fixture(scope="session")
def backend(emr_cmk_home: str):
    """The local backend with the demo seed, started once for the whole test session."""
    from emr_cmk_notebook import local

    with local.start(seed="demo") as running:
        running.settings(state_delay=0.05, job_step_delay=0.05)
        yield running


@pytest.fixture
def demo(backend):
    """The backend's status (keys, roles, applications) as the demo seed laid it."""
    return backend.status()


@pytest.fixture
def runtime_dir(tmp_path, monkeypatch):
    """Kernels (and commands) of this test note their sessions in a folder of their own."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module", params=["local", "aws"])
def sandbox(request: pytest.FixtureRequest):
    """The account a two-backend test runs in: the local backend's demo world, or with ``--aws``
    the AWS account of the usual credentials. Whatever the tests created there is deleted when
    the module ends; what could not be deleted fails the teardown, named."""
    from tests.two_backends.sandbox import RUN_ON_AWS, Sandbox

    if request.param == "aws":
        settings = request.config.stash.get(AWS_SETTINGS, None)
        if settings is None:
            pytest.skip(RUN_ON_AWS)
        box = Sandbox.on_aws(settings)
        yield box
        left = box.tear_down()
    else:
        from tests.sessions.conftest import pointed_at, session_role

        backend = request.getfixturevalue("backend")
        with pointed_at(backend):
            box = Sandbox.local(backend, session_role(backend.status()))
            yield box
            left = box.tear_down()
    if left:
        pytest.fail(
            f"{len(left)} resource(s) of test run {box.run_id} could not be deleted; delete them "
            "by hand:\n" + "\n".join(f"- {line}" for line in left)
        )


def key_arn(status: dict, alias: str) -> str:
    """The ARN of a seeded key, by alias."""
    return next(k["arn"] for k in status["keys"] if k["alias"] == alias)


def app_id_named(status: dict, name: str) -> str:
    """The id of a seeded application, by name."""
    return next(a["id"] for a in status["applications"] if a["name"] == name)


def demo_app_id(status: dict) -> str:
    """The id of the seeded `demo-app` application (emr-7.13.0)."""
    return app_id_named(status, "demo-app")


@pytest.fixture(scope="session")
def job_script(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small entry point that job runs really execute (no Spark, so it is quick)."""
    path = tmp_path_factory.mktemp("jobs") / "job.py"
    path.write_text("import sys\nprint('job ran with', sys.argv[1:])\n")
    return str(path)


def wait_for_job(emr, app_id: str, run_id: str, timeout: float = 60.0) -> dict:
    """Poll a job run (through a boto3 emr-serverless client) until it finishes; its last view."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        run = emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
        if run["state"] in ("SUCCESS", "FAILED", "CANCELLED"):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"job {run_id} still {run['state']} after {timeout} s")
        time.sleep(0.05)


def processes_mentioning(marker: str) -> list:
    """Live processes whose command line mentions ``marker`` (zombies do not count)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(marker in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


def service_data_key_contexts(backend, key_arn: str) -> list[dict]:
    """The encryption contexts of EMR Serverless's GenerateDataKey calls on ``key_arn``, from
    the backend's CloudTrail (LookupEvents, newest first)."""
    import json

    events = backend.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key_arn}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    return [
        r["requestParameters"].get("encryptionContext", {})
        for r in records
        if r["eventName"] == "GenerateDataKey" and r["userIdentity"]["type"] == "AWSService"
    ]


def iam_user_with(backend, *statements: dict, account: str = "111122223333") -> dict[str, str]:
    """A new IAM user of ``account`` whose only policy is ``statements``; its credentials as the
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` variables."""
    import json
    import uuid

    iam = backend.client("iam", account=account)
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    if statements:
        document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def submitter_without_data_keys(backend) -> dict[str, str]:
    """A user who may use EMR Serverless, pass roles and DescribeKey, but may not GenerateDataKey
    or Decrypt: the client sees a usable key, the service rejects the submission."""
    return iam_user_with(
        backend,
        {"Effect": "Allow", "Action": ["emr-serverless:*", "iam:PassRole"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:ListAliases"], "Resource": "*"},
    )
