"""A Spark Connect session's auth token: fetched with GetSessionEndpoint, renewed before it
expires, and kept out of every output, log line and error (including botocore's DEBUG logs)."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

# Renew the token when less than this share of its lifetime is left (at most 5 minutes before).
REFRESH_SHARE = 0.25
REFRESH_MOST_SECONDS = 300.0
_TOKEN_FIELD = re.compile(r'("authToken"\s*:\s*")[^"]*(")')


class _RedactTokens(logging.Filter):
    """Blank ``authToken`` values in botocore's debug logs of response bodies."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "authToken" in message:
            record.msg, record.args = _TOKEN_FIELD.sub(r"\1(redacted)\2", message), ()
        return True


def redact_tokens_in_logs() -> None:
    """Keep GetSessionEndpoint's token out of botocore's DEBUG logs (it logs whole bodies)."""
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _RedactTokens) for f in logger.filters):
        logger.addFilter(_RedactTokens())


def connect_url(endpoint: str, token: str) -> str:
    """The ``sc://`` URL for an endpoint and token (port 443 and TLS unless the endpoint says)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    host = parts.hostname or endpoint
    port = parts.port or 443
    use_ssl = parts.scheme == "https" or parts.port is None
    flag = "true" if use_ssl else "false"
    return f"sc://{host}:{port}/;use_ssl={flag};x-aws-proxy-auth={quote(token, safe='')}"


class SessionToken:
    """The current auth token and endpoint of one session, renewed when close to expiring."""

    def __init__(self, emr: Any, application_id: str, session_id: str):
        redact_tokens_in_logs()
        self._emr = emr
        self._application_id = application_id
        self._session_id = session_id
        self._token: str | None = None
        self._expires_at = 0.0
        self._issued_at = 0.0
        self.endpoint = ""
        self._lock = threading.Lock()

    def current(self) -> str:
        """The auth token, renewed with GetSessionEndpoint when it is close to expiring."""
        with self._lock:
            lifetime = self._expires_at - self._issued_at
            margin = min(REFRESH_MOST_SECONDS, REFRESH_SHARE * lifetime)
            if self._token is None or time.time() > self._expires_at - margin:
                self._refresh()
            assert self._token is not None
            return self._token

    def _refresh(self) -> None:
        answer = self._emr.get_session_endpoint(
            applicationId=self._application_id, sessionId=self._session_id
        )
        expires = answer["authTokenExpiresAt"]
        self._issued_at = time.time()
        self._expires_at = expires.timestamp() if hasattr(expires, "timestamp") else float(expires)
        self._token = answer["authToken"]
        self.endpoint = answer["endpoint"]

    def __repr__(self) -> str:  # never the token
        return f"<auth token of session {self._session_id}>"
