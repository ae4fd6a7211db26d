"""The local CloudTrail: KMS records, LookupEvents with AWS's limits, and delivered log files."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import botocore.session
import pytest
from botocore.parsers import create_parser

from emr_cmk_notebook.local.cloudtrail import CloudTrail, handle
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import EMR_SERVERLESS_PRINCIPAL, Identity
from emr_cmk_notebook.local.wire import ApiRequest

REGION = "us-east-1"
ANALYTICS = "111111111111"
SECURITY = "222222222222"
KEY_ARN = f"arn:aws:kms:{REGION}:{ANALYTICS}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SHARED_KEY_ARN = f"arn:aws:kms:{REGION}:{SECURITY}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
START = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC).timestamp()
TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."

ALICE = Identity(
    type="IAMUser",
    account_id=ANALYTICS,
    arn=f"arn:aws:iam::{ANALYTICS}:user/alice",
    principal_id="AIDAALICE",
    access_key_id="AKIAALICE",
    user_name="alice",
)
SESSION = Identity(
    type="AssumedRole",
    account_id=ANALYTICS,
    arn=f"arn:aws:sts::{ANALYTICS}:assumed-role/DataScientist/bob-notebook",
    principal_id="AROADATASCI:bob-notebook",
    access_key_id="ASIABOB",
    role_arn=f"arn:aws:iam::{ANALYTICS}:role/DataScientist",
)
EMR = Identity.aws_service(EMR_SERVERLESS_PRINCIPAL, ANALYTICS)
APP_CONTEXT = {"applicationId": "00f1abcdexample"}


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "cloudtrail"


@pytest.fixture
def trail(log_dir: Path, clock: FakeClock):
    trail = CloudTrail(log_dir, lookup_tps=None, flush_interval=0, clock=clock)
    yield trail
    trail.close()


def generate_data_key(trail: CloudTrail, identity: Identity, key_arn: str = KEY_ARN, **extra):
    return trail.record_kms_call(
        identity=identity,
        region=REGION,
        event_name="GenerateDataKey",
        key_arn=key_arn,
        request_parameters={
            "keyId": key_arn,
            "keySpec": "AES_256",
            "encryptionContext": APP_CONTEXT,
        },
        response_elements=None,
        **extra,
    )


def lookup(trail: CloudTrail, account: str = ANALYTICS, region: str = REGION, **body) -> dict:
    return trail.lookup_events(account, region, body)


def records_of(answer: dict) -> list[dict]:
    return [json.loads(event["CloudTrailEvent"]) for event in answer["Events"]]


def error_code(call) -> str:
    with pytest.raises(AwsError) as caught:
        call()
    return caught.value.code


def api_request(operation: str, body: dict | bytes, identity: Identity = ALICE) -> ApiRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApiRequest(
        method="POST",
        path="/",
        query_string="",
        headers={"x-amz-target": TARGET + operation, "content-type": "application/x-amz-json-1.1"},
        body=raw,
        service="cloudtrail",
        region=REGION,
        identity=identity,
    )


def parse_as_boto3(response) -> dict:
    """Read a wire answer with botocore's own LookupEvents parser, as a boto3 client would."""
    model = botocore.session.get_session().get_service_model("cloudtrail")
    shape = model.operation_model("LookupEvents").output_shape
    raw = {"status_code": response.status, "headers": response.headers, "body": response.body}
    return create_parser("json").parse(raw, shape)


# Record format


