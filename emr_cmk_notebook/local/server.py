"""The local backend's front door: one loopback HTTP server that speaks the AWS wire protocols.

Each request must carry a valid SigV4 signature (header or presigned query string) made with the
caller's secret, as at AWS; the credential scope names the service and region, and the access key
names the caller. KMS, EMR Serverless and CloudTrail are served by the
project's emulators; IAM, STS, S3 and anything else by moto, told which account is calling.
``/_local/...`` is the backend's own admin API (status, settings, reset, shutdown).
"""

from __future__ import annotations

import io
import json
import re
import signal
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from emr_cmk_notebook.local import accounts, seed
from emr_cmk_notebook.local.authorization import EmrAccess
from emr_cmk_notebook.local.cloudtrail import CloudTrail
from emr_cmk_notebook.local.cloudtrail import handle as handle_cloudtrail
from emr_cmk_notebook.local.emr import EmrServerless
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.faults import Faults
from emr_cmk_notebook.local.iam_simulator import answer as simulated
from emr_cmk_notebook.local.job_runner import LocalJobExecutor
from emr_cmk_notebook.local.kms import LocalKms
from emr_cmk_notebook.local.livy import PREFIX as LIVY_PREFIX
from emr_cmk_notebook.local.livy import LivyEndpoint, livy_url
from emr_cmk_notebook.local.sessions_api import SessionsApi
from emr_cmk_notebook.local.settings import BOUNDS, checked_setting
from emr_cmk_notebook.local.wire import (
    ApiRequest,
    ApiResponse,
    crashed,
    json11_error,
    rest_json_error,
)

CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
JSON11_SERVICES = frozenset({"kms", "cloudtrail"})
REST_JSON_SERVICES = frozenset({"emr-serverless"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
# The JSON protocols' codes (as ``sigv4`` and the emulators raise them) in the query protocol of
# IAM and STS, and in S3 (AWS's "Common Errors" and S3 "Error responses" pages).
QUERY_CODES = {
    "ThrottlingException": "Throttling",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "IncompleteSignatureException": "IncompleteSignature",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "ExpiredTokenException": "ExpiredToken",
}
S3_CODES = {
    "ThrottlingException": "SlowDown",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidAccessKeyId",
    "IncompleteSignatureException": "AuthorizationHeaderMalformed",
    "MissingAuthenticationTokenException": "AccessDenied",
    "AccessDeniedException": "AccessDenied",
    "ExpiredTokenException": "ExpiredToken",
}


def xml_error(err: AwsError) -> ApiResponse:
    """An error in the query/XML style IAM and STS use."""
    code = QUERY_CODES.get(err.code, err.code)
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{escape(err.message)}</Message></Error>"
        "<RequestId>local</RequestId></ErrorResponse>"
    )
    return ApiResponse(err.status, body.encode(), {"Content-Type": "text/xml"})


def s3_error(err: AwsError) -> ApiResponse:
    """An error in S3's REST-XML style."""
    code = S3_CODES.get(err.code, err.code)
    body = (
        f"<Error><Code>{code}</Code><Message>{escape(err.message)}</Message>"
        "<RequestId>local</RequestId></Error>"
    )
    return ApiResponse(err.status, body.encode(), {"Content-Type": "application/xml"})


def read_s3_object(account: str, bucket: str, key: str) -> bytes:
    """An object from the backend's S3 (for ``s3://`` entry points)."""
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"].get_object(bucket, key).value


def error_for(service: str, err: AwsError) -> ApiResponse:
    """``err`` in the wire style of ``service``."""
    if service in JSON11_SERVICES:
        return json11_error(err)
    if service in REST_JSON_SERVICES:
        return rest_json_error(err)
    if service == "s3":
        return s3_error(err)
    return xml_error(err)


class Backend:
    """The emulated AWS world and its WSGI application."""

    def __init__(
        self, data_dir: Path, *, seed_name: str | None = "demo", region: str = "us-east-1"
    ):
        self.data_dir = Path(data_dir)
        self.region = region
        self.seed_name = seed_name
        self.endpoint = ""
        self.faults = Faults()
        self.trail = CloudTrail(self.data_dir / "cloudtrail", home_region=region)
        self.kms = LocalKms(self.trail, self._forward_to_moto)
        self.emr = EmrServerless(
            self.kms,
            executor=LocalJobExecutor(self.data_dir / "jobs", read_s3_object),
            access=EmrAccess(),
        )
        self.livy = LivyEndpoint(self.emr, self.kms, self.data_dir / "livy")
        self.sessions = SessionsApi(self.emr, self.kms, self.data_dir / "sessions")
        self.emr.add_operations(self.sessions.operations())
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.world: seed.World | None = None
        self._lock = threading.Lock()
        self._shutdown: threading.Event = threading.Event()
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything and lay the seed anew."""
        with self._lock:
            self.livy.reset()
            self.sessions.reset()
            moto_api_backend.reset()
            self.emr.reset()
            self.trail.reset()
            self.faults = Faults()
            self.world = seed.lay(self, self.seed_name) if self.seed_name else None

    def close(self) -> None:
        self.livy.close()
        self.sessions.close()
        self.emr.close()
        self.trail.close()

    def status(self) -> dict[str, Any]:
        """What is running: endpoint, accounts, keys, roles, applications, log folder, settings."""
        world = self.world.describe(self) if self.world else {}
        return {
            "endpoint": self.endpoint,
            "region": self.region,
            "seed": self.seed_name,
            **world,
            "applications": [self._application_status(a) for a in self.emr.applications()],
            "cloudtrail_log_dir": str(self.trail.log_dir),
            "settings": self.settings(),
        }

    def _application_status(self, app: dict[str, Any]) -> dict[str, Any]:
        view = self.emr.application_view(app["account"], app["region"], app["id"])
        return {**app, "livy_url": livy_url(self.endpoint, view)}

    def settings(self) -> dict[str, Any]:
        return {
            "faults": self.faults.to_dict(),
            "lookup_tps": self.trail.lookup_tps,
            "state_delay": self.emr.state_delay,
            "job_step_delay": self.emr.job_step_delay,
            **self.livy.settings(),
            **self.sessions.settings(),
            **self.trail.trails.settings(),
        }

    def update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply settings (faults, lookup_tps, state_delay, job_step_delay, livy_*, session_*)."""
        allowed = {
            "faults",
            "lookup_tps",
            "state_delay",
            "job_step_delay",
            *self.livy.settings(),
            *self.sessions.settings(),
            *self.trail.trails.settings(),
        }
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(allowed)}")
        # Every value is checked before any is applied: a refused change leaves all as they were.
        for name, value in changes.items():
            if name in BOUNDS and value is not None:
                checked_setting(name, value)
        self.trail.trails.check_settings(changes)
        faults = Faults.from_dict(changes["faults"]) if "faults" in changes else self.faults
        if "lookup_tps" in changes:
            self.trail.set_lookup_tps(changes["lookup_tps"])
        self.emr.set_delays(
            state_delay=changes.get("state_delay"), job_step_delay=changes.get("job_step_delay")
        )
        self.livy.update_settings(
            session_limit=changes.get("livy_session_limit"),
            idle_timeout=changes.get("livy_idle_timeout"),
            start_delay=changes.get("livy_start_delay"),
        )
        self.sessions.update_settings(
            session_limit=changes.get("session_limit"),
            token_ttl=changes.get("session_token_ttl"),
            idle_timeout=changes.get("session_idle_timeout"),
        )
        self.trail.trails.update_settings(changes)
        self.faults = faults
        return self.settings()

    def credentials(self) -> dict[str, Any]:
        """The seeded users' access keys (local, fake credentials for `emr-cmk local env`)."""
        return self.world.credentials() if self.world else {}

    # --- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path.startswith("/_local/"):
            response = self._admin(environ["REQUEST_METHOD"], path, body)
        elif path.startswith(LIVY_PREFIX):
            response = self._livy(environ, body)
        else:
            response = self._aws(environ, body)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {_reason(response.status)}", headers)
        return [response.body]

    def _aws(self, environ: dict[str, Any], body: bytes) -> ApiResponse:
        headers = _headers(environ)
        query = environ.get("QUERY_STRING", "")
        scope = CREDENTIAL_SCOPE.search(headers.get("authorization", "") or unquote(query))
        if scope is None:
            return xml_error(
                AwsError("MissingAuthenticationToken", "Request is missing an AWS signature", 403)
            )
        _, region, service = scope.groups()
        method = environ["REQUEST_METHOD"]
        try:
            _, identity = accounts.authenticate(method, _raw_path(environ), query, headers, body)
            self.faults.apply(service)
        except AwsError as err:
            return error_for(service, err)
        request = ApiRequest(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", ""),
            query_string=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=body,
            service=service,
            region=region,
            identity=identity,
            source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
            user_agent=headers.get("user-agent", ""),
            request_id=str(uuid.uuid4()),
        )
        request.environ = environ  # type: ignore[attr-defined]
        try:
            if service == "kms":
                return self.kms.handle(request)
            if service == "cloudtrail":
                return handle_cloudtrail(self.trail, request)
            if service == "emr-serverless":
                return self.emr.handle(request)
            if service == "iam" and (answer := simulated(request)) is not None:
                return answer
            return self._forward_to_moto(request, identity.account_id)
        except AwsError as err:
            return error_for(service, err)

    def _livy(self, environ: dict[str, Any], body: bytes) -> ApiResponse:
        headers = _headers(environ)
        query = environ.get("QUERY_STRING", "")
        return self.livy.handle(environ["REQUEST_METHOD"], _raw_path(environ), query, headers, body)

    def _forward_to_moto(self, request: ApiRequest, account_id: str) -> ApiResponse:
        environ = dict(request.environ)  # type: ignore[attr-defined]
        environ["wsgi.input"] = io.BytesIO(request.body)
        environ["CONTENT_LENGTH"] = str(len(request.body))
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = account_id
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = dict(headers)

        try:
            chunks = self.moto(environ, start_response)
            try:
                payload = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        except Exception as exc:  # moto failing (e.g. an operation it lacks) is not an AWS answer
            raise _moto_failure(exc) from None
        answer = ApiResponse(captured["status"], payload, captured["headers"])
        if crashed(answer):
            raise _moto_failure(None)
        return answer

    def _admin(self, method: str, path: str, body: bytes) -> ApiResponse:
        route = (method, path.rstrip("/"))
        try:
            data = json.loads(body) if body.strip() else {}
            if route == ("GET", "/_local/status"):
                return _json(200, self.status())
            if route == ("GET", "/_local/credentials"):
                return _json(200, self.credentials())
            if route == ("POST", "/_local/settings"):
                return _json(200, self.update_settings(data))
            if route == ("POST", "/_local/reset"):
                self.reset()
                return _json(200, self.status())
            if route == ("POST", "/_local/shutdown"):
                self._shutdown.set()
                return _json(200, {"stopping": True})
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no admin route {method} {path}"})


