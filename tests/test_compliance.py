"""The compliance report fits the page: cells that wrap, one-line reasons, raw text folded."""

from __future__ import annotations

import re

from emr_cmk_notebook.compliance import ComplianceReport
from emr_cmk_notebook.readiness.calls import Unreadable
from emr_cmk_notebook.sessions.evidence import SessionEvidence
from emr_cmk_notebook.sessions.results import SessionInfo
from tests.readiness.test_checks import APP, KEY, REFUSAL, ROLE, facts, report

EVIDENCE = (
    "not verified: no GenerateDataKey by emr-serverless.amazonaws.com on "
    f"{KEY} with applicationId={APP} and project=fraud after 2026-11-30T13:00:00Z; "
    "CloudTrail delivers events to event history within minutes, so look again later"
)


def _report() -> ComplianceReport:
    info = SessionInfo(
        id="fraud-session-0123456789",
        application_id=APP,
        state="IDLE",
        name="fraud",
        role_arn=ROLE,
        key_arn=KEY,
        context={"project": "fraud"},
    )
    evidence = SessionEvidence("not_verified", str(info.id), APP, KEY, {}, EVIDENCE)
    refused = Unreadable("kms:DescribeKey", "AccessDeniedException", REFUSAL)
    checked = report(facts(key=refused))
    checked.key_arn = KEY  # as recorded for the session's key
    return ComplianceReport("evidence", "2026-11-30T13:30:00Z", [info], [checked], [evidence])


def _visible(html: str) -> str:
    """The text a reader sees without opening anything: no folded parts, no tags."""
    html = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", "\n", html)


def test_the_sessions_table_fits_the_page_and_shows_every_value_whole():
    page = _report().to_html()
    sessions = page.split("<h2>Sessions</h2>", 1)[1].split("<h2>", 1)[0]
    # A fixed-width table whose every cell may break inside a long ARN or message.
    assert 'style="table-layout:fixed;width:100%' in sessions
    cells = re.findall(r"<t[dh] ([^>]*)>", sessions)
    assert len(cells) == 16 and all("overflow-wrap:anywhere" in c for c in cells)
    assert EVIDENCE in _visible(sessions) and KEY in _visible(sessions)


def test_readiness_reasons_are_one_line_and_what_aws_said_is_folded():
    page = _report().to_html()
    readiness = page.split("<h2>Readiness at start time</h2>", 1)[1].split("<h2>", 1)[0]
    assert "AccessDeniedException" not in _visible(readiness)
    assert readiness.count("AccessDeniedException") == 1
    assert "<details><summary>What AWS said</summary>" in readiness
    assert "waits on: caller can read the key" in readiness
