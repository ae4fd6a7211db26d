"""The two ways AWS fails before it answers, as environments a test can put itself in.

``no_credentials``: no AWS credentials anywhere the default chain looks. ``dead_endpoint``: fake
credentials and every service pointed at a loopback port nothing listens on. Both leave the
process as they found it (``monkeypatch``), and botocore is told to try once (the environment
variables the boundary honours), so a dead endpoint fails fast.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import pytest

# Whatever gives boto3 credentials, a profile, an endpoint or a region, cleared before each case.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
FAKE_SECRET = "fake-secret-never-shown-0123456789"
APP = "00fakeapp0000001"
ROLE = "arn:aws:iam::111122223333:role/emr-session-role"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bare(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")


def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> str:
    """No credentials anywhere; returns what the one-line error must say."""
    _bare(monkeypatch, tmp_path)
    return "no AWS credentials found"


def dead_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path) -> str:
    """Credentials, but an endpoint that does not answer; returns what the error must name."""
    _bare(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return endpoint


@dataclass(frozen=True)
class Failure:
    """One way of failing: how to set it up, the CLI's exit code and the error family shown."""

    arrange: Callable[[pytest.MonkeyPatch, object], str]
    exit_code: int
    family: str  # UserError (something to change) or ServiceFault (AWS could not be reached)


FAILURES = {
    "no credentials": Failure(no_credentials, 2, "UserError"),
    "dead endpoint": Failure(dead_endpoint, 1, "ServiceFault"),
}