def test_user_call_is_recorded_like_a_real_kms_record(trail: CloudTrail) -> None:
    [record] = trail.record_kms_call(
        identity=ALICE,
        region=REGION,
        event_name="GenerateDataKey",
        key_arn=KEY_ARN,
        request_parameters={
            "keyId": KEY_ARN,
            "keySpec": "AES_256",
            "encryptionContext": APP_CONTEXT,
        },
        response_elements={"KeyId": KEY_ARN, "Plaintext": "c2VjcmV0", "CiphertextBlob": "YmxvYg=="},
        source_ip="10.0.0.8",
        user_agent="Boto3/1.40",
        request_id="req-1",
    )
    assert record["eventVersion"] == "1.11"
    assert record["userIdentity"] == ALICE.cloudtrail_user_identity()
    assert record["eventTime"] == "2026-03-14T09:26:53Z"
    assert record["eventSource"] == "kms.amazonaws.com"
    assert record["eventName"] == "GenerateDataKey"
    assert record["awsRegion"] == REGION
    assert (record["sourceIPAddress"], record["userAgent"]) == ("10.0.0.8", "Boto3/1.40")
    assert record["requestParameters"]["encryptionContext"] == APP_CONTEXT
    assert record["responseElements"] == {"KeyId": KEY_ARN}
    assert record["requestID"] == "req-1"
    assert re.fullmatch(r"[0-9a-f-]{36}", record["eventID"])
    assert record["readOnly"] is True
    assert record["resources"] == [
        {"accountId": ANALYTICS, "type": "AWS::KMS::Key", "ARN": KEY_ARN}
    ]
    assert record["eventType"] == "AwsApiCall"
    assert record["managementEvent"] is True
    assert record["recipientAccountId"] == ANALYTICS
    assert record["eventCategory"] == "Management"
    assert "sharedEventID" not in record
    assert "errorCode" not in record


def test_key_material_never_reaches_the_record(trail: CloudTrail) -> None:
    [record] = trail.record_kms_call(
        identity=ALICE,
        region=REGION,
        event_name="Decrypt",
        key_arn=KEY_ARN,
        request_parameters={"CiphertextBlob": "YmxvYg==", "encryptionContext": APP_CONTEXT},
        response_elements={"Plaintext": "c2VjcmV0"},
    )
    assert record["requestParameters"] == {"encryptionContext": APP_CONTEXT}
    assert record["responseElements"] is None
    assert "c2VjcmV0" not in json.dumps(lookup(trail))


def test_assumed_role_call_keeps_the_session_identity(trail: CloudTrail) -> None:
    [record] = generate_data_key(trail, SESSION)
    who = record["userIdentity"]
    assert who["type"] == "AssumedRole"
    assert who["arn"] == SESSION.arn
    assert who["sessionContext"]["sessionIssuer"]["arn"] == SESSION.role_arn
    [event] = lookup(trail)["Events"]
    assert event["Username"] == "bob-notebook"
    assert event["AccessKeyId"] == "ASIABOB"


def test_service_call_is_recorded_as_aws_internal(trail: CloudTrail) -> None:
    [record] = generate_data_key(trail, EMR, source_ip="10.0.0.8", user_agent="emr")
    assert record["userIdentity"] == {
        "type": "AWSService",
        "principalId": EMR_SERVERLESS_PRINCIPAL,
        "invokedBy": "AWS Internal",
    }
    assert record["sourceIPAddress"] == "AWS Internal"
    assert record["userAgent"] == "AWS Internal"
    assert record["requestParameters"]["encryptionContext"]["applicationId"] == "00f1abcdexample"
    assert record["resources"][0]["ARN"] == KEY_ARN
    assert record["eventType"] == "AwsApiCall"
    assert record["recipientAccountId"] == ANALYTICS
    assert records_of(lookup(trail, ANALYTICS)) == [record]


def test_failed_call_carries_error_code_and_message(trail: CloudTrail) -> None:
    [record] = generate_data_key(
        trail, EMR, error_code="DisabledException", error_message="key is disabled"
    )
    assert (record["errorCode"], record["errorMessage"]) == ("DisabledException", "key is disabled")


