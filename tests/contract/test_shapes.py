"""The shape checker itself: it must see each kind of departure from a model's output shape."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.contract.shapes import error_codes, problems

NOW = datetime(2026, 3, 14, tzinfo=UTC)


def session(**changes: object) -> dict:
    view = {
        "applicationId": "00f1abcdexample",
        "sessionId": "00sessionexample",
        "arn": "arn:aws:emr-serverless:us-east-1:111122223333:/applications/00f1abcdexample/"
        "sessions/00sessionexample",
        "state": "IDLE",
        "stateDetails": "",
        "releaseLabel": "emr-7.13.0",
        "executionRoleArn": "arn:aws:iam::111122223333:role/emr-session-role",
        "createdBy": "arn:aws:iam::111122223333:user/analyst",
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    view.update(changes)
    return {"session": {k: v for k, v in view.items() if v is not None}}


def test_a_complete_answer_has_no_problems() -> None:
    assert problems("emr-serverless", "GetSession", session()) == []


def test_each_kind_of_departure_is_named() -> None:
    assert problems("emr-serverless", "GetSession", session(stateDetails=None)) == [
        "GetSession.session.stateDetails: required by Session but missing"
    ]
    [enum] = problems("emr-serverless", "GetSession", session(state="RUNNING"))
    assert "'RUNNING' is not one of SessionState's values" in enum
    [kind] = problems("emr-serverless", "GetSession", session(idleTimeoutMinutes="60"))
    assert kind == "GetSession.session.idleTimeoutMinutes: expected long, got '60'"
    [when] = problems("emr-serverless", "GetSession", session(createdAt="2026-03-14"))
    assert "expected a timestamp" in when
    [long] = problems("emr-serverless", "GetSession", session(name="n" * 257))
    assert "more than" in long and "maximum 256" in long
    [extra] = problems("emr-serverless", "GetSession", session(colour="blue"))
    assert extra == "GetSession.session.colour: not a member of Session"


def test_an_empty_string_counts_only_where_aws_is_seen_sending_one() -> None:
    [short] = problems("emr-serverless", "GetSession", session(name=""))
    assert "fewer than" in short


def test_error_codes_are_the_models() -> None:
    assert error_codes("cloudtrail", "LookupEvents") >= {"InvalidTimeRangeException"}
    assert "DisabledException" in error_codes("kms", "GenerateDataKey")
