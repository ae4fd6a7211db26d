"""The Athena route: the table DDL, the query, and the same SQL run locally with DuckDB."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.usage import athena
from emr_cmk_notebook.usage.key_usage import KeyUsage

FIXTURES = Path(__file__).parent / "fixtures"
WORKLOAD = "111122223333"
SECURITY = "444455556666"
KEY_A = f"arn:aws:kms:us-east-1:{WORKLOAD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_EMR = f"arn:aws:kms:us-east-1:{SECURITY}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
WINDOW = {"start": "2026-02-10T09:00:00Z", "end": "2026-02-10T10:00:00Z"}
KEY_COLUMNS = [
    "event_time",
    "event_id",
    "event_name",
    "key_arn",
    "identity_type",
    "principal_arn",
    "invoked_by",
    "application_id",
    "encryption_context",
    "error_code",
    "recipient_accounts",
    "shared_event_id",
    "read_only",
]


@pytest.fixture(params=["", "o-a1b2c3d4e5"], ids=["account trail", "organisation trail"])
def trail_bucket(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The fixture's well-formed records laid out as a trail delivers them, per account."""
    document = json.loads((FIXTURES / "kms_trail.json").read_text())
    records = [r for r in document["Records"] if isinstance(r, dict) and "eventTime" in r]
    for account in (WORKLOAD, SECURITY):
        mine = [r for r in records if r.get("recipientAccountId", WORKLOAD) == account]
        logs = tmp_path / "AWSLogs" / request.param
        folder = logs / account / "CloudTrail" / "us-east-1" / "2026/02/10"
        folder.mkdir(parents=True)
        name = f"{account}_CloudTrail_us-east-1_20260210T0925Z_abc.json.gz"
        (folder / name).write_bytes(gzip.compress(json.dumps({"Records": mine}).encode()))
    return tmp_path


def test_ddl_projects_account_region_and_day_partitions() -> None:
    ddl = athena.TrailTable(
        "s3://trail-bucket/org", (WORKLOAD, SECURITY), ("us-east-1", "eu-west-1")
    ).ddl()
    assert "LOCATION 's3://trail-bucket/org/AWSLogs/'" in ddl
    assert f"'projection.account.values' = '{WORKLOAD},{SECURITY}'" in ddl
    assert "'projection.region.values' = 'us-east-1,eu-west-1'" in ddl
    assert "'projection.timestamp.format' = 'yyyy/MM/dd'" in ddl
    template = "'s3://trail-bucket/org/AWSLogs/${account}/CloudTrail/${region}/${timestamp}'"
    assert template in ddl


def test_ddl_of_an_organisation_trail_keeps_the_organisation_folder() -> None:
    ddl = athena.TrailTable(
        "s3://org-trail/AWSLogs/o-a1b2c3d4e5", (WORKLOAD, SECURITY), ("us-east-1",)
    ).ddl()
    assert "LOCATION 's3://org-trail/AWSLogs/o-a1b2c3d4e5/'" in ddl
    template = "'s3://org-trail/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${timestamp}'"
    assert template in ddl


def test_ddl_refuses_a_location_that_is_not_s3() -> None:
    with pytest.raises(UserError, match="s3://"):
        athena.TrailTable("/tmp/logs", (WORKLOAD,), ("us-east-1",))


def test_query_is_bounded_by_day_partitions_and_event_time() -> None:
    query = athena.key_usage_query(KEY_A, 1770714000, 1770800400, regions=["us-east-1"])
    # Up to the day after the end: a file sits in the folder of its delivery, minutes later.
    assert query.params == (
        "2026/02/10",
        "2026/02/12",
        "2026-02-10T09:00:00Z",
        "2026-02-11T09:00:00Z",
        f'"{KEY_A}"',
        f'"{KEY_A}"',
        "us-east-1",
    )
    assert query.sql.count("?") == len(query.params)


def test_the_local_sql_route_matches_reading_the_files(trail_bucket: Path) -> None:
    for key in (KEY_A, KEY_EMR):
        by_sql = KeyUsage.fetch(key, source="athena", path=trail_bucket, **WINDOW).to_frame()
        by_files = KeyUsage.fetch(key, source="files", path=trail_bucket, **WINDOW).to_frame()
        assert len(by_sql) > 0
        pd.testing.assert_frame_equal(
            by_sql[KEY_COLUMNS].astype(object), by_files[KEY_COLUMNS].astype(object)
        )


def test_athena_rows_become_records_whatever_the_row_rendering() -> None:
    row = {
        "eventtime": "2026-02-10T09:21:03Z",
        "eventsource": "kms.amazonaws.com",
        "eventname": "GenerateDataKey",
        "eventid": "e1",
        "readonly": "true",
        "identity_type": "AWSService",
        "invoked_by": "AWS Internal",
        "requestparameters": '{"encryptionContext": {"applicationId": "00app"}}',
        "resources_json": f'[{{"arn": "{KEY_EMR}", "accountid": "{SECURITY}"}}]',
    }
    positional = {**row, "resources_json": json.dumps([[KEY_EMR, SECURITY, "AWS::KMS::Key"]])}
    for record in athena.rows_to_records([row, positional]):
        assert record["resources"][0]["ARN"] == KEY_EMR
        assert record["readOnly"] is True
        assert record["userIdentity"] == {"type": "AWSService", "invokedBy": "AWS Internal"}
        assert record["requestParameters"]["encryptionContext"] == {"applicationId": "00app"}


def test_no_trail_files_give_no_rows() -> None:
    query = athena.key_usage_query(KEY_A, 0, 10)
    assert athena.run_local(query, []) == []