@pytest.mark.parametrize(
    ("event_name", "read_only"),
    [
        ("Decrypt", True),
        ("Encrypt", True),
        ("GenerateDataKey", True),
        ("DescribeKey", True),
        ("ListAliases", True),
        ("CreateKey", False),
        ("PutKeyPolicy", False),
        ("ScheduleKeyDeletion", False),
    ],
)
def test_read_only_follows_kms(trail: CloudTrail, event_name: str, read_only: bool) -> None:
    [record] = trail.record_kms_call(
        identity=ALICE,
        region=REGION,
        event_name=event_name,
        key_arn=KEY_ARN,
        request_parameters={"keyId": KEY_ARN},
        response_elements=None,
    )
    assert record["readOnly"] is read_only


def test_caller_can_override_read_only(trail: CloudTrail) -> None:
    [record] = generate_data_key(trail, ALICE, read_only=False)
    assert record["readOnly"] is False


# Accounts and regions


def test_cross_account_call_is_logged_in_both_accounts(trail: CloudTrail) -> None:
    mine, owners = generate_data_key(trail, ALICE, SHARED_KEY_ARN)
    assert mine["sharedEventID"] == owners["sharedEventID"]
    assert mine["eventID"] != owners["eventID"]
    assert mine["requestID"] == owners["requestID"]
    assert (mine["recipientAccountId"], owners["recipientAccountId"]) == (ANALYTICS, SECURITY)
    assert owners["resources"][0]["accountId"] == SECURITY
    assert records_of(lookup(trail, ANALYTICS)) == [mine]
    assert records_of(lookup(trail, SECURITY)) == [owners]


def test_denied_cross_account_call_is_logged_only_for_the_caller(trail: CloudTrail) -> None:
    stored = generate_data_key(
        trail, EMR, SHARED_KEY_ARN, error_code="AccessDeniedException", error_message="denied"
    )
    assert len(stored) == 1
    assert "sharedEventID" not in stored[0]
    assert lookup(trail, SECURITY)["Events"] == []
    assert records_of(lookup(trail, ANALYTICS)) == stored


def test_events_of_other_regions_are_not_visible(trail: CloudTrail) -> None:
    generate_data_key(trail, ALICE)
    assert lookup(trail, ANALYTICS, "eu-west-1")["Events"] == []
    assert len(lookup(trail, ANALYTICS, REGION)["Events"]) == 1


# LookupEvents: attributes, window, limits


@pytest.fixture
def mixed(trail: CloudTrail, clock: FakeClock) -> dict[str, str]:
    """A user call, a role-session call, a service call, a key creation and an S3 read."""
    ids = {}
    ids["alice"] = generate_data_key(trail, ALICE)[0]["eventID"]
    clock.advance(1)
    ids["session"] = generate_data_key(trail, SESSION)[0]["eventID"]
    clock.advance(1)
    ids["emr"] = trail.record_kms_call(
        identity=EMR,
        region=REGION,
        event_name="Decrypt",
        key_arn=KEY_ARN,
        request_parameters={"keyId": KEY_ARN, "encryptionContext": APP_CONTEXT},
        response_elements=None,
    )[0]["eventID"]
    clock.advance(1)
    ids["create"] = trail.record_kms_call(
        identity=ALICE,
        region=REGION,
        event_name="CreateKey",
        key_arn=None,
        request_parameters={"keySpec": "SYMMETRIC_DEFAULT"},
        response_elements={"keyMetadata": {"keyId": "new"}},
    )[0]["eventID"]
    ids["s3"] = "s3-event"
    s3_read = {
        "eventID": "s3-event",
        "eventTime": "2026-03-14T09:26:56Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "readOnly": True,
        "userIdentity": {"type": "IAMUser", "userName": "carol", "accessKeyId": "AKIACAROL"},
    }
    trail.put_record(ANALYTICS, REGION, s3_read)
    return ids


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("EventName", "GenerateDataKey", ["session", "alice"]),
        ("ReadOnly", "false", ["create"]),
        ("Username", "alice", ["create", "alice"]),
        ("Username", "bob-notebook", ["session"]),
        ("Username", EMR_SERVERLESS_PRINCIPAL, ["emr"]),
        ("ResourceType", "AWS::KMS::Key", ["emr", "session", "alice"]),
        ("ResourceName", KEY_ARN, ["emr", "session", "alice"]),
        ("EventSource", "kms.amazonaws.com", ["create", "emr", "session", "alice"]),
        ("EventSource", "s3.amazonaws.com", ["s3"]),
        ("Username", "carol", ["s3"]),
        ("AccessKeyId", "AKIAALICE", ["create", "alice"]),
    ],
)
def test_lookup_by_each_attribute(
    trail: CloudTrail, mixed: dict[str, str], key: str, value: str, expected: list[str]
) -> None:
    answer = lookup(trail, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
    names = {event_id: name for name, event_id in mixed.items()}
    assert [names.get(e["EventId"]) for e in answer["Events"]] == expected


def test_lookup_by_event_id_finds_exactly_that_event(trail: CloudTrail, mixed: dict) -> None:
    wanted = [{"AttributeKey": "EventId", "AttributeValue": mixed["emr"]}]
    [event] = lookup(trail, LookupAttributes=wanted)["Events"]
    assert event["EventId"] == mixed["emr"]
    assert event["EventName"] == "Decrypt"
    assert event["ReadOnly"] == "true"
    assert event["EventSource"] == "kms.amazonaws.com"
    assert event["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": KEY_ARN}]
    assert event["EventTime"] == START + 2


