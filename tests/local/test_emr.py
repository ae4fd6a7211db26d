"""The local EMR Serverless control plane, driven with the exact requests boto3 sends."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote, urlencode

import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from botocore.compat import HTTPHeaders

from emr_cmk_notebook.local.emr import EmrServerless
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import Identity
from emr_cmk_notebook.local.wire import ApiRequest

MODEL = botocore.session.get_session().get_service_model("emr-serverless")
REGION = "us-east-1"
ALICE = Identity(
    type="IAMUser",
    account_id="111122223333",
    arn="arn:aws:iam::111122223333:user/alice",
    user_name="alice",
)
BOB = Identity(
    type="IAMUser",
    account_id="444455556666",
    arn="arn:aws:iam::444455556666:user/bob",
    user_name="bob",
)
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
ROLE = "arn:aws:iam::111122223333:role/emr-job-role"
DRIVER = {"sparkSubmit": {"entryPoint": "s3://bucket/job.py"}}


class ServiceError(Exception):
    """An error answer, as botocore parsed it."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(f"{code} ({status}): {message}")
        self.code, self.message, self.status = code, message, status


class RecordingKeys:
    """The local KMS as EMR Serverless sees it: records each call, refuses when told to."""

    def __init__(self) -> None:
        self.caller_checks: list[tuple[Identity, str, str]] = []
        self.disk_uses: list[dict[str, Any]] = []
        self.refuse_caller: AwsError | None = None
        self.refuse_disks: AwsError | None = None

    def check_caller_key_access(
        self, identity: Identity, region: str, key_arn: str, encryption_context: Any = None
    ) -> None:
        self.caller_checks.append((identity, region, key_arn))
        if self.refuse_caller:
            raise self.refuse_caller

    def use_key_for_disks(self, **call: Any) -> None:
        self.disk_uses.append(call)
        if self.refuse_disks:
            raise self.refuse_disks


class Client:
    """Calls ``EmrServerless.handle`` with botocore's own serializer and parser, like boto3."""

    def __init__(self, emr: EmrServerless, identity: Identity, region: str = REGION):
        self.emr, self.identity, self.region = emr, identity, region

    def __call__(self, operation: str, **params: Any) -> dict[str, Any]:
        op = MODEL.operation_model(operation)
        for name, member in op.input_shape.members.items():
            if member.metadata.get("idempotencyToken") and name not in params:
                params[name] = str(uuid.uuid4())
        wire = botocore.serialize.create_serializer(
            "rest-json", include_validation=False
        ).serialize_to_request(params, op)
        request = ApiRequest(
            method=wire["method"],
            # What PATH_INFO holds once the WSGI server has percent-decoded the path.
            path=unquote(wire["url_path"]),
            query_string=urlencode(wire["query_string"], doseq=True),
            headers={
                "host": "127.0.0.1:4566",
                **{k.lower(): v for k, v in wire["headers"].items()},
            },
            body=wire["body"] if isinstance(wire["body"], bytes) else wire["body"].encode(),
            service="emr-serverless",
            region=self.region,
            identity=self.identity,
        )
        response = self.emr.handle(request)
        parsed = botocore.parsers.create_parser("rest-json").parse(
            {
                "status_code": response.status,
                "headers": HTTPHeaders.from_dict(response.headers),
                "body": response.body,
            },
            op.output_shape,
        )
        if response.status >= 300:
            error = parsed["Error"]
            raise ServiceError(error["Code"], error["Message"], response.status)
        parsed.pop("ResponseMetadata", None)
        return parsed


@pytest.fixture
def keys() -> RecordingKeys:
    return RecordingKeys()


@pytest.fixture
def emr(keys: RecordingKeys) -> Iterator[EmrServerless]:
    service = EmrServerless(keys, state_delay=0, job_step_delay=0)
    yield service
    service.close()


@pytest.fixture
def alice(emr: EmrServerless) -> Client:
    return Client(emr, ALICE)


def create_app(client: Client, **fields: Any) -> str:
    params = {"name": "analytics", "releaseLabel": "emr-7.13.0", "type": "Spark", **fields}
    return client("CreateApplication", **params)["applicationId"]


