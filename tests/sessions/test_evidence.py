"""``verify_session`` and ``%emr_session verify`` against the local backend's CloudTrail."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions import SessionManager
from emr_cmk_notebook.sessions.evidence import (
    CONTRADICTED,
    NOT_YET_VISIBLE,
    NOTHING_TO_VERIFY,
    VERIFIED,
    verify_session,
)
from emr_cmk_notebook.sessions.results import AWS_OWNED
from tests.conftest import demo_app_id, key_arn
from tests.sessions.conftest import pointed_at, session_role

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(backend):
    """One session on alias/emr-analytics with a context no other test uses."""
    status = backend.status()
    with pointed_at(backend):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        info = manager.start(
            demo_app_id(status),
            session_role(status),
            key="alias/emr-analytics",
            context={"evidence": uuid.uuid4().hex[:12]},
        )
        yield manager, info
        manager.close()


def test_the_service_call_on_the_session_key_is_verified_with_its_event(live, backend, demo):
    _, info = live
    with pointed_at(backend):
        evidence = verify_session(info)
    assert evidence.status == VERIFIED and evidence.verified
    assert evidence.key_arn == key_arn(demo, "alias/emr-analytics")
    # CloudTrail times have whole seconds.
    started = pd.Timestamp(info.started_at, unit="s", tz="UTC").floor("s")
    assert pd.Timestamp(evidence.event_time) >= started
    record = backend.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": evidence.event_id}]
    )["Events"][0]
    assert record["EventName"] == "GenerateDataKey"
    assert '"AWSService"' in record["CloudTrailEvent"]
    assert info.context["evidence"] in record["CloudTrailEvent"]
    for shown in (repr(evidence), evidence._repr_html_()):
        assert "verified" in shown and evidence.event_id in shown
    assert evidence.to_dict()["status"] == VERIFIED


def test_a_session_expected_on_another_key_is_contradicted_naming_the_key_used(live, backend, demo):
    _, info = live
    with pointed_at(backend):
        evidence = verify_session(info, key=demo["shared_key_arn"])
    used = key_arn(demo, "alias/emr-analytics")
    assert evidence.status == CONTRADICTED
    assert evidence.used_key_arn == used
    assert "ANOTHER key" in evidence.message and used in evidence.message
    assert ("key actually used", used) in evidence.rows()


def test_no_call_since_the_start_is_not_yet_visible_with_a_retry_time(live, backend):
    _, info = live
    just_started = dataclasses.replace(info, started_at=time.time() + 2)
    with pointed_at(backend):
        evidence = verify_session(just_started)
    assert evidence.status == NOT_YET_VISIBLE
    retry = pd.Timestamp(evidence.retry_after)
    started = pd.Timestamp(just_started.started_at, unit="s", tz="UTC").floor("s")
    assert retry >= started + pd.Timedelta(minutes=15)
    assert f"retry after {evidence.retry_after}" in evidence.message


def test_an_attached_session_without_a_start_time_is_still_verified_with_a_note(live, backend):
    _, info = live
    attached = dataclasses.replace(info, started_at=None)
    with pointed_at(backend):
        evidence = verify_session(attached)
    assert evidence.status == VERIFIED
    assert evidence.started is None
    assert any("start time is unknown" in note for note in evidence.notes)


def test_a_session_on_the_aws_owned_key_has_nothing_to_verify(live):
    _, info = live
    owned = dataclasses.replace(info, key_arn=None, key_source=AWS_OWNED, context={})
    evidence = verify_session(owned, AwsTarget(endpoint_url="http://127.0.0.1:9"))
    assert evidence.status == NOTHING_TO_VERIFY
    assert "AWS owned key" in repr(evidence)


def test_the_magic_verifies_the_active_session_and_refuses_an_unknown_one(live, backend):
    manager, info = live
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "emr_cmk_notebook")
    magics = ip.magics_manager.registry["EmrCmk"]
    saved = magics.kernel().manager
    magics.kernel().manager = manager
    manager.use(info.id)
    try:
        with pointed_at(backend):
            evidence = ip.run_line_magic("emr_session", "verify")
            assert evidence.status == VERIFIED and evidence.session_id == str(info.id)
            with pytest.raises(UserError, match="session 987654 is not known here"):
                ip.run_line_magic("emr_session", "verify 987654")
    finally:
        magics.kernel().manager = saved


def test_the_compliance_report_is_one_standalone_file_with_the_evidence_and_no_secret(
    live, backend, demo, tmp_path
):
    from emr_cmk_notebook.compliance import ComplianceReport
    from emr_cmk_notebook.readiness import check_readiness

    _, info = live
    with pointed_at(backend):
        ready = check_readiness(
            "alias/emr-analytics", info.application_id, info.role_arn, dict(info.context)
        )
        report = ComplianceReport.build([info], readiness=[ready])
    path = report.save(tmp_path / "audit" / "report.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert report.evidence[0].event_id in page
    assert key_arn(demo, "alias/emr-analytics") in page
    assert f"evidence={info.context['evidence']}" in page
    assert "readiness at start" in page and ">ready<" in page
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert backend.env()["AWS_SECRET_ACCESS_KEY"] not in page
    assert report.to_dict()["evidence"][0]["status"] == VERIFIED
