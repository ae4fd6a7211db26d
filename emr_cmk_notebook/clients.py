"""One place that makes boto3 sessions and clients for every layer above core.

Profile and region come from the arguments, else the usual AWS variables and files. Endpoints follow
``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` (botocore honours both), which is how the
local backend is reached. Retries use botocore's standard mode with 6 attempts in all (the first
and 5 retries), unless the environment sets ``AWS_RETRY_MODE`` or ``AWS_MAX_ATTEMPTS`` (a target's
own ``max_attempts`` wins; both count every attempt, the first included). Every client's calls
go through the boundary in ``aws_errors``, so a botocore error reaches callers as one of ours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from emr_cmk_notebook import __version__

DEFAULT_REGION = "us-east-1"
# Attempts in all, the first included (``AWS_MAX_ATTEMPTS`` counts the same way).
DEFAULT_MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class RoleCredentials:
    """An assumed role's temporary credentials; only the access key id is ever shown."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


@dataclass(frozen=True)
class AwsTarget:
    """Where calls go: a profile (or an assumed role's credentials), a region and optionally one
    endpoint for every service."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    #: Attempts in all, the first included (1: no retry). None: ``AWS_MAX_ATTEMPTS`` when set,
    #: else ``DEFAULT_MAX_ATTEMPTS``.
    max_attempts: int | None = None
    #: None: the profile's or the environment's credentials.
    credentials: RoleCredentials | None = None

    def assume_role(self, role_arn: str, session_name: str) -> AwsTarget:
        """The same target acting as ``role_arn``, with credentials from STS AssumeRole."""
        answer = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)
        creds = answer["Credentials"]
        return self.with_changes(
            credentials=RoleCredentials(
                creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
            )
        )

    def with_changes(self, **changes: Any) -> AwsTarget:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def session(self) -> Any:
        """A boto3 session for this target whose clients report errors through the boundary."""
        import boto3
        from botocore.exceptions import BotoCoreError

        from emr_cmk_notebook.aws_errors import add_boundary, translate

        keys: dict[str, str] = {}
        if self.credentials is not None:
            keys = {
                "aws_access_key_id": self.credentials.access_key_id,
                "aws_secret_access_key": self.credentials.secret_access_key,
                "aws_session_token": self.credentials.session_token,
            }
        try:
            session = boto3.Session(profile_name=self.profile, region_name=self.region, **keys)
        except BotoCoreError as exc:
            raise translate(exc) from exc
        session.events.register("creating-client-class", add_boundary)
        return session

    def resolved_region(self) -> str:
        """The region calls go to: the target's, else the session's, else us-east-1."""
        return self.region or self.session().region_name or DEFAULT_REGION

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (a service name such as ``kms`` or ``emr-serverless``)."""
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        from emr_cmk_notebook.aws_errors import translate

        retries: dict[str, Any] = {}
        if self.max_attempts is not None or "AWS_MAX_ATTEMPTS" not in os.environ:
            # botocore's ``max_attempts`` counts retries; ``total_max_attempts`` counts attempts.
            retries["total_max_attempts"] = self.max_attempts or DEFAULT_MAX_ATTEMPTS
        if "AWS_RETRY_MODE" not in os.environ:
            retries["mode"] = "standard"
        config = Config(
            retries=retries,
            user_agent_extra=f"emr-cmk-notebook/{__version__}",
        )
        endpoint = self.endpoint_url or service_endpoint(service)
        try:
            return self.session().client(
                service, region_name=self.resolved_region(), endpoint_url=endpoint, config=config
            )
        except BotoCoreError as exc:
            raise translate(exc, service=service, endpoint=endpoint or "") from exc


def service_endpoint(service: str) -> str | None:
    """The endpoint the environment sets for ``service``, if any (per-service variable first)."""
    name = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_").replace(" ", "_")
    return os.environ.get(name) or os.environ.get("AWS_ENDPOINT_URL") or None


def local_backend_status(endpoint: str | None) -> dict[str, Any] | None:
    """The local backend's status when ``endpoint`` is one (asked over HTTP), else None."""
    import json
    import urllib.error
    import urllib.request

    if not endpoint:
        return None
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/_local/status", timeout=5) as answer:
            status = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return status if isinstance(status, dict) and "applications" in status else None


def client(service: str, *, profile: str | None = None, region: str | None = None) -> Any:
    """A boto3 client for ``service`` with the project's defaults."""
    return AwsTarget(profile=profile, region=region).client(service)