def start_job(client: Client, app_id: str, **fields: Any) -> str:
    params = {"applicationId": app_id, "executionRoleArn": ROLE, "jobDriver": DRIVER, **fields}
    return client("StartJobRun", **params)["jobRunId"]


def get_job(client: Client, app_id: str, run_id: str) -> dict[str, Any]:
    return client("GetJobRun", applicationId=app_id, jobRunId=run_id)["jobRun"]


def app_state(client: Client, app_id: str) -> str:
    return client("GetApplication", applicationId=app_id)["application"]["state"]


def job_state(client: Client, app_id: str, run_id: str) -> str:
    return get_job(client, app_id, run_id)["state"]


def wait_for(read: Callable[[], str], wanted: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (state := read()) != wanted:
        assert time.monotonic() < deadline, f"still {state}, wanted {wanted}"
        time.sleep(0.01)


# --- applications ------------------------------------------------------------------------------


def test_create_then_get_keeps_encryption_and_interactive_configuration(alice: Client) -> None:
    disk = {"encryptionKeyArn": KEY, "encryptionContext": {"team": "risk", "env": "dev"}}
    interactive = {"livyEndpointEnabled": True, "sessionEnabled": True, "studioEnabled": False}
    created = alice(
        "CreateApplication",
        name="analytics",
        releaseLabel="emr-7.13.0",
        type="Spark",
        diskEncryptionConfiguration=disk,
        interactiveConfiguration=interactive,
        tags={"owner": "alice"},
    )

    app = alice("GetApplication", applicationId=created["applicationId"])["application"]

    assert app["diskEncryptionConfiguration"] == disk
    assert app["interactiveConfiguration"] == interactive
    assert len(app["applicationId"]) == 16 and app["applicationId"].startswith("00")
    assert (
        app["arn"]
        == f"arn:aws:emr-serverless:us-east-1:111122223333:/applications/{app['applicationId']}"
    )
    assert created["arn"] == app["arn"]
    assert app["state"] == "CREATED"
    assert app["type"] == "Spark"
    assert app["tags"] == {"owner": "alice"}
    assert app["autoStartConfiguration"] == {"enabled": True}
    assert app["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}
    assert app["architecture"] == "X86_64"


@pytest.mark.parametrize(
    ("disk", "field", "words"),
    [
        (
            {"encryptionKeyArn": "arn:aws:kms:us-east-1:111122223333:alias/emr-analytics"},
            "diskEncryptionConfiguration.encryptionKeyArn",
            "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):kms:",
        ),
        (
            {"encryptionKeyArn": KEY, "encryptionContext": {f"k{i}": "v" for i in range(9)}},
            "diskEncryptionConfiguration.encryptionContext",
            "9 pairs",
        ),
        (
            {"encryptionKeyArn": KEY, "encryptionContext": {"team": "x" * 385}},
            "diskEncryptionConfiguration.encryptionContext",
            "385 characters",
        ),
        (
            {"encryptionKeyArn": KEY, "encryptionContext": {"team": ""}},
            "diskEncryptionConfiguration.encryptionContext",
            "empty",
        ),
    ],
    ids=["alias-arn", "nine-pairs", "long-value", "empty-value"],
)
def test_bad_disk_encryption_is_refused_and_leaves_no_application(
    alice: Client, disk: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        create_app(alice, diskEncryptionConfiguration=disk)

    assert (refused.value.code, refused.value.status) == ("ValidationException", 400)
    assert refused.value.message.startswith("1 validation error detected: Value")
    assert f"at '{field}' failed to satisfy constraint" in refused.value.message
    assert words in refused.value.message
    assert alice("ListApplications")["applications"] == []


def test_context_values_are_not_echoed_in_errors(alice: Client) -> None:
    secret_looking = "s" * 400
    with pytest.raises(ServiceError) as refused:
        disk = {"encryptionKeyArn": KEY, "encryptionContext": {"t": secret_looking}}
        create_app(alice, diskEncryptionConfiguration=disk)
    assert secret_looking not in refused.value.message


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"releaseLabel": None}, "Value null at 'releaseLabel' failed to satisfy constraint"),
        ({"type": None}, "Value null at 'type'"),
        ({"releaseLabel": "emr-latest"}, "use the form emr-X.Y.Z or emr-spark-X.Y.Z"),
        ({"releaseLabel": "emr-spark-8.0-preview"}, "use the form emr-X.Y.Z or emr-spark-X.Y.Z"),
        ({"releaseLabel": "emr-5.36.0"}, "emr-6.6.0 or later"),
        ({"type": "Presto"}, "use Spark or Hive"),
        ({"name": "has spaces"}, "Value 'has spaces' at 'name' failed to satisfy constraint"),
        ({"architecture": "RISCV"}, "Member must satisfy enum value set: [ARM64, X86_64]"),
    ],
)
def test_create_refuses_what_the_service_refuses(
    alice: Client, fields: dict[str, Any], words: str
) -> None:
    params = {"releaseLabel": "emr-7.13.0", "type": "Spark", **fields}
    with pytest.raises(ServiceError) as refused:
        alice("CreateApplication", **{k: v for k, v in params.items() if v is not None})
    assert refused.value.code == "ValidationException"
    assert words in refused.value.message
    assert alice("ListApplications")["applications"] == []


