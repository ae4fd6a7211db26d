"""Fixtures for session tests: the demo role and application, managers that clean up after
themselves, and a faulty network in front of the local backend."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from tests.conftest import demo_app_id
from tests.sessions.faulty_network import FaultyNetwork

ROLE_NAME = "emr-session-role"


def given_name(livy_session: dict) -> str | None:
    """The name a Livy session was given, without the owner its name carries."""
    from emr_cmk_notebook.sessions.owner import Owner

    return Owner.split(livy_session.get("name"))[0]


def session_role(status: dict) -> str:
    """The demo execution role that may use the ready key."""
    return next(r for r in status["roles"] if r.endswith(f"role/{ROLE_NAME}"))


@contextlib.contextmanager
def pointed_at(backend) -> Iterator[dict[str, str]]:
    """This process's AWS variables point at the local backend while inside."""
    saved = {k: os.environ.get(k) for k in backend.env()}
    os.environ.update(backend.env())
    try:
        yield backend.env()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def aws_env(backend):
    with pointed_at(backend) as env:
        yield env


@pytest.fixture
def app_id(demo) -> str:
    return demo_app_id(demo)


@pytest.fixture
def role(demo) -> str:
    return session_role(demo)


@pytest.fixture
def managers(aws_env):
    """Make SessionManagers; whatever they started is deleted when the test ends."""
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.sessions import SessionManager

    made: list[SessionManager] = []

    def make(endpoint_url: str | None = None) -> SessionManager:
        manager = SessionManager(AwsTarget(endpoint_url=endpoint_url), cleanup_at_exit=False)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def network(backend):
    proxy = FaultyNetwork(backend.endpoint)
    yield proxy
    proxy.close()


KEYED_CONTEXT = {"project": "churn"}


@pytest.fixture
def demo_app_keyed(backend, demo):
    """The demo application with the ready key and ``KEYED_CONTEXT`` as its own disk key (the
    route AWS documents for Spark Connect sessions); the key is unset again afterwards."""
    from emr_cmk_notebook import apps
    from emr_cmk_notebook.clients import AwsTarget
    from emr_cmk_notebook.core.encryption import DiskEncryption

    with pointed_at(backend):
        target = AwsTarget()
        app_id = demo_app_id(demo)
        wanted = DiskEncryption.from_parts("alias/emr-analytics", KEYED_CONTEXT)
        change = apps.update_application(target, app_id, encryption=wanted, restart=True)
    yield change.new
    with pointed_at(backend):
        apps.update_application(AwsTarget(), app_id, encryption=None, restart=True)
