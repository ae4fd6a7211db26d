"""Sessions are taggable resources, as AWS's TagResource model says, like applications and runs."""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import demo_app_id, key_arn

pytestmark = pytest.mark.integration
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"


@pytest.fixture(scope="module")
def emr(backend):
    return backend.client("emr-serverless")


@pytest.fixture(scope="module")
def failed_session(backend, emr) -> tuple[str, str, str]:
    """A session that fails at once (the service may not use its key, though the caller may), so
    no Spark starts: app, id, ARN."""
    world = backend.status()
    app_id = demo_app_id(world)
    refused = key_arn(world, "alias/emr-no-service-grant")
    started = emr.start_session(
        applicationId=app_id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        tags={"team": "risk"},
        configurationOverrides={
            "runtimeConfiguration": [
                {
                    "classification": "spark-defaults",
                    "properties": {"spark.emr-serverless.disk.encryptionKeyArn": refused},
                }
            ]
        },
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        session = emr.get_session(applicationId=app_id, sessionId=started["sessionId"])["session"]
        if session["state"] == "FAILED":
            break
        time.sleep(0.05)
    return app_id, started["sessionId"], started["arn"]


def test_a_session_arn_has_the_documented_form(failed_session) -> None:
    app_id, session_id, arn = failed_session
    assert arn == (
        f"arn:aws:emr-serverless:us-east-1:{ANALYTICS_ACCOUNT}:"
        f"/applications/{app_id}/sessions/{session_id}"
    )


def test_a_session_is_tagged_listed_and_untagged_by_its_arn(emr, failed_session) -> None:
    app_id, session_id, arn = failed_session
    assert emr.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "risk"}
    emr.tag_resource(resourceArn=arn, tags={"owner": "ana", "team": "ops"})
    assert emr.list_tags_for_resource(resourceArn=arn)["tags"] == {"owner": "ana", "team": "ops"}
    session = emr.get_session(applicationId=app_id, sessionId=session_id)["session"]
    assert session["tags"] == {"owner": "ana", "team": "ops"}
    emr.untag_resource(resourceArn=arn, tagKeys=["owner"])
    assert emr.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "ops"}


def test_a_session_arn_of_no_session_is_not_found(emr, failed_session) -> None:
    *_, arn = failed_session
    unknown = arn.rsplit("/", 1)[0] + "/00nosuchsession0"
    with pytest.raises(ClientError) as caught:
        emr.tag_resource(resourceArn=unknown, tags={"a": "b"})
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "00nosuchsession0" in caught.value.response["Error"]["Message"]


def test_a_failed_sessions_state_details_say_why(emr, failed_session) -> None:
    app_id, session_id, _ = failed_session
    session = emr.get_session(applicationId=app_id, sessionId=session_id)["session"]
    assert session["state"] == "FAILED"
    assert "AccessDeniedException" in session["stateDetails"]