@pytest.mark.parametrize(
    ("release", "flag", "needed"),
    [
        ("emr-6.13.0", "livyEndpointEnabled", "emr-6.14.0"),
        ("emr-7.12.0", "sessionEnabled", "emr-7.13.0"),
    ],
)
def test_interactive_features_need_their_release(
    alice: Client, release: str, flag: str, needed: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        create_app(alice, releaseLabel=release, interactiveConfiguration={flag: True})
    assert refused.value.code == "ValidationException"
    assert needed in refused.value.message and flag in refused.value.message

    app_id = create_app(alice, releaseLabel=needed, interactiveConfiguration={flag: True})
    older = alice("GetApplication", applicationId=app_id)["application"]
    with pytest.raises(ServiceError):
        alice("UpdateApplication", applicationId=app_id, releaseLabel=release)
    kept = alice("GetApplication", applicationId=app_id)["application"]
    assert kept["releaseLabel"] == needed == older["releaseLabel"]


def test_the_runtime_for_apache_spark_counts_as_later_than_emr_7(alice: Client) -> None:
    both = {"livyEndpointEnabled": True, "sessionEnabled": True}
    app_id = create_app(alice, releaseLabel="emr-spark-8.0.0", interactiveConfiguration=both)
    app = alice("GetApplication", applicationId=app_id)["application"]
    assert (app["releaseLabel"], app["interactiveConfiguration"]) == ("emr-spark-8.0.0", both)


def test_update_with_empty_encryption_unsets_it_and_keeps_the_rest(alice: Client) -> None:
    disk = {"encryptionKeyArn": KEY, "encryptionContext": {"team": "risk"}}
    app_id = create_app(
        alice,
        diskEncryptionConfiguration=disk,
        interactiveConfiguration={"livyEndpointEnabled": True},
    )

    updated = alice("UpdateApplication", applicationId=app_id, diskEncryptionConfiguration={})

    assert "diskEncryptionConfiguration" not in updated["application"]
    app = alice("GetApplication", applicationId=app_id)["application"]
    assert "diskEncryptionConfiguration" not in app
    assert app["interactiveConfiguration"] == {"livyEndpointEnabled": True}
    assert app["name"] == "analytics"

    alice(
        "UpdateApplication",
        applicationId=app_id,
        diskEncryptionConfiguration={"encryptionKeyArn": OTHER_KEY},
    )
    app = alice("GetApplication", applicationId=app_id)["application"]
    assert app["diskEncryptionConfiguration"] == {"encryptionKeyArn": OTHER_KEY}


def test_states_advance_and_wrong_state_operations_are_refused(alice: Client) -> None:
    app_id = create_app(alice)
    state = partial(app_state, alice, app_id)
    assert state() == "CREATED"

    alice("StartApplication", applicationId=app_id)
    assert state() == "STARTED"
    for operation, extra in [
        ("UpdateApplication", {"architecture": "ARM64"}),
        ("DeleteApplication", {}),
    ]:
        with pytest.raises(ServiceError) as refused:
            alice(operation, applicationId=app_id, **extra)
        assert refused.value.code == "ValidationException"
        assert "[STOPPED, CREATED]. Current status: STARTED" in refused.value.message

    alice("StopApplication", applicationId=app_id)
    assert state() == "STOPPED"
    alice("DeleteApplication", applicationId=app_id)
    assert state() == "TERMINATED"
    assert alice("ListApplications")["applications"] == []
    with pytest.raises(ServiceError) as gone:
        alice("StartApplication", applicationId=app_id)
    assert gone.value.code == "ResourceNotFoundException"


def test_transitions_take_the_configured_time(keys: RecordingKeys) -> None:
    emr = EmrServerless(keys, state_delay=0.3, job_step_delay=0.03)
    try:
        client = Client(emr, ALICE)
        app_id = create_app(client, diskEncryptionConfiguration={"encryptionKeyArn": KEY})
        assert app_state(client, app_id) == "CREATING"
        wait_for(partial(app_state, client, app_id), "CREATED")

        run_id = start_job(client, app_id)
        # The run waits for the application it started.
        assert app_state(client, app_id) == "STARTING"
        assert job_state(client, app_id, run_id) in ("SUBMITTED", "PENDING")
        wait_for(partial(job_state, client, app_id, run_id), "SUCCESS")
        assert app_state(client, app_id) == "STARTED"
        assert [use["key_arn"] for use in keys.disk_uses] == [KEY]
    finally:
        emr.close()


def test_list_applications_filters_by_state_and_pages(alice: Client) -> None:
    ids = [create_app(alice, name=f"app-{i}") for i in range(3)]
    alice("StartApplication", applicationId=ids[0])

    started = alice("ListApplications", states=["STARTED"])["applications"]
    first = alice("ListApplications", maxResults=2)
    second = alice("ListApplications", maxResults=2, nextToken=first["nextToken"])

    assert [a["id"] for a in started] == [ids[0]]
    assert len(first["applications"]) == 2 and "nextToken" not in second
    assert sorted(a["id"] for a in first["applications"] + second["applications"]) == sorted(ids)


def test_tags_on_an_application(alice: Client) -> None:
    app_id = create_app(alice, tags={"owner": "alice"})
    arn = alice("GetApplication", applicationId=app_id)["application"]["arn"]

    alice("TagResource", resourceArn=arn, tags={"cost-center": "42"})
    alice("UntagResource", resourceArn=arn, tagKeys=["owner"])

    assert alice("ListTagsForResource", resourceArn=arn)["tags"] == {"cost-center": "42"}


# --- job runs ----------------------------------------------------------------------------------


def test_job_uses_the_application_key_with_the_service_context(
    alice: Client, keys: RecordingKeys
) -> None:
    disk = {"encryptionKeyArn": KEY, "encryptionContext": {"team": "risk"}}
    app_id = create_app(alice, diskEncryptionConfiguration=disk)

    run_id = start_job(alice, app_id, name="daily")

    run = get_job(alice, app_id, run_id)
    assert run["state"] == "SUCCESS"
    assert run["jobDriver"] == DRIVER and run["name"] == "daily"
    assert run["createdBy"] == ALICE.arn and run["executionRole"] == ROLE
    assert run["arn"].endswith(f"/applications/{app_id}/jobruns/{run_id}")
    assert keys.caller_checks == [(ALICE, REGION, KEY)]
    assert keys.disk_uses == [
        {
            "account_id": "111122223333",
            "region": REGION,
            "key_arn": KEY,
            "encryption_context": {"applicationId": app_id, "team": "risk"},
            "source_arn": f"arn:aws:emr-serverless:us-east-1:111122223333:/applications/{app_id}",
            "role_arn": "arn:aws:iam::111122223333:role/emr-job-role",
        }
    ]
    # The application was CREATED with auto-start on: the job started it.
    assert alice("GetApplication", applicationId=app_id)["application"]["state"] == "STARTED"


def test_job_override_beats_the_application_key(alice: Client, keys: RecordingKeys) -> None:
    app_id = create_app(alice, diskEncryptionConfiguration={"encryptionKeyArn": KEY})
    override = {"encryptionKeyArn": OTHER_KEY, "encryptionContext": {"job": "adhoc"}}

    run_id = start_job(
        alice, app_id, configurationOverrides={"diskEncryptionConfiguration": override}
    )
    plain_id = start_job(alice, app_id, configurationOverrides={"diskEncryptionConfiguration": {}})

    assert [use["key_arn"] for use in keys.disk_uses] == [OTHER_KEY]
    assert keys.disk_uses[0]["encryption_context"] == {"applicationId": app_id, "job": "adhoc"}
    run = get_job(alice, app_id, run_id)
    assert run["configurationOverrides"] == {"diskEncryptionConfiguration": override}
    assert get_job(alice, app_id, plain_id)["state"] == "SUCCESS"


def test_job_override_is_validated_like_the_application_setting(alice: Client) -> None:
    app_id = create_app(alice)
    bad = {"diskEncryptionConfiguration": {"encryptionKeyArn": "alias/emr-analytics"}}

    with pytest.raises(ServiceError) as refused:
        start_job(alice, app_id, configurationOverrides=bad)

    assert (
        "'configurationOverrides.diskEncryptionConfiguration.encryptionKeyArn'"
        in refused.value.message
    )
    assert alice("ListJobRuns", applicationId=app_id)["jobRuns"] == []


def test_kms_refusal_fails_the_job_with_details(alice: Client, keys: RecordingKeys) -> None:
    app_id = create_app(alice, diskEncryptionConfiguration={"encryptionKeyArn": KEY})
    keys.refuse_disks = AwsError("DisabledException", f"{KEY} is disabled.")

    run = get_job(alice, app_id, start_job(alice, app_id))

    assert run["state"] == "FAILED"
    assert (
        run["stateDetails"] == f"Unable to use KMS key {KEY}: DisabledException: {KEY} is disabled."
    )


def test_caller_without_key_access_is_refused_before_anything_starts(
    alice: Client, keys: RecordingKeys
) -> None:
    app_id = create_app(alice, diskEncryptionConfiguration={"encryptionKeyArn": KEY})
    keys.refuse_caller = AwsError(
        "AccessDeniedException", "not authorized to perform kms:DescribeKey"
    )

    with pytest.raises(ServiceError) as refused:
        start_job(alice, app_id)

    # EMR Serverless APIs answer ValidationException; the KMS cause is in the message.
    assert (refused.value.code, refused.value.status) == ("ValidationException", 400)
    assert KEY in refused.value.message
    assert "AccessDeniedException" in refused.value.message
    assert alice("ListJobRuns", applicationId=app_id)["jobRuns"] == []
    assert alice("GetApplication", applicationId=app_id)["application"]["state"] == "CREATED"
    assert keys.disk_uses == []


def test_client_token_makes_start_job_run_idempotent(alice: Client, keys: RecordingKeys) -> None:
    app_id = create_app(alice, diskEncryptionConfiguration={"encryptionKeyArn": KEY})

    first = start_job(alice, app_id, clientToken="retry-1")
    again = start_job(alice, app_id, clientToken="retry-1")

    assert first == again
    assert [r["id"] for r in alice("ListJobRuns", applicationId=app_id)["jobRuns"]] == [first]
    assert len(keys.disk_uses) == 1


def test_job_needs_execution_role_and_a_startable_application(alice: Client) -> None:
    app_id = create_app(alice, autoStartConfiguration={"enabled": False})

    with pytest.raises(ServiceError) as no_role:
        alice("StartJobRun", applicationId=app_id, jobDriver=DRIVER)
    with pytest.raises(ServiceError) as no_auto_start:
        start_job(alice, app_id)

    assert "Value null at 'executionRoleArn'" in no_role.value.message
    assert "auto-start is disabled" in no_auto_start.value.message
    assert alice("ListJobRuns", applicationId=app_id)["jobRuns"] == []


def test_cancel_moves_a_running_job_to_cancelled(keys: RecordingKeys) -> None:
    emr = EmrServerless(keys, state_delay=0, job_step_delay=0.2)
    try:
        client = Client(emr, ALICE)
        app_id = create_app(client)
        run_id = start_job(client, app_id)

        client("CancelJobRun", applicationId=app_id, jobRunId=run_id)

        assert get_job(client, app_id, run_id)["state"] == "CANCELLING"
        wait_for(partial(job_state, client, app_id, run_id), "CANCELLED")
        time.sleep(0.3)  # long enough for the run's own next step to have fired
        assert get_job(client, app_id, run_id)["state"] == "CANCELLED"
        with pytest.raises(ServiceError) as refused:
            client("CancelJobRun", applicationId=app_id, jobRunId=run_id)
        assert refused.value.code == "ValidationException"
    finally:
        emr.close()


def test_accounts_see_only_their_own_resources(emr: EmrServerless, alice: Client) -> None:
    bob = Client(emr, BOB)
    app_id = create_app(alice)
    run_id = start_job(alice, app_id)
    arn = alice("GetApplication", applicationId=app_id)["application"]["arn"]

    for call in (
        lambda: bob("GetApplication", applicationId=app_id),
        lambda: bob("GetJobRun", applicationId=app_id, jobRunId=run_id),
        lambda: start_job(bob, app_id),
        lambda: bob("ListTagsForResource", resourceArn=arn),
    ):
        with pytest.raises(ServiceError) as refused:
            call()
        assert refused.value.code == "ResourceNotFoundException"
    assert bob("ListApplications")["applications"] == []
    assert [a["id"] for a in alice("ListApplications")["applications"]] == [app_id]


def test_seeded_application_is_started_and_listed(emr: EmrServerless, alice: Client) -> None:
    created = emr.create_application(
        "111122223333",
        REGION,
        name="demo-app",
        releaseLabel="emr-7.13.0",
        type="Spark",
        started=True,
    )

    assert (
        alice("GetApplication", applicationId=created["applicationId"])["application"]["state"]
        == "STARTED"
    )
    assert emr.applications() == [
        {
            "name": "demo-app",
            "id": created["applicationId"],
            "account": "111122223333",
            "region": REGION,
            "state": "STARTED",
            "releaseLabel": "emr-7.13.0",
            "arn": created["arn"],
        }
    ]
    with pytest.raises(AwsError):
        emr.create_application(
            "111122223333",
            REGION,
            releaseLabel="emr-6.9.0",
            type="Spark",
            interactiveConfiguration={"sessionEnabled": True},
        )


def test_sessions_api_and_unknown_routes_answer_clear_errors(
    emr: EmrServerless, alice: Client
) -> None:
    app_id = create_app(alice)
    with pytest.raises(ServiceError) as later:
        alice("StartSession", applicationId=app_id, executionRoleArn=ROLE)
    assert (later.value.code, later.value.status) == ("NotImplementedException", 501)

    request = ApiRequest("GET", "/nowhere", "", {}, b"", "emr-serverless", REGION, ALICE)
    response = emr.handle(request)
    assert response.status == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "/nowhere" in json.loads(response.body)["message"]


def test_dashboard_url_points_at_loopback(alice: Client) -> None:
    app_id = create_app(alice)
    run_id = start_job(alice, app_id)

    url = alice("GetDashboardForJobRun", applicationId=app_id, jobRunId=run_id)["url"]

    assert url.startswith("http://127.0.0.1:4566/") and run_id in url


def test_concurrent_retries_with_one_client_token_start_one_run(keys: RecordingKeys) -> None:
    emr = EmrServerless(keys, state_delay=0, job_step_delay=0.01)
    try:
        client = Client(emr, ALICE)
        app_id = create_app(client, diskEncryptionConfiguration={"encryptionKeyArn": KEY})
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = set(pool.map(lambda _: start_job(client, app_id, clientToken="same"), range(16)))

        assert len(ids) == 1
        wait_for(partial(job_state, client, app_id, ids.pop()), "SUCCESS")
        assert len(client("ListJobRuns", applicationId=app_id)["jobRuns"]) == 1
        assert len(keys.disk_uses) == 1
    finally:
        emr.close()


def test_timestamps_come_from_the_clock(keys: RecordingKeys) -> None:
    emr = EmrServerless(keys, state_delay=0, job_step_delay=0, clock=lambda: 1_700_000_000.0)
    try:
        client = Client(emr, ALICE)
        app = client("GetApplication", applicationId=create_app(client))["application"]
        assert app["createdAt"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    finally:
        emr.close()
