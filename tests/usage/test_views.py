"""Summary, findings, sessions, copies and timeline, from the documented-shape fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from emr_cmk_notebook.usage import COLUMNS
from emr_cmk_notebook.usage.key_usage import KeyUsage
from emr_cmk_notebook.usage.views import KernelSession

FIXTURES = Path(__file__).parent / "fixtures"
TRAIL = FIXTURES / "kms_trail.json"
WORKLOAD = "111122223333"
SECURITY = "444455556666"
KEY_A = f"arn:aws:kms:us-east-1:{WORKLOAD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_EMR = f"arn:aws:kms:us-east-1:{SECURITY}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
APP = "00fq3kd9a8bc1234"
WINDOW = {"start": "2026-02-10T09:00:00Z", "end": "2026-02-10T10:00:00Z"}


def fetch(key: str, **options) -> KeyUsage:
    return KeyUsage.fetch(key, source="files", path=TRAIL, **{**WINDOW, **options})


def test_copies_of_one_cross_account_call_become_one_row_naming_both_accounts() -> None:
    frame = fetch(KEY_EMR).to_frame()
    assert len(frame) == 3
    shared = frame[frame["shared_event_id"].notna()]
    assert len(shared) == 1
    row = shared.iloc[0]
    assert row["recipient_accounts"] == f"{WORKLOAD},{SECURITY}"
    # The caller's copy is the one kept.
    assert row["recipient_account_id"] == WORKLOAD


def test_rows_of_a_kernel_session_say_which_session_they_belong_to() -> None:
    usage = fetch(KEY_EMR, sessions=[("s-risk", APP, {"team": "risk"})])
    frame = usage.to_frame()
    assert frame.loc[frame["event_name"] == "Decrypt", "session"].tolist() == ["s-risk"]
    summary = usage.summary().set_index("workload")
    risk = summary.loc[f"session s-risk of application {APP}"]
    assert (risk["Decrypt"], risk["GenerateDataKey"], risk["calls"]) == (1, 0, 1)
    other = summary.loc[f"application {APP}"]
    assert other["GenerateDataKey"] == 2
    assert "AWS Internal" in other["principals"]
    assert "assumed-role/DataScientist/alice-notebook" in other["principals"]


def test_session_filter_keeps_only_that_sessions_calls() -> None:
    session = KernelSession("s-risk", APP, {"team": "risk"})
    frame = fetch(KEY_EMR, session=session).to_frame()
    assert frame["event_name"].tolist() == ["Decrypt"]


def test_two_sessions_fitting_equally_leave_the_row_unmatched() -> None:
    sessions = [("a", APP, {"team": "risk"}), ("b", APP, {"team": "risk"})]
    assert fetch(KEY_EMR, sessions=sessions).to_frame()["session"].isna().all()


def test_findings_name_denied_calls_and_callers_other_than_the_service() -> None:
    found = fetch(KEY_A).findings()
    denied = found[found["finding"] == "denied"]
    assert denied["detail"].str.startswith("AccessDeniedException").tolist() == [True]
    others = set(found.loc[found["finding"] == "other_principal", "principal"])
    assert others == {
        f"arn:aws:iam::{WORKLOAD}:user/Alice",
        f"arn:aws:sts::{WORKLOAD}:assumed-role/Admin/ops-user",
        "dynamodb.amazonaws.com",
    }


def test_an_expected_role_is_not_a_finding_for_its_sessions() -> None:
    usage = fetch(KEY_A, expected_principals=[f"arn:aws:iam::{WORKLOAD}:role/Admin"])
    found = usage.findings()
    others = set(found.loc[found["finding"] == "other_principal", "principal"])
    assert f"arn:aws:sts::{WORKLOAD}:assumed-role/Admin/ops-user" not in others


def test_calls_without_the_expected_context_pairs_are_findings() -> None:
    found = fetch(KEY_EMR, expected_context={"team": "risk"}).findings()
    missing = found[found["finding"] == "missing_context"]
    assert len(missing) == 2
    assert set(missing["detail"]) == {"context lacks team=risk"}
    assert set(missing["event_name"]) == {"GenerateDataKey"}


def test_a_window_with_no_time_gives_an_empty_frame_and_says_why() -> None:
    usage = KeyUsage.fetch(
        KEY_A, start=WINDOW["end"], end=WINDOW["start"], source="files", path=TRAIL
    )
    assert usage.to_frame().empty
    assert list(usage.to_frame().columns)[: len(COLUMNS)] == list(COLUMNS)
    assert "empty" in usage.notes[0]
    assert usage.summary().empty and usage.findings().empty


def test_a_key_nobody_used_gives_an_empty_frame_with_a_note() -> None:
    unused = f"arn:aws:kms:us-east-1:{WORKLOAD}:key/00000000-0000-0000-0000-000000000000"
    usage = fetch(unused)
    assert usage.to_frame().empty
    assert any(note.startswith(f"no KMS calls on {unused}") for note in usage.notes)
    assert "no key use" in usage.timeline().to_svg()


def test_a_bare_key_id_finds_the_same_rows_as_the_arn() -> None:
    by_id = fetch("1234abcd-12ab-34cd-56ef-1234567890ab").to_frame()
    pd.testing.assert_frame_equal(by_id, fetch(KEY_A).to_frame())


def test_timeline_draws_a_lane_per_application_and_counts_calls() -> None:
    timeline = fetch(KEY_EMR).timeline(bins=10)
    svg = timeline.to_svg()
    assert svg.startswith("<svg") and f"application {APP}" in svg
    lanes = timeline.to_dict()["lanes"]
    total = sum(b["GenerateDataKey"] + b["Decrypt"] for b in lanes[f"application {APP}"])
    assert total == 3


def test_everything_converts_to_json() -> None:
    usage = fetch(KEY_EMR, sessions=[("s-risk", APP, {"team": "risk"})])
    data = json.loads(json.dumps(usage.to_dict()))
    assert data["calls"] == 3
    assert data["summary"][0]["first_use"].endswith("Z")
    assert {row["session"] for row in data["rows"]} == {None, "s-risk"}
    assert "<svg" in usage._repr_html_()
