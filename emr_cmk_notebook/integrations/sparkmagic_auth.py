"""A sparkmagic authenticator that signs Livy requests with SigV4 for EMR Serverless.

sparkmagic names authenticators by dotted path; this one is registered as ``AWS_SigV4``
(``emr_cmk_notebook.integrations.sparkmagic_auth.SigV4Authenticator``). For an endpoint that
``%emr_session start`` registered, it also puts the session's execution role and disk key into
every ``POST /sessions`` body it signs, so ``%%configure -f`` cannot drop them. Importing this
module imports sparkmagic.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from requests.auth import AuthBase
from sparkmagic.auth.customauth import Authenticator

from emr_cmk_notebook.sessions.conf import enforce
from emr_cmk_notebook.sessions.livy import SIGNING_NAME

# Livy URL -> the conf every session created through it must carry.
MANDATORY_CONF: dict[str, dict[str, str]] = {}
_AWS_HOST = re.compile(r"\.livy\.emr-serverless-services\.([a-z0-9-]+)\.amazonaws\.com$")
_SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class SigV4Authenticator(AuthBase, Authenticator):
    """Signs each request with the caller's AWS credentials (service ``emr-serverless``)."""

    def __init__(self, parsed_attributes: Any = None, *, region: str | None = None):
        Authenticator.__init__(self, parsed_attributes)
        self.region = region
        self._credentials: Any = None

    @classmethod
    def for_endpoint(cls, url: str, region: str, credentials: Any) -> SigV4Authenticator:
        """An authenticator for one Livy URL, signing with ``credentials`` in ``region``."""
        auth = cls(region=region)
        auth.url = url.rstrip("/")
        auth._credentials = credentials
        return auth

    def __call__(self, request: Any) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        mandatory = MANDATORY_CONF.get(self.url.rstrip("/"))
        if mandatory and request.method == "POST" and _is_sessions(request.url):
            body = json.loads(request.body or "{}")
            request.body = json.dumps(enforce(body, mandatory)).encode()
            request.headers["Content-Length"] = str(len(request.body))
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = {}
        if "Content-Type" in request.headers:
            headers["Content-Type"] = request.headers["Content-Type"]
        signed = AWSRequest(method=request.method, url=request.url, data=body, headers=headers)
        credentials = self._credentials or _default_credentials()
        SigV4Auth(credentials.get_frozen_credentials(), SIGNING_NAME, self._region()).add_auth(
            signed
        )
        for name in _SIGNATURE_HEADERS:
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        return request

    def _region(self) -> str:
        if self.region:
            return self.region
        found = _AWS_HOST.search(urlsplit(self.url).hostname or "")
        if found:
            return found.group(1)
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def __repr__(self) -> str:
        return f"<SigV4Authenticator {self.url}>"


def _is_sessions(url: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith("/sessions")


def _default_credentials() -> Any:
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        from emr_cmk_notebook.core.errors import UserError

        raise UserError("no AWS credentials found for signing Livy requests")
    return credentials
