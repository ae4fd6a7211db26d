"""Widgets built against the test session's local backend, through a factory tests can observe."""

from __future__ import annotations

import pytest

from emr_cmk_notebook.widgets.factory import WidgetFactory
from tests.conftest import demo_app_id
from tests.magics.conftest import shell
from tests.sessions.conftest import demo_app_keyed, pointed_at, session_role

__all__ = ["demo_app_keyed", "shell"]  # fixtures shared from the other suites

READY_KEY = "alias/emr-analytics"
WAIT = 120.0


class RecordingFactory(WidgetFactory):
    """The real controls, plus a record of every one made, by kind."""

    def __init__(self) -> None:
        self.made: list[tuple[str, object]] = []

    def _make(self, kind: str, **options: object) -> object:
        control = super()._make(kind, **options)
        self.made.append((kind, control))
        return control


@pytest.fixture
def factory() -> RecordingFactory:
    return RecordingFactory()


@pytest.fixture
def launcher(backend, factory):
    """A launcher on its own session manager; whatever it started is deleted afterwards."""
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.kernel import KernelSessions
    from emr_cmk_notebook.sessions import SessionManager
    from emr_cmk_notebook.widgets import SessionLauncher

    with pointed_at(backend):
        manager = SessionManager(AwsTarget(), cleanup_at_exit=False)
        made = SessionLauncher(KernelSessions(manager), factory=factory)
        made.wait_idle(WAIT)
        yield made
        made.wait_idle(WAIT)
        manager.close()


def fill_ready_form(launcher, status: dict, key: str = READY_KEY) -> None:
    """Choose the demo application, the session role and ``key``; wait for readiness."""
    launcher.application.value = demo_app_id(status)
    launcher.role.value = session_role(status)
    launcher.key.value = key
    launcher.wait_idle(WAIT)
