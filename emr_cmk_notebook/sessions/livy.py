"""A client for an EMR Serverless application's Apache Livy endpoint, every request SigV4-signed.

The URL is the one AWS documents (``https://APP_ID.livy.emr-serverless-services.REGION.amazonaws
.com``) or, when ``AWS_ENDPOINT_URL`` points at the local backend, the ``livy_url`` it lists.
Idempotent calls are retried with backoff on throttling, 5xx and dropped connections; a POST is
retried only when the service said it was throttled (so it did nothing).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from emr_cmk_notebook.clients import AwsTarget, local_backend_status, service_endpoint
from emr_cmk_notebook.core.errors import THROTTLING_CODES, ServiceFault, UserError

SIGNING_NAME = "emr-serverless"
AWS_LIVY_URL = "https://{app}.livy.emr-serverless-services.{region}.amazonaws.com"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class LivyError(ServiceFault):
    """The Livy endpoint answered with an error status."""

    def __init__(self, message: str, *, status: int, code: str | None = None):
        self.status = status
        super().__init__(message, code=code, operation="Livy")


class LivyUnreachable(ServiceFault):
    """The Livy endpoint could not be reached (or did not answer in time)."""


def livy_url(target: AwsTarget, application_id: str) -> str:
    """The application's Livy URL: the local backend's when it is the endpoint, else AWS's."""
    endpoint = target.endpoint_url or service_endpoint(SIGNING_NAME)
    if endpoint:
        local = _local_livy_url(endpoint.rstrip("/"), application_id)
        if local is not None:
            return local
    return AWS_LIVY_URL.format(app=application_id, region=target.resolved_region())


def _local_livy_url(endpoint: str, application_id: str) -> str | None:
    status = local_backend_status(endpoint)
    if status is None:
        return None
    for app in status["applications"]:
        if app.get("id") == application_id:
            if not app.get("livy_url"):
                raise UserError(
                    f"application {application_id} has no Livy endpoint",
                    hint=f"%emr_app update --application-id {application_id} --livy",
                )
            return app["livy_url"]
    return None


class LivyClient:
    """Sessions, statements and logs on one Livy endpoint, signed with the caller's credentials."""

    def __init__(
        self,
        url: str,
        credentials: Any,
        region: str,
        *,
        timeout: float = 30.0,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import requests

        if credentials is None:
            raise UserError(
                "no AWS credentials found for signing Livy requests",
                hint="set a profile or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        self.url = url.rstrip("/")
        self.region = region
        self._credentials = credentials
        self._timeout = timeout
        self._attempts = attempts
        self._sleep = sleep
        self._http = requests.Session()

    @classmethod
    def for_application(cls, target: AwsTarget, application_id: str, **kwargs: Any) -> LivyClient:
        """A client for the application's Livy endpoint, signing as the target's caller."""
        session = target.session()
        return cls(
            livy_url(target, application_id),
            session.get_credentials(),
            target.resolved_region(),
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"<LivyClient {self.url}>"

    # --- sessions ------------------------------------------------------------------------------

    def create_session(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /sessions. Not retried on 5xx: the caller looks the session up by name first."""
        return self._call("POST", "/sessions", body, idempotent=False)

    def get_session(self, session_id: int) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{int(session_id)}")

    def session_state(self, session_id: int) -> str:
        """The session's state alone (the cheapest poll)."""
        return self._call("GET", f"/sessions/{int(session_id)}/state")["state"]

    def list_sessions(self) -> list[dict[str, Any]]:
        """Every session of this caller on the endpoint, paging through all of them."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", "/sessions", query={"from": len(found), "size": 100})
            sessions = page.get("sessions") or []
            found += sessions
            if not sessions or len(found) >= int(page.get("total", len(found))):
                return found

    def delete_session(self, session_id: int) -> bool:
        """DELETE /sessions/{id}; False when it was already gone."""
        try:
            self._call("DELETE", f"/sessions/{int(session_id)}")
        except LivyError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def session_log(self, session_id: int, size: int = 100) -> list[str]:
        """The last ``size`` lines of the session log."""
        page = self._call("GET", f"/sessions/{int(session_id)}/log", query={"size": size})
        return list(page.get("log") or [])

    # --- statements ----------------------------------------------------------------------------

    def run_statement(self, session_id: int, code: str, kind: str | None = None) -> dict[str, Any]:
        """POST a statement; never retried after the service may have accepted it."""
        body: dict[str, Any] = {"code": code}
        if kind:
            body["kind"] = kind
        return self._call("POST", f"/sessions/{int(session_id)}/statements", body, idempotent=False)

    def get_statement(self, session_id: int, statement_id: int) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{int(session_id)}/statements/{int(statement_id)}")

    def statements(self, session_id: int, newest_first: bool = False) -> list[dict[str, Any]]:
        """The session's statements with their outputs and server-side start and end times."""
        query = {"order": "desc"} if newest_first else None
        page = self._call("GET", f"/sessions/{int(session_id)}/statements", query=query)
        return list(page.get("statements") or [])

    def cancel_statement(self, session_id: int, statement_id: int) -> None:
        """Cancel a statement; asking twice does no harm, so it is retried like a read."""
        self._call("POST", f"/sessions/{int(session_id)}/statements/{int(statement_id)}/cancel", {})

    # --- transport -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        import requests

        url = self.url + path + (f"?{urlencode(query)}" if query else "")
        data = b"" if body is None else json.dumps(body).encode()
        for attempt in range(1, self._attempts + 1):
            last = attempt == self._attempts
            try:
                answer = self._send(method, url, data)
            except requests.RequestException as exc:
                # The request may have reached the service: only reads and deletes go again.
                if idempotent and not last:
                    self._backoff(attempt)
                    continue
                raise LivyUnreachable(
                    f"{method} {path} on the Livy endpoint {self.url} failed: {type(exc).__name__}",
                    operation="Livy",
                ) from None
            if answer.status_code < 400:
                return answer.json() if answer.content else {}
            error = _error_of(method, path, answer)
            throttled = error.code in THROTTLING_CODES or answer.status_code == 429
            retry = throttled or (idempotent and answer.status_code in RETRY_STATUSES)
            if retry and not last:
                self._backoff(attempt)
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, data: bytes) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        headers = {"Content-Type": "application/json"} if data else {}
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        # Frozen per request: refreshable credentials may rotate between two calls.
        SigV4Auth(self._credentials.get_frozen_credentials(), SIGNING_NAME, self.region).add_auth(
            request
        )
        prepared = request.prepare()
        return self._http.request(
            method, prepared.url, data=data or None, headers=dict(prepared.headers),
            timeout=self._timeout, allow_redirects=False,
        )  # fmt: skip

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(2.0, 0.1 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))


def _error_of(method: str, path: str, answer: Any) -> LivyError:
    """A one-line LivyError from an error answer (never echoing request headers)."""
    try:
        data = answer.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = data.get("message") or data.get("Message") or data.get("msg") or answer.reason
    code = (answer.headers.get("x-amzn-ErrorType") or data.get("__type") or "").split(":")[0]
    code = code.rsplit("#", 1)[-1] or None
    status = answer.status_code
    hint = ""
    if status == 403:
        hint = (
            " (the caller needs emr-serverless:AccessLivyEndpoints on the application, and "
            "requests must be SigV4-signed for emr-serverless in the application's region)"
        )
    prefix = f"{code}: " if code else ""
    return LivyError(
        f"Livy {method} {path} answered {status}: {prefix}{message}{hint}", status=status, code=code
    )