@pytest.mark.parametrize(
    "attributes",
    [
        [
            {"AttributeKey": "EventName", "AttributeValue": "Decrypt"},
            {"AttributeKey": "ReadOnly", "AttributeValue": "true"},
        ],
        [{"AttributeKey": "KeyId", "AttributeValue": KEY_ARN}],
        [{"AttributeKey": "EventName", "AttributeValue": ""}],
        [{"AttributeKey": "ReadOnly", "AttributeValue": "yes"}],
    ],
)
def test_bad_lookup_attributes_are_refused(trail: CloudTrail, attributes: list) -> None:
    code = error_code(lambda: lookup(trail, LookupAttributes=attributes))
    assert code == "InvalidLookupAttributesException"


@pytest.mark.parametrize("max_results", [0, 51, -1, "ten", True])
def test_max_results_outside_1_to_50_is_refused(trail: CloudTrail, max_results) -> None:
    code = error_code(lambda: lookup(trail, MaxResults=max_results))
    assert code == "InvalidMaxResultsException"


def test_pages_hold_at_most_50_events_by_default(trail: CloudTrail, clock: FakeClock) -> None:
    for _ in range(60):
        generate_data_key(trail, ALICE)
        clock.advance(0.5)
    first = lookup(trail)
    assert len(first["Events"]) == 50
    assert len(lookup(trail, NextToken=first["NextToken"])["Events"]) == 10
    assert len(lookup(trail, MaxResults=1)["Events"]) == 1


def test_paging_returns_every_event_once_newest_first_while_events_arrive(
    trail: CloudTrail, clock: FakeClock
) -> None:
    recorded = []
    for _ in range(40):
        # Several events share a second: the order must still be stable across pages.
        recorded.append(generate_data_key(trail, ALICE)[0]["eventID"])
        clock.advance(0.3)
    seen, token = [], None
    while True:
        body = {"MaxResults": 7} | ({"NextToken": token} if token else {})
        answer = lookup(trail, **body)
        seen.extend(event["EventId"] for event in answer["Events"])
        generate_data_key(trail, SESSION)
        clock.advance(0.3)
        token = answer.get("NextToken")
        if not token:
            break
    assert seen == recorded[::-1]


