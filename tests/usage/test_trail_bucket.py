"""The trail's S3 bucket over the wire: delivery, ``s3://`` reads, both routes, completeness."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from emr_cmk_notebook.cli import main
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.local import ANALYTICS_ACCOUNT, SECURITY_ACCOUNT
from emr_cmk_notebook.usage.key_usage import KeyUsage
from tests.conftest import key_arn
from tests.usage.test_trail_folders import ORG, record

pytestmark = pytest.mark.integration
TRAIL_BUCKET = f"s3://emr-cmk-cloudtrail-{ANALYTICS_ACCOUNT}/"
KEY = f"arn:aws:kms:us-east-1:{ANALYTICS_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DAY = {"start": "2026-02-10T00:00:00Z", "end": "2026-02-10T23:59:59Z"}
ROW_COLUMNS = ["event_time", "event_id", "event_name", "key_arn", "aws_region", "application_id"]


@pytest.fixture
def target(backend, monkeypatch: pytest.MonkeyPatch) -> AwsTarget:
    """Calls go to the local backend as the analytics account, as `emr-cmk local env` sets."""
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    return AwsTarget()


@pytest.fixture
def trail_settings(backend) -> Iterator[None]:
    """Whatever a test does to the trail is undone after it."""
    yield
    backend.settings(trail_kms_events="logged", trail_logging=True)


@pytest.fixture
def org_bucket(backend, target) -> str:
    """A bucket laid out as an organisation trail delivers, two accounts, with a bad file in
    another account's folder that only pruning keeps from being read."""
    s3 = backend.client("s3")
    name = f"org-trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    for account, first, times in (
        (ANALYTICS_ACCOUNT, 0, ["2026-02-10T09:00:00Z", "2026-02-10T09:05:00Z"]),
        (SECURITY_ACCOUNT, 10, ["2026-02-10T10:00:00Z"]),
    ):
        records = [record(t, "us-east-1", account, first + n) for n, t in enumerate(times)]
        s3.put_object(
            Bucket=name,
            Key=f"AWSLogs/{ORG}/{account}/CloudTrail/us-east-1/2026/02/10/{account}_a.json.gz",
            Body=gzip.compress(json.dumps({"Records": records}).encode()),
        )
    for account, day in ((SECURITY_ACCOUNT, "2026/02/09"), (ANALYTICS_ACCOUNT, "2026/02/12")):
        s3.put_object(
            Bucket=name,
            Key=f"AWSLogs/{ORG}/{account}/CloudTrail/us-east-1/{day}/cut.json.gz",
            Body=gzip.compress(b'{"Records": []}')[:12],
        )
    return f"s3://{name}/"


