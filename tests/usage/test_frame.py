"""The usage frame built from CloudTrail KMS records (fixtures shaped after AWS documentation)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.usage import COLUMNS, UsageFrame, parse_records, read_file

FIXTURES = Path(__file__).parent / "fixtures"
TRAIL = FIXTURES / "kms_trail.json"
WORKLOAD = "111122223333"
SECURITY = "444455556666"
KEY_A = f"arn:aws:kms:us-east-1:{WORKLOAD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_EMR = f"arn:aws:kms:us-east-1:{SECURITY}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
APP = "00fq3kd9a8bc1234"
KEY_ARN = re.compile(r"arn:aws[a-zA-Z0-9-]*:kms:[a-zA-Z0-9-]*:[0-9]{12}:key/[a-zA-Z0-9-]+")
CATEGORIES = {
    "event_name",
    "key_arn",
    "aws_region",
    "identity_type",
    "principal_arn",
    "invoked_by",
    "source_ip",
    "user_agent",
    "application_id",
    "error_code",
    "recipient_account_id",
}


@pytest.fixture(scope="module")
def trail() -> UsageFrame:
    return read_file(TRAIL)


def row(usage: UsageFrame, number: int) -> dict[str, Any]:
    """The fixture record with eventID ending in ``number``, NA as None."""
    frame = usage.frame
    found = frame[frame["event_id"] == f"e7c1f2d4-0000-4000-9000-{number:012d}"]
    assert len(found) == 1
    return {name: (None if pd.isna(v) else v) for name, v in found.iloc[0].items() if _scalar(v)}


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict)


def context_of(usage: UsageFrame, number: int) -> dict[str, str] | None:
    frame = usage.frame
    found = frame.loc[frame["event_id"] == f"e7c1f2d4-0000-4000-9000-{number:012d}"]
    return found["encryption_context"].iloc[0]


def test_trail_file_keeps_kms_records_and_counts_the_rest(trail: UsageFrame) -> None:
    assert trail.kms_records == 12
    assert trail.skipped_non_kms == 2  # an sts AssumeRole and an s3 GetObject
    assert trail.skipped_malformed == 2  # no eventTime; an eventTime that is not a time
    assert trail.summary() == {
        "kms_records": 12,
        "skipped_non_kms": 2,
        "skipped_malformed": 2,
        "first_event": "2026-02-10T09:00:04Z",
        "last_event": "2026-02-10T09:24:48Z",
        "event_names": {"GenerateDataKey": 6, "Decrypt": 5, "Encrypt": 1},
    }


def test_columns_come_in_contract_order_then_one_per_context_key(trail: UsageFrame) -> None:
    columns = list(trail.frame.columns)
    assert columns[: len(COLUMNS)] == list(COLUMNS)
    assert columns[len(COLUMNS) :] == [
        "ctx.Department",
        "ctx.Project",
        "ctx.SecretARN",
        "ctx.SecretVersionId",
        "ctx.applicationId",
        "ctx.aws:dynamodb:subscriberId",
        "ctx.aws:dynamodb:tableName",
        "ctx.team",
    ]


def test_dtypes_are_typed(trail: UsageFrame) -> None:
    frame = trail.frame
    assert isinstance(frame["event_time"].dtype, pd.DatetimeTZDtype)
    assert str(frame["event_time"].dt.tz) == "UTC"
    for name in CATEGORIES:
        assert isinstance(frame[name].dtype, pd.CategoricalDtype), name
    assert frame["read_only"].dtype == "boolean"
    assert all(isinstance(context, dict) for context in frame["encryption_context"])


def test_key_arn_from_key_id_or_from_resources(trail: UsageFrame) -> None:
    assert row(trail, 2)["key_arn"] == KEY_A  # keyId is the key ARN
    assert row(trail, 1)["key_arn"] == KEY_A  # keyId is a bare key id
    assert row(trail, 6)["key_arn"] == KEY_A  # Decrypt without keyId
    assert row(trail, 9)["key_arn"] == KEY_EMR  # keyId is an alias


def test_key_id_arn_wins_and_other_resources_are_ignored() -> None:
    other = KEY_A.replace("1234abcd", "5678abcd")
    records = [
        _record(keyId=KEY_A, resources=[{"ARN": other, "type": "AWS::KMS::Key"}]),
        _record(
            keyId="alias/x",
            resources=[
                {"ARN": f"arn:aws:iam::{WORKLOAD}:role/R", "type": "AWS::IAM::Role"},
                {"ARN": other},
            ],
        ),
        _record(keyId="alias/x", resources=[]),
    ]
    assert list(parse_records(records).frame["key_arn"].astype(object).fillna("-")) == [
        KEY_A,
        other,
        "-",
    ]


def test_emr_serverless_service_call(trail: UsageFrame) -> None:
    emr = row(trail, 10)
    assert emr["identity_type"] == "AWSService"
    assert emr["principal_arn"] is None
    assert emr["account_id"] is None
    assert emr["invoked_by"] == "AWS Internal"
    assert emr["application_id"] == APP
    assert emr["read_only"]
    assert context_of(trail, 12) == {"applicationId": APP, "team": "risk"}


def test_assumed_role_and_iam_user_calls(trail: UsageFrame) -> None:
    secrets = row(trail, 5)
    assert secrets["identity_type"] == "AssumedRole"
    assert secrets["principal_arn"] == f"arn:aws:sts::{WORKLOAD}:assumed-role/Admin/ops-user"
    assert secrets["invoked_by"] == "secretsmanager.amazonaws.com"
    assert secrets["ctx.SecretARN"].endswith(":secret:reporting-db-Xy12Ab")
    alice = row(trail, 1)
    assert alice["identity_type"] == "IAMUser"
    assert alice["principal_arn"] == f"arn:aws:iam::{WORKLOAD}:user/Alice"
    assert alice["invoked_by"] is None
    assert alice["account_id"] == WORKLOAD
    assert alice["source_ip"] == "192.0.2.10"
    assert context_of(trail, 1) == {"Department": "Engineering", "Project": "Alpha"}


def test_dynamodb_service_call_context_columns(trail: UsageFrame) -> None:
    dynamo = row(trail, 8)
    assert dynamo["invoked_by"] == "dynamodb.amazonaws.com"
    assert dynamo["ctx.aws:dynamodb:tableName"] == "Orders"
    assert dynamo["ctx.aws:dynamodb:subscriberId"] == WORKLOAD
    assert dynamo["ctx.applicationId"] is None


def test_cross_account_copies_share_an_event_id(trail: UsageFrame) -> None:
    workload, owner = row(trail, 10), row(trail, 11)
    assert workload["shared_event_id"] == owner["shared_event_id"] is not None
    assert (workload["recipient_account_id"], owner["recipient_account_id"]) == (WORKLOAD, SECURITY)


def test_failed_call_keeps_error(trail: UsageFrame) -> None:
    failed = row(trail, 3)
    assert failed["error_code"] == "AccessDeniedException"
    assert "not authorized to perform: kms:Decrypt" in failed["error_message"]


@pytest.mark.parametrize("source", [b"", b"\n \n", b'{"Records": []}', b'{"Events": []}', [], "  "])
def test_empty_input_gives_empty_frame_with_the_columns(source: Any, trail: UsageFrame) -> None:
    usage = parse_records(source)
    assert usage.kms_records == 0
    assert usage.time_range is None
    assert list(usage.frame.columns) == list(COLUMNS)
    expected = trail.frame.dtypes[list(COLUMNS)].map(str)
    assert usage.frame.dtypes.map(str).to_dict() == expected.to_dict()
    assert usage.summary()["first_event"] is None


def test_truncated_trail_file_is_a_one_line_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.json"
    cut.write_bytes(TRAIL.read_bytes()[:5000])
    with pytest.raises(UserError) as caught:
        read_file(cut)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{cut}: not valid JSON at line ")


def test_truncated_gzip_file_is_a_one_line_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes((FIXTURES / "kms_trail.json.gz").read_bytes()[:400])
    with pytest.raises(UserError, match=r"cut\.json\.gz: gzip data is truncated or corrupt"):
        read_file(cut)


def test_a_file_that_is_not_json_is_an_error(tmp_path: Path) -> None:
    table = tmp_path / "calls.csv"
    table.write_text("eventTime,eventName\n2026-02-10,Decrypt\n")
    with pytest.raises(UserError, match=r"calls\.csv: not JSON \(line 1: Expecting value\)"):
        read_file(table)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_file(tmp_path / "absent.json")


def test_gzip_and_plain_give_the_same_frame(trail: UsageFrame) -> None:
    zipped = read_file(FIXTURES / "kms_trail.json.gz")
    pd.testing.assert_frame_equal(zipped.frame, trail.frame)
    assert (zipped.skipped_non_kms, zipped.skipped_malformed) == (2, 2)


def test_input_forms_give_the_same_frame(trail: UsageFrame) -> None:
    records = json.loads(TRAIL.read_text())["Records"]
    lines = [json.dumps(record) for record in records]
    forms = {
        "json lines": read_file(FIXTURES / "kms_trail.jsonl"),
        "lookup events": read_file(FIXTURES / "lookup_events.json"),
        "record dicts": parse_records(records),
        "json strings": parse_records(lines),
        "bytes": parse_records("\n".join(lines).encode()),
        "parsed document": parse_records({"Records": records}),
        "gzip bytes": parse_records(gzip.compress(TRAIL.read_bytes())),
        "path string": parse_records(str(TRAIL)),
    }
    for form, usage in forms.items():
        pd.testing.assert_frame_equal(usage.frame, trail.frame, obj=form)


def test_lines_and_events_that_are_not_records_are_counted() -> None:
    assert read_file(FIXTURES / "kms_trail.jsonl").skipped_malformed == 3  # + a line cut short
    assert read_file(FIXTURES / "lookup_events.json").skipped_malformed == 1
    good = _record()
    usage = parse_records(
        [
            good,
            42,
            "not json",
            {"eventSource": "kms.amazonaws.com"},
            {**good, "eventTime": "soon"},
            {**good, "readOnly": "yes"},
        ]
    )
    assert (usage.kms_records, usage.skipped_malformed) == (2, 4)
    assert usage.frame["read_only"].isna().tolist() == [False, True]


def test_a_bad_line_among_json_lines_costs_only_that_line() -> None:
    lines = [
        json.dumps(_record()),
        "{oops",
        json.dumps({**_record(), "eventSource": "s3.amazonaws.com"}),
    ]
    usage = parse_records("\n".join(lines))
    assert (usage.kms_records, usage.skipped_non_kms, usage.skipped_malformed) == (1, 1, 1)


def test_a_brace_inside_a_context_value_keeps_every_key() -> None:
    record = _record(encryptionContext={"note": "a } b", "tail": "z"})
    usage = parse_records(json.dumps(record))
    assert usage.frame["encryption_context"].iloc[0] == {"note": "a } b", "tail": "z"}
    assert usage.frame["ctx.tail"].iloc[0] == "z"


def test_escaped_quotes_inside_a_context_keep_every_key() -> None:
    context = {'say "hi"': 'a "quoted" value', "tail": "z"}
    usage = parse_records(json.dumps(_record(encryptionContext=context)))
    assert usage.frame["encryption_context"].iloc[0] == context
    assert usage.frame['ctx.say "hi"'].iloc[0] == 'a "quoted" value'


def test_other_iso_time_spellings_are_read_as_utc() -> None:
    usage = parse_records(
        [
            _record(eventTime="2026-02-10T09:00:04.250Z"),
            _record(eventTime="2026-02-10T10:00:04+01:00"),
        ]
    )
    assert usage.frame["event_time"].tolist() == [
        pd.Timestamp("2026-02-10T09:00:04.250Z"),
        pd.Timestamp("2026-02-10T09:00:04Z"),
    ]
    assert usage.rows()[0]["event_time"] == "2026-02-10T09:00:04.250000Z"


def test_rows_are_json_ready(trail: UsageFrame) -> None:
    rows = json.loads(json.dumps(trail.rows()))
    assert len(rows) == 12
    assert rows[9]["event_time"] == "2026-02-10T09:21:03Z"
    assert rows[9]["encryption_context"] == {"applicationId": APP}
    assert rows[9]["principal_arn"] is None
    assert rows[9]["read_only"] is True
    assert trail.to_dict()["rows"] == trail.rows()
    assert trail.to_frame() is trail.frame


def test_html_shows_the_counts_and_the_rows(trail: UsageFrame) -> None:
    page = trail._repr_html_()
    assert "12 KMS records; skipped 2 non-KMS and 2 malformed" in page
    assert "<table" in page and "GenerateDataKey" in page


def test_fast_parse_agrees_with_a_plain_reading() -> None:
    records = _benchmark().generate_records(400, seed=11)
    text = "\n".join(json.dumps(record) for record in records)
    usage = parse_records(text.encode())
    expected = [_plain_row(r) for r in records if r["eventSource"] == "kms.amazonaws.com"]
    assert usage.kms_records == len(expected) == 400
    assert usage.skipped_non_kms == len(records) - 400
    for column in expected[0]:
        values = usage.frame[column].astype(object)
        got = [None if _missing(v) else v for v in values]
        assert got == [r[column] for r in expected], column


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, dict) and pd.isna(value))


def _plain_row(record: dict[str, Any]) -> dict[str, Any]:
    """One row read field by field with json.loads output, for comparison."""
    identity = record.get("userIdentity") or {}
    params = record.get("requestParameters") or {}
    context = params.get("encryptionContext")
    key_id = params.get("keyId")
    key_arn = key_id if key_id and KEY_ARN.fullmatch(key_id) else None
    for resource in record.get("resources") or []:
        if key_arn is None and resource.get("type", "AWS::KMS::Key") == "AWS::KMS::Key":
            key_arn = resource["ARN"] if KEY_ARN.fullmatch(resource["ARN"]) else None
    time = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    row = {
        "event_time": pd.Timestamp(time),
        "event_name": record["eventName"],
        "event_id": record["eventID"],
        "key_arn": key_arn,
        "aws_region": record["awsRegion"],
        "identity_type": identity.get("type"),
        "principal_arn": identity.get("arn"),
        "invoked_by": identity.get("invokedBy"),
        "source_ip": record.get("sourceIPAddress"),
        "user_agent": record.get("userAgent"),
        "application_id": (context or {}).get("applicationId"),
        "encryption_context": context,
        "error_code": record.get("errorCode"),
        "recipient_account_id": record.get("recipientAccountId"),
        "shared_event_id": record.get("sharedEventID"),
        "error_message": record.get("errorMessage"),
        "read_only": record.get("readOnly"),
        "account_id": identity.get("accountId"),
    }
    for key in ("applicationId", "team", "SecretARN", "aws:dynamodb:tableName"):
        row[f"ctx.{key}"] = (context or {}).get(key)
    return row


def _record(**fields: Any) -> dict[str, Any]:
    """A minimal EMR Serverless Decrypt record; keyword arguments replace or add fields."""
    params = {"keyId": KEY_EMR, "encryptionContext": {"applicationId": APP}}
    record: dict[str, Any] = {
        "eventTime": "2026-02-10T09:00:04Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "eventID": "11111111-2222-4333-8444-555555555555",
        "userIdentity": {"type": "AWSService", "invokedBy": "AWS Internal"},
        "readOnly": True,
        "requestParameters": params,
        "resources": [{"ARN": KEY_EMR, "type": "AWS::KMS::Key"}],
    }
    for name, value in fields.items():
        if name in ("keyId", "encryptionContext"):
            params[name] = value
        else:
            record[name] = value
    return record


def _benchmark() -> Any:
    path = Path(__file__).parents[2] / "benchmarks" / "usage_parse.py"
    spec = importlib.util.spec_from_file_location("usage_parse_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