def test_next_token_must_come_from_the_same_query(trail: CloudTrail, clock: FakeClock) -> None:
    for _ in range(3):
        generate_data_key(trail, ALICE)
        clock.advance(1)
    token = lookup(trail, MaxResults=1)["NextToken"]
    other_query = [{"AttributeKey": "EventName", "AttributeValue": "GenerateDataKey"}]
    assert error_code(lambda: lookup(trail, NextToken=token, LookupAttributes=other_query)) == (
        "InvalidNextTokenException"
    )
    assert error_code(lambda: lookup(trail, NextToken="not-a-token")) == (
        "InvalidNextTokenException"
    )


def test_time_window_is_inclusive(trail: CloudTrail) -> None:
    for offset in (0, 100, 200, 300):
        generate_data_key(trail, ALICE, event_time=START + offset)
    answer = lookup(trail, StartTime=START + 100, EndTime=START + 200)
    assert [e["EventTime"] for e in answer["Events"]] == [START + 200, START + 100]
    iso = lookup(trail, StartTime="2026-03-14T09:28:33Z", EndTime="2026-03-14T09:28:33Z")
    assert [e["EventTime"] for e in iso["Events"]] == [START + 100]


def test_start_after_end_is_refused(trail: CloudTrail) -> None:
    code = error_code(lambda: lookup(trail, StartTime=START + 1, EndTime=START))
    assert code == "InvalidTimeRangeException"


def test_a_time_range_reaching_past_90_days_is_refused(trail: CloudTrail, clock: FakeClock) -> None:
    day = 24 * 3600
    for bounds in ({"StartTime": clock.now - 91 * day}, {"EndTime": clock.now - 91 * day}):
        assert error_code(lambda b=bounds: lookup(trail, **b)) == "InvalidTimeRangeException"
    assert lookup(trail, StartTime=clock.now - 89 * day, EndTime=clock.now) == {"Events": []}


def test_only_the_last_90_days_are_searchable(trail: CloudTrail, clock: FakeClock) -> None:
    day = 24 * 3600
    generate_data_key(trail, ALICE, event_time=clock.now - 91 * day)
    recent = generate_data_key(trail, ALICE, event_time=clock.now - 89 * day)
    assert records_of(lookup(trail)) == recent
    assert trail.stats()["events"] == {ANALYTICS: {REGION: 1}}


# Throttling


def test_burst_over_two_per_second_is_throttled_until_time_passes(
    trail: CloudTrail, clock: FakeClock
) -> None:
    trail.set_lookup_tps(2)
    lookup(trail)
    lookup(trail)
    throttled = handle(trail, api_request("LookupEvents", {}))
    assert throttled.status == 400
    assert json.loads(throttled.body) == {
        "__type": "ThrottlingException",
        "message": "Rate exceeded",
    }
    lookup(trail, SECURITY)  # other accounts have their own allowance
    clock.advance(0.5)
    lookup(trail)
    assert error_code(lambda: lookup(trail)) == "ThrottlingException"
    trail.set_lookup_tps(None)
    assert trail.lookup_tps is None
    for _ in range(10):
        lookup(trail)


def test_throttling_holds_under_concurrent_callers(trail: CloudTrail) -> None:
    trail.set_lookup_tps(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            lookup(trail)
            outcome = "ok"
        except AwsError as err:
            outcome = err.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ThrottlingException"] * 18 + ["ok"] * 2


# The wire operation


def test_handle_serves_lookup_events_that_boto3_can_read(trail: CloudTrail) -> None:
    generate_data_key(trail, ALICE)
    generate_data_key(trail, ALICE, SHARED_KEY_ARN)
    body = {"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": KEY_ARN}]}
    response = handle(trail, api_request("LookupEvents", body))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    parsed = parse_as_boto3(response)
    [event] = parsed["Events"]
    assert event["EventTime"] == datetime.fromtimestamp(START, UTC)
    assert json.loads(event["CloudTrailEvent"])["resources"][0]["ARN"] == KEY_ARN


