"""`emr-cmk ... --application-id NAME`: a name works, an ambiguous or missing one is one line."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cli.test_session_cmd import emr_cmk
from tests.conftest import demo_app_id
from tests.sessions.conftest import session_role

pytestmark = pytest.mark.integration


def test_list_takes_the_application_name(backend, demo):
    done = emr_cmk(backend, "list", "--application-id", "demo-app", "--json")
    assert done.returncode == 0, done.stderr
    assert all(s["application_id"] == demo_app_id(demo) for s in json.loads(done.stdout))


def test_an_ambiguous_name_is_exit_2_with_the_ids_and_starts_nothing(backend, demo):
    emr = backend.client("emr-serverless")
    name = f"twin-{uuid.uuid4().hex[:6]}"
    ids = [
        emr.create_application(
            name=name, releaseLabel="emr-7.13.0", type="Spark", clientToken=str(uuid.uuid4())
        )["applicationId"]
        for _ in range(2)
    ]
    done = emr_cmk(backend, "start", "--application-id", name, "--role", session_role(demo))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "starting" not in done.stderr
    assert all(app_id in done.stderr for app_id in ids)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--application-id", "no-such-app"], "no application has the id or name 'no-such-app'"),
        (["--application-id", "demo app"], "is neither an application id"),
        (["--application-id", "demo-app", "--key", "alias/no-such-key"], "alias/no-such-key"),
        (
            ["--application-id", "demo-app", "--role", "arn:aws:iam::111122223333:role/nobody"],
            "execution role arn:aws:iam::111122223333:role/nobody does not exist",
        ),
    ],
)
def test_what_is_missing_is_named_before_anything_starts(backend, demo, args, named):
    role = [] if "--role" in args else ["--role", session_role(demo)]
    done = emr_cmk(backend, "start", *args, *role)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "starting" not in done.stderr
    assert named in done.stderr
