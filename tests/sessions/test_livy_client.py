"""The Livy client: the URL AWS documents or the local backend's, and signed requests only."""

from __future__ import annotations

import pytest
import requests

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.sessions.livy import LivyClient, LivyError, livy_url

pytestmark = pytest.mark.integration


def test_url_is_the_documented_one_for_aws(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EMR_SERVERLESS", raising=False)
    url = livy_url(AwsTarget(region="eu-west-1"), "00fabcdefghijklm")
    assert url == "https://00fabcdefghijklm.livy.emr-serverless-services.eu-west-1.amazonaws.com"


def test_url_comes_from_the_local_backend(aws_env, backend, demo, app_id):
    listed = next(a["livy_url"] for a in demo["applications"] if a["id"] == app_id)
    assert livy_url(AwsTarget(), app_id) == listed
    assert listed.startswith(backend.endpoint)


def test_unsigned_requests_are_refused(aws_env, app_id):
    answer = requests.get(f"{livy_url(AwsTarget(), app_id)}/sessions", timeout=10)
    assert answer.status_code == 403


def test_signed_requests_pass(aws_env, app_id):
    client = LivyClient.for_application(AwsTarget(), app_id)
    assert isinstance(client.list_sessions(), list)


def test_a_wrong_secret_is_a_403_that_never_shows_the_secret(aws_env, app_id):
    from botocore.credentials import Credentials

    secret = "not-the-secret-0123456789abcdefghijklmn"
    credentials = Credentials(aws_env["AWS_ACCESS_KEY_ID"], secret)
    client = LivyClient(livy_url(AwsTarget(), app_id), credentials, "us-east-1")
    with pytest.raises(LivyError) as refused:
        client.list_sessions()
    assert refused.value.status == 403
    assert "AccessLivyEndpoints" in str(refused.value)
    assert secret not in str(refused.value) and "Signature=" not in str(refused.value)