def test_handle_answers_with_the_callers_account_only(trail: CloudTrail) -> None:
    generate_data_key(trail, ALICE)
    security_admin = Identity(type="Root", account_id=SECURITY)
    response = handle(trail, api_request("LookupEvents", {}, security_admin))
    assert parse_as_boto3(response)["Events"] == []


@pytest.mark.parametrize(
    ("operation", "body", "code"),
    [
        ("CreateTrail", {"Name": "t", "S3BucketName": "b"}, "UnknownOperationException"),
        ("LookupEvents", b"{not json", "SerializationException"),
        ("LookupEvents", {"MaxResults": 99}, "InvalidMaxResultsException"),
    ],
)
def test_handle_reports_errors_as_json_1_1(
    trail: CloudTrail, operation: str, body: dict | bytes, code: str
) -> None:
    response = handle(trail, api_request(operation, body))
    assert response.status == 400
    assert parse_as_boto3(response)["Error"]["Code"] == code


# Log delivery


LOG_NAME = re.compile(
    r"AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4}/\d{2}/\d{2})/"
    r"\1_CloudTrail_\2_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz"
)


def delivered(log_dir: Path) -> dict[str, list[dict]]:
    """Every delivered log file, relative path to its records."""
    files = {}
    for path in sorted(log_dir.rglob("*")):
        if path.is_file():
            with gzip.open(path) as stream:
                files[path.relative_to(log_dir).as_posix()] = json.load(stream)["Records"]
    return files


def test_flush_writes_gzip_logs_laid_out_like_an_s3_trail(trail: CloudTrail, log_dir: Path) -> None:
    today = generate_data_key(trail, ALICE) + generate_data_key(trail, EMR)
    mine, owners = generate_data_key(trail, ALICE, SHARED_KEY_ARN)
    earlier = generate_data_key(trail, ALICE, event_time=START - 3 * 24 * 3600)
    trail.flush()
    files = delivered(log_dir)
    assert all(LOG_NAME.fullmatch(name) for name in files), list(files)
    by_folder = {LOG_NAME.fullmatch(n).group(1, 3): recs for n, recs in files.items()}
    assert by_folder == {
        (ANALYTICS, "2026/03/14"): [*today, mine],
        (SECURITY, "2026/03/14"): [owners],
        (ANALYTICS, "2026/03/11"): earlier,
    }
    assert not list(log_dir.rglob("*.tmp"))
    trail.flush()
    assert len(delivered(log_dir)) == 3


def test_background_flusher_delivers_without_being_asked(log_dir: Path) -> None:
    trail = CloudTrail(log_dir, flush_interval=0.05)
    try:
        [record] = generate_data_key(trail, ALICE)
        deadline = time.monotonic() + 5
        while not delivered(log_dir) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(delivered(log_dir).values()) == [[record]]
    finally:
        trail.close()


def test_close_delivers_what_is_pending(log_dir: Path) -> None:
    trail = CloudTrail(log_dir, flush_interval=60)
    [record] = generate_data_key(trail, ALICE)
    trail.close()
    assert list(delivered(log_dir).values()) == [[record]]


def test_reset_forgets_events_and_deletes_log_files(trail: CloudTrail, log_dir: Path) -> None:
    generate_data_key(trail, ALICE)
    trail.flush()
    generate_data_key(trail, ALICE)
    trail.reset()
    trail.flush()
    assert lookup(trail)["Events"] == []
    assert delivered(log_dir) == {}
    assert trail.stats()["events"] == {}


def test_stats_counts_events_per_account_and_region(trail: CloudTrail, log_dir: Path) -> None:
    generate_data_key(trail, ALICE, SHARED_KEY_ARN)
    generate_data_key(trail, EMR)
    stats = trail.stats()
    assert stats["events"] == {ANALYTICS: {REGION: 2}, SECURITY: {REGION: 1}}
    assert stats["pending"] == 3
    assert stats["log_dir"] == str(log_dir)
    assert log_dir.is_dir()
