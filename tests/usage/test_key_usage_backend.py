"""``KeyUsage`` against the local backend: paced harvest, cache, cross-account, SQL route."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.local import ANALYTICS_ACCOUNT, SECURITY_ACCOUNT
from emr_cmk_notebook.usage.key_usage import KeyUsage
from tests.conftest import demo_app_id, key_arn

pytestmark = pytest.mark.integration
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
AUDITOR = f"arn:aws:iam::{SECURITY_ACCOUNT}:role/key-usage-auditor"
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
    "session",
]


@pytest.fixture
def target(backend, monkeypatch: pytest.MonkeyPatch) -> AwsTarget:
    """Calls go to the local backend as the analytics account, as `emr-cmk local env` sets."""
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    return AwsTarget()


def run_job(backend, app_id: str, script: str, key: str, context: dict[str, str]) -> None:
    emr = backend.client("emr-serverless")
    run_id = emr.start_job_run(
        applicationId=app_id,
        executionRoleArn=ROLE,
        clientToken=str(uuid.uuid4()),
        jobDriver={"sparkSubmit": {"entryPoint": script}},
        configurationOverrides={
            "diskEncryptionConfiguration": {"encryptionKeyArn": key, "encryptionContext": context}
        },
    )["jobRunId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = emr.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]["state"]
        if state in ("SUCCESS", "FAILED", "CANCELLED"):
            assert state == "SUCCESS"
            return
        time.sleep(0.05)
    raise AssertionError(f"job {run_id} did not finish")


def test_a_repeated_harvest_makes_only_the_calls_for_new_events(
    backend, demo, target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMR_CMK_HOME", str(tmp_path))
    key = key_arn(demo, "alias/emr-analytics")
    kms = backend.client("kms")
    seen: list[tuple[int, int]] = []
    first = KeyUsage.fetch(
        key,
        since="1h",
        target=target,
        settle=0,
        progress=lambda p: seen.append((p.calls, p.events)),
    )
    assert seen and seen[-1] == (first.stats.calls, first.stats.events_read)
    assert first.stats.failed == 0 and first.stats.duplicates_dropped == 0
    assert first.to_frame()["event_id"].is_unique
    for _ in range(60):
        kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"n": "1"})
    again = KeyUsage.fetch(key, since="1h", target=target, settle=0)
    assert again.stats.new_events == 60
    assert again.stats.calls == math.ceil(60 / 50)
    assert again.stats.failed == 0
    assert len(again.to_frame()) == len(first.to_frame()) + 60
    assert again.to_frame()["event_id"].is_unique


def test_cross_account_copies_are_joined_by_shared_event_id(
    backend, demo, target, job_script
) -> None:
    shared = demo["shared_key_arn"]
    marker = f"x-{uuid.uuid4().hex[:8]}"
    run_job(backend, demo_app_id(demo), job_script, shared, {"run": marker})

    def mine(usage: KeyUsage) -> pd.DataFrame:
        frame = usage.to_frame()
        return frame[frame["encryption_context"].map(lambda c: (c or {}).get("run") == marker)]

    both = mine(KeyUsage.fetch(shared, since="1h", target=target, owner_role_arn=AUDITOR))
    assert len(both) >= 1
    assert both["shared_event_id"].notna().all()
    assert set(both["recipient_accounts"]) == {f"{ANALYTICS_ACCOUNT},{SECURITY_ACCOUNT}"}
    assert set(both["recipient_account_id"]) == {ANALYTICS_ACCOUNT}
    alone = mine(KeyUsage.fetch(shared, since="1h", target=target))
    assert set(alone["event_id"]) == set(both["event_id"])
    assert set(alone["recipient_accounts"]) == {ANALYTICS_ACCOUNT}


def test_an_owner_role_in_another_account_than_the_key_is_refused(demo, target) -> None:
    from emr_cmk_notebook.core.errors import UserError

    with pytest.raises(UserError, match="key owner"):
        KeyUsage.fetch(
            key_arn(demo, "alias/emr-analytics"),
            since="1h",
            target=target,
            owner_role_arn=AUDITOR,
        )


def test_an_unknown_alias_is_the_same_one_line_error_as_for_a_session(demo, target) -> None:
    from emr_cmk_notebook.core.errors import UserError

    with pytest.raises(UserError) as refused:
        KeyUsage.fetch("alias/emr-nowhere", since="1h", target=target)
    said = f"{refused.value} {refused.value.hint}"
    assert "KMS key 'alias/emr-nowhere' was not found in us-east-1" in said
    assert "give the key ARN for a key in another account" in said


@pytest.mark.parametrize("suffix", ["\n", "/"])
def test_an_owner_role_arn_iam_would_refuse_is_refused_before_any_call(demo, suffix) -> None:
    from emr_cmk_notebook.core.errors import UserError

    with pytest.raises(UserError, match="--owner-role-arn") as refused:
        KeyUsage.fetch(key_arn(demo, "alias/emr-analytics"), owner_role_arn=AUDITOR + suffix)
    assert "\n" not in str(refused.value)


def test_lookup_and_the_local_sql_route_give_the_same_frame(
    backend, demo, target, job_script
) -> None:
    key = key_arn(demo, "alias/emr-analytics")
    app_id = demo_app_id(demo)
    started = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=1)
    sessions = [("risk", app_id, {"team": "risk"}), ("ops", app_id, {"team": "ops"})]
    run_job(backend, app_id, job_script, key, {"team": "risk"})
    run_job(backend, app_id, job_script, key, {"team": "ops"})
    ended = pd.Timestamp.now(tz="UTC").ceil("s")
    time.sleep(2.5)  # the backend delivers log files every second
    window = {"start": started, "end": ended, "target": target, "sessions": sessions}
    by_lookup = KeyUsage.fetch(key, source="lookup", **window).to_frame()
    by_sql = KeyUsage.fetch(key, source="athena", **window).to_frame()
    assert len(by_lookup) >= 2
    assert {"risk", "ops"} <= set(by_lookup["session"].dropna())
    pd.testing.assert_frame_equal(
        by_lookup[KEY_COLUMNS].astype(object), by_sql[KEY_COLUMNS].astype(object)
    )


def test_a_key_nobody_used_gives_an_empty_frame_and_a_note(target) -> None:
    unused = f"arn:aws:kms:us-east-1:{ANALYTICS_ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    usage = KeyUsage.fetch(unused, since="1d", target=target)
    assert usage.to_frame().empty
    assert "recipient_accounts" in usage.to_frame() and "session" in usage.to_frame()
    assert any(note.startswith("no KMS calls") for note in usage.notes)
    # Event history shows calls minutes late: the window up to now may miss the newest.
    assert "15 minutes" in (usage.warning() or "")


def test_an_alias_is_resolved_to_its_key(demo, target) -> None:
    usage = KeyUsage.fetch("alias/emr-analytics", since="1h", target=target)
    assert usage.key_arn == key_arn(demo, "alias/emr-analytics")


def test_a_window_older_than_event_history_asks_only_for_the_last_90_days(
    demo, target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CloudTrail refuses a StartTime older than 90 days: the harvest must not send one.
    monkeypatch.setenv("EMR_CMK_HOME", str(tmp_path))
    usage = KeyUsage.fetch(key_arn(demo, "alias/emr-analytics"), since="120d", target=target)
    assert usage.stats.failed == 0
    assert "event history keeps 90 days" in usage.warning()
    assert "only in the trail's S3 logs" in usage.warning()


def test_a_throttled_harvest_in_both_accounts_retries_until_it_has_every_call(
    backend, demo, target, job_script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMR_CMK_HOME", str(tmp_path))
    shared = demo["shared_key_arn"]
    marker = f"t-{uuid.uuid4().hex[:8]}"
    run_job(backend, demo_app_id(demo), job_script, shared, {"run": marker})
    calm = KeyUsage.fetch(shared, since="1h", target=target, owner_role_arn=AUDITOR, cache=False)
    backend.settings(faults={"throttle_rate": 0.4, "services": ["cloudtrail"], "seed": 3})
    try:
        throttled = KeyUsage.fetch(
            shared, since="1h", target=target, owner_role_arn=AUDITOR, cache=False
        )
    finally:
        backend.settings(faults={})
    assert throttled.stats.throttled > 0 and throttled.stats.failed == 0
    assert set(throttled.to_frame()["event_id"]) == set(calm.to_frame()["event_id"])
    assert marker in {
        (context or {}).get("run") for context in throttled.to_frame()["encryption_context"]
    }
