"""The usage explorer against the local backend: a job's key use shows up as rows and a timeline."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.widgets import UsageExplorer
from tests.conftest import demo_app_id, key_arn
from tests.sessions.conftest import pointed_at
from tests.usage.test_key_usage_backend import run_job
from tests.widgets.conftest import READY_KEY, WAIT

pytestmark = pytest.mark.integration


@pytest.fixture
def explorer(backend, factory):
    with pointed_at(backend):
        yield UsageExplorer(AwsTarget(), factory=factory)


def test_a_job_run_shows_up_as_rows_a_summary_and_a_timeline(backend, demo, job_script, explorer):
    app_id = demo_app_id(demo)
    run_job(backend, app_id, job_script, key_arn(demo, READY_KEY), {"workload": "explorer"})
    explorer.key.value = READY_KEY
    explorer.since.value = "1h"
    explorer.application.value = app_id
    explorer.show_button.click()
    explorer.wait_idle(WAIT)

    frame = explorer.usage.to_frame()
    assert len(frame) > 0 and set(frame["application_id"]) == {app_id}
    assert "KMS calls on" in explorer.status.value
    assert app_id in explorer.summary.value and "GenerateDataKey" in explorer.frame.value
    assert "<svg" in explorer.timeline.value
    assert not explorer.show_button.disabled


def test_another_application_filter_shows_no_rows(explorer, demo):
    explorer.key.value = READY_KEY
    explorer.since.value = "1h"
    explorer.application.value = "00nosuchapplication"
    explorer.show_button.click()
    explorer.wait_idle(WAIT)
    assert explorer.usage.to_frame().empty
    assert "no KMS calls" in explorer.status.value and explorer.frame.value == ""


@pytest.mark.parametrize(
    ("key", "since", "field", "message"),
    [
        ("", "7d", "key", "give a key alias or key ARN"),
        (READY_KEY, "soon", "since", "is not a duration"),
    ],
)
def test_a_bad_filter_is_one_line_beside_its_field_and_looks_nothing_up(
    explorer, key, since, field, message
):
    explorer.key.value = key
    explorer.since.value = since
    explorer.show_button.click()
    explorer.wait_idle(WAIT)
    assert message in explorer.errors[field].value
    assert explorer.usage is None and message in explorer.status.value
