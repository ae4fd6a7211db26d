"""The AWS boundary: what a botocore error becomes, against the local backend over real sockets.

Errors AWS answers with keep their code and stay catchable as ``ClientError`` (code written
against botocore keeps working); the message is one line that names the operation, and for a
refusal the principal and action AWS named.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError, UnauthorizedSSOTokenError

from emr_cmk_notebook.aws_errors import translate
from emr_cmk_notebook.cli import main
from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import ServiceFault, UserError
from emr_cmk_notebook.local import SECURITY_ACCOUNT
from tests.test_layers import PACKAGE, imports, layer, modules

pytestmark = pytest.mark.integration


@pytest.fixture
def as_account(backend, monkeypatch):
    """Point the environment at the backend as one of its accounts."""

    def point(account: str | None = None) -> None:
        env = backend.env(account) if account else backend.env()
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return point


def test_a_missing_thing_is_ours_and_still_a_client_error(as_account):
    as_account()
    emr = AwsTarget().client("emr-serverless")
    with pytest.raises(ClientError) as caught:
        emr.get_application(applicationId="00nosuchapp00001")
    error = caught.value
    assert isinstance(error, UserError)
    assert error.response["Error"]["Code"] == "ResourceNotFoundException"
    assert str(error).startswith("GetApplication: ") and "\n" not in str(error)


def test_a_missing_application_is_exit_2_on_the_cli(as_account, capsys):
    as_account()
    assert main(["job", "list", "--application-id", "00nosuchapp00001"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emr-cmk: error: no application has the id or name '00nosuchapp00001'")
    assert err.count("\n") == 1


def test_a_resource_aws_cannot_find_is_something_to_change(as_account):
    as_account()
    with pytest.raises(UserError) as caught:
        AwsTarget().client("emr-serverless").get_application(applicationId="00nosuchapp00001")
    assert isinstance(caught.value, ClientError)
    assert str(caught.value) == "GetApplication: Application 00nosuchapp00001 does not exist"


@pytest.mark.parametrize("allowed", [None, "1"], ids=["default attempts", "one attempt"])
def test_access_denied_names_the_principal_and_the_action(as_account, monkeypatch, allowed):
    as_account(SECURITY_ACCOUNT)
    if allowed:  # botocore marks every error on the last allowed attempt, retryable or not
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", allowed)
    admin = f"arn:aws:iam::{SECURITY_ACCOUNT}:user/key-admin"
    with pytest.raises(ServiceFault) as caught:
        AwsTarget().client("iam").simulate_principal_policy(
            PolicySourceArn=admin, ActionNames=["kms:Decrypt"]
        )
    message = str(caught.value)
    assert caught.value.code == "AccessDenied" and isinstance(caught.value, ClientError)
    assert message.startswith("SimulatePrincipalPolicy was refused: ")
    assert admin in message and "iam:SimulatePrincipalPolicy" in message
    assert "attempt" not in message


@pytest.mark.parametrize(
    ("target", "allowed", "line"),
    [
        (
            AwsTarget(max_attempts=2),  # two attempts in all: one retry
            None,
            "EMR Serverless ListApplications still failed after 2 attempts: ThrottlingException: "
            "Rate exceeded (try again in a minute, or allow more attempts with AWS_MAX_ATTEMPTS)",
        ),
        (
            AwsTarget(),
            "1",
            "EMR Serverless ListApplications failed after 1 attempt, with no retries allowed: "
            "ThrottlingException: Rate exceeded (try again in a minute, or allow retries with "
            "AWS_MAX_ATTEMPTS above 1)",
        ),
        (
            # What the harvest and the simulator ask for: one attempt, their own pacing.
            AwsTarget(max_attempts=1),
            None,
            "EMR Serverless ListApplications failed after 1 attempt, with no retries allowed: "
            "ThrottlingException: Rate exceeded (try again in a minute, or allow retries with "
            "AWS_MAX_ATTEMPTS above 1)",
        ),
    ],
    ids=["retried", "one attempt allowed", "a target of one attempt"],
)
def test_throttling_says_how_many_attempts_were_made(
    backend, as_account, monkeypatch, target, allowed, line
):
    as_account()
    if allowed:
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", allowed)
    backend.settings(faults={"throttle_rate": 1.0, "services": ["emr-serverless"], "seed": 7})
    try:
        with pytest.raises(ServiceFault) as caught:
            target.client("emr-serverless").list_applications()
    finally:
        backend.settings(faults={})
    assert caught.value.code == "ThrottlingException"
    assert str(caught.value) == line


def test_an_unknown_profile_is_something_to_change(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with pytest.raises(UserError, match=r"AWS profile 'nobody' is not configured"):
        AwsTarget(profile="nobody").client("kms")


def test_a_read_timeout_names_the_endpoint_not_the_request():
    slow = ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/sessions?token=abc")
    error = translate(slow, service="EMR Serverless", operation="GetSession")
    assert isinstance(error, ServiceFault)
    assert str(error).startswith(
        "EMR Serverless GetSession: the endpoint http://127.0.0.1:4566 did not answer in time"
    )
    assert "token=abc" not in str(error) and "local backend" in str(error)


def test_an_expired_sso_login_says_how_to_log_in_again():
    error = translate(UnauthorizedSSOTokenError(), service="KMS", operation="DescribeKey")
    assert isinstance(error, UserError) and "aws sso login" in str(error)


def test_the_environment_decides_retries_when_it_says_so(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    told = AwsTarget().client("kms").meta.config.retries
    explicit = AwsTarget(max_attempts=3).client("kms").meta.config.retries
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    default = AwsTarget().client("kms").meta.config.retries
    one = AwsTarget(max_attempts=1).client("kms").meta.config.retries
    assert told["total_max_attempts"] == 1
    # A target's max_attempts counts attempts as AWS_MAX_ATTEMPTS does (1: no retry).
    assert explicit["total_max_attempts"] == 3 and one["total_max_attempts"] == 1
    assert default["total_max_attempts"] == 6


# sparkmagic_auth only reads credentials to sign Livy's HTTP requests; it calls no AWS API.
SIGNS_HTTP_ONLY = {"integrations/sparkmagic_auth.py"}


@pytest.mark.parametrize(
    "path",
    [
        path
        for path in modules()
        if layer(path) != "local"
        and path.name != "clients.py"
        and str(path.relative_to(PACKAGE)) not in SIGNS_HTTP_ONLY
    ],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_clients_py_makes_boto3_sessions(path):
    """Every AWS client comes from AwsTarget, so every AWS call passes the boundary."""
    assert "boto3" not in imports(path)


def test_an_assumed_role_target_acts_as_the_role_and_reports_through_the_boundary(as_account, demo):
    as_account()
    auditor = f"arn:aws:iam::{SECURITY_ACCOUNT}:role/key-usage-auditor"
    as_auditor = AwsTarget().assume_role(auditor, "emr-cmk-test")
    me = as_auditor.client("sts").get_caller_identity()
    assert me["Account"] == SECURITY_ACCOUNT and ":assumed-role/key-usage-auditor/" in me["Arn"]
    secret, token = as_auditor.credentials.secret_access_key, as_auditor.credentials.session_token
    assert secret not in repr(as_auditor) and token not in repr(as_auditor)
    with pytest.raises(UserError) as caught:
        as_auditor.client("kms").describe_key(KeyId="alias/emr-nowhere")
    assert isinstance(caught.value, ClientError) and "DescribeKey" in str(caught.value)
    assert secret not in str(caught.value)
