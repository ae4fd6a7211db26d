"""The launcher takes the application by name, as --application-id does."""

from __future__ import annotations

import pytest

from tests.conftest import demo_app_id
from tests.sessions.conftest import pointed_at
from tests.widgets.conftest import WAIT

pytestmark = pytest.mark.integration


def _launcher(backend, application: str):
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.kernel import KernelSessions
    from emr_cmk_notebook.sessions import SessionManager
    from emr_cmk_notebook.widgets import SessionLauncher

    with pointed_at(backend):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        made = SessionLauncher(KernelSessions(manager), application_id=application)
        made.wait_idle(WAIT)
    return made


def test_a_name_selects_its_application(backend, demo):
    made = _launcher(backend, "demo-app")
    assert made.application.value == demo_app_id(demo)
    assert made.errors["application"].value == ""


def test_a_missing_name_is_offered_with_what_exists(backend, demo):
    made = _launcher(backend, "no-such-app")
    assert made.application.value == "no-such-app"
    label = dict((value, label) for label, value in made.application.options)["no-such-app"]
    assert "no application has the id or name 'no-such-app'" in label
    assert f"demo-app ({demo_app_id(demo)})" in label