def _moto_failure(exc: Exception | None) -> AwsError:
    """A failure inside moto as the service's internal error (its own shape, no traceback)."""
    what = "is not emulated" if isinstance(exc, NotImplementedError) else "failed"
    return AwsError("InternalFailure", f"The local backend {what} for this request.", 500)


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request headers, lower-case, as a client sent (and signed) them."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _raw_path(environ: dict[str, Any]) -> str:
    """The request path as the client sent (and signed) it, still percent-encoded."""
    raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
    return raw_target.split("?", 1)[0]


def _json(status: int, data: Any) -> ApiResponse:
    return ApiResponse(
        status, json.dumps(data, default=str).encode(), {"Content-Type": "application/json"}
    )


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def serve(
    data_dir: Path,
    *,
    port: int = 0,
    seed_name: str | None = "demo",
    on_ready: Any = None,
) -> None:
    """Serve on 127.0.0.1 until ``/_local/shutdown`` or Ctrl-C; call ``on_ready`` once listening."""
    backend = Backend(data_dir, seed_name=seed_name)
    server = make_server("127.0.0.1", port, backend, threaded=True)
    backend.endpoint = f"http://127.0.0.1:{server.server_port}"
    watcher = threading.Thread(
        target=lambda: (backend._shutdown.wait(), server.shutdown()), daemon=True
    )
    watcher.start()
    # `kill` (SIGTERM) stops the backend as cleanly as Ctrl-C or /_local/shutdown.
    signal.signal(signal.SIGTERM, lambda *_: backend._shutdown.set())
    try:
        if on_ready is not None:
            on_ready(backend)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()
