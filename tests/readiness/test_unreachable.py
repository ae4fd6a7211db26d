"""Readiness when AWS cannot be reached: one line when nothing answers, and a report whose
unknowns name the endpoint when only one service is out of reach."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import ServiceFault
from emr_cmk_notebook.readiness import check_readiness
from tests.aws_failures import closed_port
from tests.conftest import demo_app_id
from tests.readiness.conftest import SESSION_ROLE

pytestmark = pytest.mark.integration


@pytest.fixture
def pointed(backend, monkeypatch):
    for name, value in backend.env().items():
        monkeypatch.setenv(name, value)
    return AwsTarget(region=backend.region)


def test_nothing_answering_is_one_error_not_a_report_of_unknowns(pointed, demo, monkeypatch):
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    with pytest.raises(ServiceFault, match=f"the endpoint {dead} could not be reached"):
        check_readiness("alias/emr-analytics", demo_app_id(demo), SESSION_ROLE, target=pointed)


def test_one_service_out_of_reach_leaves_the_others_checked(pointed, demo, monkeypatch):
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", dead)
    report = check_readiness("alias/emr-analytics", demo_app_id(demo), SESSION_ROLE, target=pointed)
    assert report.key_arn is not None and report.unknowns
    assert any(dead in check.detail for check in report.unknowns)
    assert any(check.status == "pass" for check in report.checks)
