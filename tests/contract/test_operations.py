"""Every AWS operation the package calls, answered by the local backend as botocore's models say.

One scenario drives each operation of ``OPERATIONS`` once, with real boto3 clients over loopback,
and keeps the answers; each answer is then checked against the operation's output shape in the
installed botocore (``shapes.problems``). ``test_every_call_in_the_package_is_in_the_table``
reads the package's source, so an operation called anywhere cannot go unchecked here.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore import xform_name

from emr_cmk_notebook.local import ANALYTICS_ACCOUNT
from tests.conftest import key_arn, wait_for_job
from tests.contract import shapes

pytestmark = pytest.mark.integration

PACKAGE = Path(__file__).resolve().parents[2] / "emr_cmk_notebook"
ROLE = f"arn:aws:iam::{ANALYTICS_ACCOUNT}:role/emr-session-role"
START_TIMEOUT = 180.0

# The operations each service answers in the scenario below: every one the package calls, plus
# the tagging and data-key calls whose answers the package's users see through the service.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "emr-serverless": (
        "CreateApplication",
        "UpdateApplication",
        "ListApplications",
        "StartApplication",
        "GetApplication",
        "StartJobRun",
        "GetJobRun",
        "ListJobRuns",
        "GetDashboardForJobRun",
        "CancelJobRun",
        "StartSession",
        "GetSession",
        "GetSessionEndpoint",
        "GetResourceDashboard",
        "ListSessions",
        "TagResource",
        "ListTagsForResource",
        "UntagResource",
        "TerminateSession",
        "StopApplication",
    ),
    "kms": (
        "DescribeKey",
        "GetKeyPolicy",
        "PutKeyPolicy",
        "ListGrants",
        "ListAliases",
        "GenerateDataKey",
        "Encrypt",
        "Decrypt",
    ),
    "iam": (
        "GetAccountAuthorizationDetails",
        "GetPolicy",
        "GetPolicyVersion",
        "ListUserPolicies",
        "GetUserPolicy",
        "ListAttachedUserPolicies",
        "ListRolePolicies",
        "GetRole",
        "GetRolePolicy",
        "ListAttachedRolePolicies",
        "ListGroupsForUser",
        "ListGroupPolicies",
        "GetGroupPolicy",
        "ListAttachedGroupPolicies",
        "SimulatePrincipalPolicy",
        "ListRoles",
    ),
    "sts": ("GetCallerIdentity", "AssumeRole"),
    "cloudtrail": ("LookupEvents", "DescribeTrails", "GetEventSelectors", "GetTrailStatus"),
    "s3": ("ListObjectsV2", "HeadObject", "GetObject"),
    "athena": (
        "StartQueryExecution",
        "GetQueryExecution",
        "GetQueryResults",
        "StopQueryExecution",
    ),
}
TABLE = [(service, op) for service, ops in OPERATIONS.items() for op in ops]
# Method names the package builds at run time, and the operations they stand for.
DYNAMIC_CALLS: dict[str, tuple[str, ...]] = {
    "list_{snake}_policies": ("ListUserPolicies", "ListRolePolicies"),
    "get_{snake}_policy": ("GetUserPolicy", "GetRolePolicy"),
    "list_attached_{snake}_policies": ("ListAttachedUserPolicies", "ListAttachedRolePolicies"),
}


# --- the scenario ------------------------------------------------------------------------------


class Recorder:
    """Calls operations by their model names and keeps each answer."""

    def __init__(self, backend: Any):
        self.backend = backend
        self.answers: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures: dict[tuple[str, str], str] = {}
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.backend.client(service)
        return self._clients[service]

    def __call__(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        try:
            answer = getattr(self.client(service), xform_name(operation))(**params)
        except Exception as exc:
            self.failures[(service, operation)] = f"{type(exc).__name__}: {exc}"
            raise
        self.answers[(service, operation)] = answer
        return answer


def _until(check: Any, what: str, timeout: float = START_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _app_state(call: Recorder, app_id: str) -> str:
    return call.client("emr-serverless").get_application(applicationId=app_id)["application"][
        "state"
    ]


def _session_state(call: Recorder, app_id: str, session_id: str) -> str:
    emr = call.client("emr-serverless")
    return emr.get_session(applicationId=app_id, sessionId=session_id)["session"]["state"]


def _applications_jobs_and_sessions(call: Recorder, job_script: str, slow_script: str) -> None:
    emr = "emr-serverless"
    app_id = call(
        emr,
        "CreateApplication",
        name="contract-app",
        releaseLabel="emr-7.13.0",
        type="Spark",
        clientToken=str(uuid.uuid4()),
        interactiveConfiguration={"livyEndpointEnabled": True, "sessionEnabled": True},
        tags={"team": "contract"},
    )["applicationId"]
    _until(lambda: _app_state(call, app_id) == "CREATED", "the application's creation")
    call(
        emr,
        "UpdateApplication",
        applicationId=app_id,
        clientToken=str(uuid.uuid4()),
        autoStopConfiguration={"enabled": True, "idleTimeoutMinutes": 30},
    )
    call(emr, "ListApplications")
    call(emr, "StartApplication", applicationId=app_id)
    _until(lambda: _app_state(call, app_id) == "STARTED", "the application's start")
    call(emr, "GetApplication", applicationId=app_id)

    run_id = call(
        emr,
        "StartJobRun",
        applicationId=app_id,
        clientToken=str(uuid.uuid4()),
        executionRoleArn=ROLE,
        name="contract-job",
        jobDriver={"sparkSubmit": {"entryPoint": job_script, "entryPointArguments": ["a"]}},
    )["jobRunId"]
    wait_for_job(call.client(emr), app_id, run_id)
    call(emr, "GetJobRun", applicationId=app_id, jobRunId=run_id)
    call(emr, "ListJobRuns", applicationId=app_id)
    call(emr, "GetDashboardForJobRun", applicationId=app_id, jobRunId=run_id)
    slow_id = call.client(emr).start_job_run(
        applicationId=app_id,
        clientToken=str(uuid.uuid4()),
        executionRoleArn=ROLE,
        jobDriver={"sparkSubmit": {"entryPoint": slow_script}},
    )["jobRunId"]
    call(emr, "CancelJobRun", applicationId=app_id, jobRunId=slow_id)
    wait_for_job(call.client(emr), app_id, slow_id)

    started = call(
        emr,
        "StartSession",
        applicationId=app_id,
        clientToken=str(uuid.uuid4()),
        executionRoleArn=ROLE,
        name="contract-session",
        tags={"team": "contract"},
    )
    session_id, session_arn = started["sessionId"], started["arn"]
    ready = {"STARTED", "IDLE"}
    _until(lambda: _session_state(call, app_id, session_id) in ready, "the session's start")
    call(emr, "GetSession", applicationId=app_id, sessionId=session_id)
    call(emr, "GetSessionEndpoint", applicationId=app_id, sessionId=session_id)
    call(
        emr,
        "GetResourceDashboard",
        applicationId=app_id,
        resourceId=session_id,
        resourceType="SESSION",
    )
    call(emr, "ListSessions", applicationId=app_id)
    call(emr, "TagResource", resourceArn=session_arn, tags={"owner": "contract"})
    call(emr, "ListTagsForResource", resourceArn=session_arn)
    call(emr, "UntagResource", resourceArn=session_arn, tagKeys=["owner"])
    call(emr, "TerminateSession", applicationId=app_id, sessionId=session_id)
    _until(lambda: _session_state(call, app_id, session_id) == "TERMINATED", "the session's end")
    call(emr, "StopApplication", applicationId=app_id)


def _keys(call: Recorder, status: dict[str, Any]) -> None:
    key = key_arn(status, "alias/emr-analytics")
    call("kms", "DescribeKey", KeyId="alias/emr-analytics")
    policy = call("kms", "GetKeyPolicy", KeyId=key, PolicyName="default")["Policy"]
    call("kms", "PutKeyPolicy", KeyId=key, PolicyName="default", Policy=policy)
    call("kms", "ListGrants", KeyId=key)
    call("kms", "ListAliases")
    context = {"applicationId": "contract"}
    call("kms", "GenerateDataKey", KeyId=key, KeySpec="AES_256", EncryptionContext=context)
    blob = call("kms", "Encrypt", KeyId=key, Plaintext=b"contract", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    call("kms", "Decrypt", CiphertextBlob=blob, EncryptionContext=context)


def _identities(call: Recorder, status: dict[str, Any]) -> None:
    iam = call.client("iam")
    suffix = uuid.uuid4().hex[:8]
    user, group = f"contract-user-{suffix}", f"contract-group-{suffix}"
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    managed = iam.create_policy(PolicyName=f"contract-{suffix}", PolicyDocument=document)
    policy_arn = managed["Policy"]["Arn"]
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="inline", PolicyDocument=document)
    iam.attach_user_policy(UserName=user, PolicyArn=policy_arn)
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="inline", PolicyDocument=document)
    iam.attach_group_policy(GroupName=group, PolicyArn=policy_arn)
    iam.add_user_to_group(GroupName=group, UserName=user)

    call(
        "iam",
        "GetAccountAuthorizationDetails",
        Filter=["User", "Role", "Group", "LocalManagedPolicy"],
    )
    version = call("iam", "GetPolicy", PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    call("iam", "GetPolicyVersion", PolicyArn=policy_arn, VersionId=version)
    call("iam", "ListUserPolicies", UserName=user)
    call("iam", "GetUserPolicy", UserName=user, PolicyName="inline")
    call("iam", "ListAttachedUserPolicies", UserName=user)
    role = ROLE.rsplit("/", 1)[1]
    call("iam", "GetRole", RoleName=role)
    [name, *_] = call("iam", "ListRolePolicies", RoleName=role)["PolicyNames"]
    call("iam", "GetRolePolicy", RoleName=role, PolicyName=name)
    call("iam", "ListAttachedRolePolicies", RoleName=role)
    call("iam", "ListGroupsForUser", UserName=user)
    call("iam", "ListGroupPolicies", GroupName=group)
    call("iam", "GetGroupPolicy", GroupName=group, PolicyName="inline")
    call("iam", "ListAttachedGroupPolicies", GroupName=group)
    call("iam", "ListRoles")
    call("sts", "GetCallerIdentity")
    auditor = next(r for r in status["roles"] if r.endswith("/key-usage-auditor"))
    call("sts", "AssumeRole", RoleArn=auditor, RoleSessionName="contract")


def _simulation(call: Recorder, status: dict[str, Any]) -> None:
    call(
        "iam",
        "SimulatePrincipalPolicy",
        PolicySourceArn=status["accounts"][0]["user_arn"],
        ActionNames=["kms:Decrypt"],
        ResourceArns=[key_arn(status, "alias/emr-analytics")],
    )


def _history_and_queries(call: Recorder, status: dict[str, Any]) -> None:
    key = key_arn(status, "alias/emr-analytics")
    call(
        "cloudtrail",
        "LookupEvents",
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}],
        MaxResults=5,
    )
    query = call(
        "athena",
        "StartQueryExecution",
        QueryString="SELECT 1",
        ResultConfiguration={"OutputLocation": "s3://contract-results/"},
    )["QueryExecutionId"]
    call("athena", "GetQueryExecution", QueryExecutionId=query)
    [trail, *_] = call("cloudtrail", "DescribeTrails", includeShadowTrails=True)["trailList"]
    call("cloudtrail", "GetEventSelectors", TrailName=trail["TrailARN"])
    call("cloudtrail", "GetTrailStatus", Name=trail["TrailARN"])
    _trail_bucket(call, trail["S3BucketName"])
    call("athena", "GetQueryResults", QueryExecutionId=query)
    call("athena", "StopQueryExecution", QueryExecutionId=query)


def _trail_bucket(call: Recorder, bucket: str) -> None:
    """The trail's log files, as ``usage parse s3://...`` lists and reads them (the earlier KMS
    calls of the scenario are delivered within seconds)."""
    deadline = time.monotonic() + 15
    while True:
        listed = call("s3", "ListObjectsV2", Bucket=bucket, Prefix="AWSLogs/")
        if listed.get("Contents") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    first = listed["Contents"][0]["Key"]
    call("s3", "HeadObject", Bucket=bucket, Key=first)
    call("s3", "GetObject", Bucket=bucket, Key=first)


@pytest.fixture(scope="module")
def slow_script(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("contract") / "slow.py"
    path.write_text("import time\ntime.sleep(60)\n")
    return str(path)


@pytest.fixture(scope="module")
def scenario(backend: Any, job_script: str, slow_script: str) -> Recorder:
    """Every operation of ``OPERATIONS`` called once against the local backend; a failed call
    ends its own part of the scenario only."""
    call = Recorder(backend)
    status = backend.status()
    for part in (_keys, _identities, _simulation, _history_and_queries):
        with contextlib.suppress(Exception):
            part(call, status)
    with contextlib.suppress(Exception):
        _applications_jobs_and_sessions(call, job_script, slow_script)
    return call


def _table_params() -> list[Any]:
    return [pytest.param(service, op, id=f"{service}:{op}") for service, op in TABLE]


@pytest.mark.parametrize(("service", "operation"), _table_params())
def test_the_answer_has_the_models_output_shape(
    scenario: Recorder, service: str, operation: str
) -> None:
    key = (service, operation)
    assert key not in scenario.failures, scenario.failures.get(key)
    assert key in scenario.answers, f"not reached; the scenario failed at {scenario.failures}"
    assert shapes.problems(service, operation, scenario.answers[key]) == []


# --- the table covers the package --------------------------------------------------------------

_CLIENT = re.compile(r"\bclient\(\s*(?:[\w.()]+,\s*)?\"([a-z0-9-]+)\"")
_ATTRIBUTE = re.compile(r"\.([a-z_][a-z0-9_]*)\b")
_PAGINATOR = re.compile(r"get_paginator\(\s*\"([a-z0-9_]+)\"")
_DYNAMIC = re.compile(r"(?:getattr\(\s*\w+,|get_paginator\()\s*f\"([^\"]+)\"")


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        # The local backend is the other side of the wire; it calls nothing over it.
        if "local" not in path.relative_to(PACKAGE).parts:
            yield path, path.read_text()


def _called() -> tuple[set[str], dict[str, set[str]], set[str]]:
    services: set[str] = set()
    names: dict[str, set[str]] = {}
    templates: set[str] = set()
    for path, text in _sources():
        services.update(_CLIENT.findall(text))
        for name in _ATTRIBUTE.findall(text) + _PAGINATOR.findall(text):
            names.setdefault(name, set()).add(path.name)
        templates.update(_DYNAMIC.findall(text))
    return services, names, templates


# The package's own methods whose names are also AWS operations of a service it uses.
NOT_AWS_CALLS = {
    # The Livy client's POST /sessions (sessions/livy.py), not S3 Express's CreateSession.
    "create_session": {"manager.py", "livy.py", "livy_transport.py"},
}


def test_every_call_in_the_package_is_in_the_table() -> None:
    services, names, templates = _called()
    assert services == set(OPERATIONS), "a service the package uses has no table entry"
    # A method name can belong to several services (get_session): one of them must be checked.
    known: dict[str, set[tuple[str, str]]] = {}
    for service in services:
        for op in shapes.service_model(service).operation_names:
            known.setdefault(xform_name(op), set()).add((service, op))
    unchecked = {
        f"{name} ({', '.join(sorted(names[name]))})"
        for name in names
        if name in known
        and not known[name] & set(TABLE)
        and not names[name] <= NOT_AWS_CALLS.get(name, set())
    }
    for template in templates:
        assert template in DYNAMIC_CALLS, f"f-string call {template!r} needs a DYNAMIC_CALLS entry"
        pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[a-z]+", re.escape(template)))
        stands_for = {op for name, ops in known.items() if pattern.fullmatch(name) for _, op in ops}
        assert set(DYNAMIC_CALLS[template]) <= stands_for, template
        unchecked |= set(DYNAMIC_CALLS[template]) - {op for _, op in TABLE}
    assert not unchecked, f"called by the package but not checked here: {sorted(unchecked)}"
    assert {"start_session", "describe_key", "lookup_events"} <= set(names)
