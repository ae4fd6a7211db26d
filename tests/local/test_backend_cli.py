"""The README path: `emr-cmk local start --detach`, `emr-cmk local env`, plain AWS CLI calls."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    """A detached backend started by the CLI, and the environment `emr-cmk local env` prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["EMR_CMK_HOME"] = str(tmp_path_factory.mktemp("cli-home"))
    started = run([str(BIN / "emr-cmk"), "local", "start", "--seed", "demo", "--detach"], env)
    assert "demo-app" in started.stdout
    exports = run([str(BIN / "emr-cmk"), "local", "env"], env).stdout
    for line in exports.splitlines():
        assert line.startswith("export ")
        name, _, value = line[len("export ") :].partition("=")
        env[name] = shlex.split(value)[0]
    yield env
    run([str(BIN / "emr-cmk"), "local", "stop"], env)


def aws(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "aws"), *args, "--output", "json"], env, check=check)


def status(env: dict[str, str]) -> dict:
    return json.loads(run([str(BIN / "emr-cmk"), "local", "status", "--json"], env).stdout)


def test_status_lists_the_demo_world(cli_env):
    world = status(cli_env)
    assert world["endpoint"].startswith("http://127.0.0.1:")
    assert {a["id"] for a in world["accounts"]} == {"111122223333", "444455556666"}
    aliases = {k["alias"] for k in world["keys"]}
    assert {
        "alias/emr-analytics",
        "alias/emr-disabled",
        "alias/emr-asymmetric",
        "alias/emr-no-service-grant",
        "alias/emr-wrong-context-key",
    } <= aliases
    assert ":444455556666:key/" in world["shared_key_arn"]
    app = next(a for a in world["applications"] if a["name"] == "demo-app")
    assert app["account"] == "111122223333" and app["state"] == "STARTED"
    spark4 = next(a for a in world["applications"] if a["name"] == "spark4-app")
    assert (spark4["releaseLabel"], spark4["state"]) == ("emr-spark-8.0.0", "STARTED")
    assert spark4["livy_url"].endswith(f"/livy/{spark4['id']}")
    table = run([str(BIN / "emr-cmk"), "local", "status"], cli_env).stdout
    assert f"application spark4-app   {spark4['id']}  emr-spark-8.0.0  " in table
    assert f"application demo-app     {app['id']}  emr-7.13.0       STARTED" in table
    assert "arn:aws:iam::111122223333:role/emr-session-role" in world["roles"]
    assert "arn:aws:iam::111122223333:role/emr-no-kms-role" in world["roles"]
    assert Path(world["cloudtrail_log_dir"]).is_dir()
    assert "secret" not in json.dumps(world).lower()


def test_create_application_stores_disk_encryption(cli_env):
    key = next(k["arn"] for k in status(cli_env)["keys"] if k["alias"] == "alias/emr-analytics")
    disk = {"encryptionKeyArn": key, "encryptionContext": {"project": "churn"}}
    created = json.loads(
        aws(
            cli_env,
            "emr-serverless",
            "create-application",
            "--name",
            "cli-app",
            "--release-label",
            "emr-7.13.0",
            "--type",
            "SPARK",
            "--disk-encryption-configuration",
            json.dumps(disk),
        ).stdout
    )
    got = json.loads(
        aws(
            cli_env,
            "emr-serverless",
            "get-application",
            "--application-id",
            created["applicationId"],
        ).stdout
    )
    assert got["application"]["diskEncryptionConfiguration"] == disk


@pytest.mark.parametrize(
    "disk",
    [
        {"encryptionKeyArn": "arn:aws:kms:us-east-1:111122223333:alias/emr-analytics"},
        {
            "encryptionKeyArn": "arn:aws:kms:us-east-1:111122223333:key/"
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "encryptionContext": {f"k{i}": "v" for i in range(9)},
        },
    ],
    ids=["alias-arn", "nine-pairs"],
)
def test_invalid_disk_encryption_is_rejected(cli_env, disk):
    done = aws(
        cli_env,
        "emr-serverless",
        "create-application",
        "--name",
        "bad",
        "--release-label",
        "emr-7.13.0",
        "--type",
        "SPARK",
        "--disk-encryption-configuration",
        json.dumps(disk),
        check=False,
    )
    assert done.returncode != 0
    assert "ValidationException" in done.stderr