def parse(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["usage", "parse", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def marked_call(backend, demo) -> str:
    """One GenerateDataKey on the demo key with a context pair no other test uses."""
    marker = uuid.uuid4().hex
    backend.client("kms").generate_data_key(
        KeyId=key_arn(demo, "alias/emr-analytics"),
        KeySpec="AES_256",
        EncryptionContext={"audit": marker},
    )
    return marker


def rows_with(capsys: pytest.CaptureFixture[str], marker: str, wait: float = 10.0) -> list[dict]:
    """The rows of the trail bucket carrying ``marker``, once delivered (within ``wait`` s)."""
    deadline = time.monotonic() + wait
    while True:
        code, out, _ = parse(capsys, TRAIL_BUCKET, "--since", "10m", "--json")
        assert code == 0
        found = [
            r for r in json.loads(out) if (r["encryption_context"] or {}).get("audit") == marker
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_the_trail_answers_in_the_shapes_of_the_cloudtrail_api(backend) -> None:
    cloudtrail = backend.client("cloudtrail")
    model = cloudtrail.meta.service_model
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    assert [t["S3BucketName"] for t in trails] == [TRAIL_BUCKET[5:-1]]
    arn = trails[0]["TrailARN"]
    answers = {
        "DescribeTrails": cloudtrail.describe_trails(),
        "GetEventSelectors": cloudtrail.get_event_selectors(TrailName=arn),
        "GetTrailStatus": cloudtrail.get_trail_status(Name=trails[0]["Name"]),
    }
    for operation, answer in answers.items():
        answer.pop("ResponseMetadata")
        shape = model.operation_model(operation).output_shape
        report = ParamValidator().validate(answer, shape)
        assert not report.has_errors(), report.generate_report()
    assert answers["GetTrailStatus"]["IsLogging"] is True
    with pytest.raises(ClientError) as refused:
        cloudtrail.get_trail_status(Name="no-such-trail")
    assert refused.value.response["Error"]["Code"] == "TrailNotFoundException"


def test_kms_calls_reach_the_trail_bucket_and_parse_reads_them(
    backend, demo, target, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = marked_call(backend, demo)
    found = rows_with(capsys, marker)
    assert len(found) == 1
    assert found[0]["key_arn"] == key_arn(demo, "alias/emr-analytics")
    assert found[0]["recipient_account_id"] == ANALYTICS_ACCOUNT


def test_an_organisation_bucket_is_pruned_by_account_and_day(
    target, org_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    until = "2026-02-10T23:59:59Z"
    code, out, err = parse(
        capsys, org_bucket, "--account", ANALYTICS_ACCOUNT, "--until", until, "--summary"
    )
    assert code == 0
    assert json.loads(out)["kms_records"] == 2
    # No trail delivers to this bucket, and the user is told before anything else.
    assert (
        err
        == f"emr-cmk: warning: may be incomplete: no trail logs us-east-1 to {org_bucket[:-1]}\n"
    )
    code, out, _ = parse(
        capsys, org_bucket, "--since", "2026-02-10T00:00:00Z", "--until", until, "--summary"
    )
    assert json.loads(out)["kms_records"] == 3
    code, out, err = parse(capsys, org_bucket, "--summary")
    assert (code, out) == (2, "")
    assert "cut.json.gz" in err and "truncated or corrupt" in err


def test_the_files_and_sql_routes_agree_row_for_row_over_s3(target, org_bucket: str) -> None:
    by_files = KeyUsage.fetch(KEY, source="files", path=org_bucket, **DAY, target=target)
    by_sql = KeyUsage.fetch(KEY, source="athena", path=org_bucket, **DAY, target=target)
    assert len(by_files.to_frame()) == 3
    pd.testing.assert_frame_equal(
        by_files.to_frame()[ROW_COLUMNS].astype(object),
        by_sql.to_frame()[ROW_COLUMNS].astype(object),
    )
    assert "the trail logs under s3://" in by_sql.notes[-1] and "(DuckDB)" in by_sql.notes[-1]


def test_a_trail_that_excludes_kms_events_is_said_above_the_table(
    backend, demo, target, trail_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    key = key_arn(demo, "alias/emr-analytics")
    complete = KeyUsage.fetch(key, since="1h", source="files", path=TRAIL_BUCKET, target=target)
    assert complete.warning() is None and complete.to_dict()["completeness"] is None

    backend.settings(trail_kms_events="excluded")
    usage = KeyUsage.fetch(key, since="1h", source="files", path=TRAIL_BUCKET, target=target)
    line = (
        "may be incomplete: trail emr-cmk-trail excludes KMS events"
        " (ExcludeManagementEventSources kms.amazonaws.com)"
    )
    assert usage.warning() == line
    assert usage.to_dict()["completeness"] == line
    assert (
        main(["usage", "fetch", "--key", key, "--since", "1h", "--source", "files", TRAIL_BUCKET])
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0] == f"warning: {line}"
    # And the trail indeed stops writing KMS calls to its files.
    assert rows_with(capsys, marked_call(backend, demo), wait=3.0) == []


def test_a_trail_that_stopped_logging_is_said(backend, target, trail_settings) -> None:
    backend.settings(trail_logging=False)
    usage = KeyUsage.fetch(KEY, since="1h", source="athena", target=target)
    assert "trail emr-cmk-trail stopped logging since " in (usage.warning() or "")


def test_event_history_says_its_horizon_and_its_lag(target) -> None:
    recent = KeyUsage.fetch(KEY, since="1h", target=target)
    assert "up to about 15 minutes after it was made" in (recent.warning() or "")
    old = KeyUsage.fetch(
        KEY, start="2020-01-01T00:00:00Z", end="2020-01-02T00:00:00Z", target=target
    )
    assert old.to_frame().empty
    warning = old.warning() or ""
    assert warning.startswith("may be incomplete: event history keeps 90 days, so calls before")
    assert warning.endswith(" are only in the trail's S3 logs (source athena or files)")


def test_trail_settings_are_bounded(backend, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match="trail_kms_events must be one of logged, excluded"):
        backend.settings(trail_kms_events="sometimes")
    with pytest.raises(UserError, match="trail_logging must be true or false"):
        backend.settings(trail_logging="yes")
    assert backend.status()["settings"]["trail_kms_events"] == "logged"
    assert main(["local", "settings", "--trail-kms-events", "sometimes"]) == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_a_bucket_that_is_not_there_is_one_line(target, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = parse(capsys, "s3://no-such-trail-bucket/AWSLogs/", "--summary")
    assert (code, out) == (2, "")
    # The trail check comes first (no trail delivers there), then the error, in one line.
    assert err.splitlines()[-1] == (
        "emr-cmk: error: s3://no-such-trail-bucket/AWSLogs/: S3 refused the listing:"
        " NoSuchBucket: The specified bucket does not exist"
    )