@pytest.mark.parametrize(
    ("alias", "code"),
    [
        ("alias/emr-disabled", "DisabledException"),
        ("alias/emr-asymmetric", "InvalidKeyUsageException"),
    ],
)
def test_unusable_keys_refuse_generate_data_key(cli_env, alias, code):
    done = aws(
        cli_env, "kms", "generate-data-key", "--key-id", alias, "--key-spec", "AES_256", check=False
    )
    assert done.returncode != 0
    assert code in done.stderr


def test_lookup_events_finds_generate_data_key_by_key_arn(cli_env):
    made = json.loads(
        aws(
            cli_env,
            "kms",
            "generate-data-key",
            "--key-id",
            "alias/emr-analytics",
            "--key-spec",
            "AES_256",
        ).stdout
    )
    found = json.loads(
        aws(
            cli_env,
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            f"AttributeKey=ResourceName,AttributeValue={made['KeyId']}",
        ).stdout
    )["Events"]
    assert any(e["EventName"] == "GenerateDataKey" for e in found)
    assert "Plaintext" not in json.dumps(found)


def test_burst_of_lookup_events_is_throttled(cli_env):
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    trail = boto3.client(
        "cloudtrail",
        endpoint_url=cli_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=cli_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cli_env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}),
    )

    def call(_: int) -> str:
        try:
            trail.lookup_events(MaxResults=1)
            return "ok"
        except trail.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"]

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(8)))
    assert codes.count("ThrottlingException") >= 4
    assert "ok" in codes


def test_second_start_is_refused_in_one_line(cli_env):
    done = run([str(BIN / "emr-cmk"), "local", "start", "--detach"], cli_env, check=False)
    assert done.returncode == 2
    assert "already running" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--latency-ms", "1e12", "latency_ms must be at least 0 and at most 60000, not 1e+12"),
        ("--latency-ms", "inf", "latency_ms must be at least 0 and at most 60000, not inf"),
        ("--state-delay", "-5", "state_delay must be at least 0 and at most 3600, not -5"),
        ("--job-step-delay", "nan", "job_step_delay must be at least 0 and at most 3600"),
        ("--throttle-rate", "1.5", "throttle_rate must be at least 0 and at most 1, not 1.5"),
        ("--error-rate", "-0.1", "error_rate must be at least 0 and at most 1"),
        ("--lookup-tps", "0", "lookup_tps must be more than 0 and at most 1000"),
        ("--session-limit", "26", "session_limit must be at least 1 and at most 25"),
        ("--session-token-ttl", "7200", "session_token_ttl must be more than 0 and at most 3600"),
    ],
)
def test_settings_out_of_bounds_are_refused_in_one_line(cli_env, option, value, says):
    emr_cmk = str(BIN / "emr-cmk")
    before = json.loads(run([emr_cmk, "local", "settings"], cli_env).stdout)
    refused = run([emr_cmk, "local", "settings", option, value], cli_env, check=False)
    assert refused.returncode == 2
    assert says in refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and "Traceback" not in refused.stderr
    assert json.loads(run([emr_cmk, "local", "settings"], cli_env).stdout) == before


def test_settings_shorten_the_spark_connect_token_and_the_session_limit(cli_env):
    emr_cmk = str(BIN / "emr-cmk")
    changed = run(
        [emr_cmk, "local", "settings", "--session-token-ttl", "5", "--session-limit", "3"], cli_env
    )
    try:
        settings = json.loads(changed.stdout)
        assert (settings["session_token_ttl"], settings["session_limit"]) == (5.0, 3)
        shown = json.loads(run([emr_cmk, "local", "settings"], cli_env).stdout)
        assert shown["session_token_ttl"] == 5.0
    finally:
        run([emr_cmk, "local", "settings", "--session-token-ttl", "3600", "--session-limit", "25"],
            cli_env)  # fmt: skip
    refused = run([emr_cmk, "local", "settings", "--session-token-ttl", "0"], cli_env, check=False)
    assert refused.returncode == 2
    assert "session_token_ttl must be more than 0" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    app = next(a["id"] for a in status(cli_env)["applications"] if a["name"] == "demo-app")
    listed = json.loads(
        aws(cli_env, "emr-serverless", "list-sessions", "--application-id", app).stdout
    )
    assert listed["sessions"] == []
