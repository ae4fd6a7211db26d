"""The one boundary where botocore's errors become ours, for every client ``clients.py`` makes.

Every boto3 client made by ``AwsTarget.client`` routes its calls (operations, paginators, waiters)
through ``Boundary._make_api_call``, which turns ``ClientError`` and ``BotoCoreError`` into one-line
errors that say what to change. The errors keep botocore's type as a second base
(``AwsRefused`` is also a ``ClientError``, ``AwsCredentialsMissing`` a ``NoCredentialsError``), so
code written against botocore's exceptions keeps working. The original error is the ``__cause__``;
``emr-cmk --debug`` and ``%config EmrCmk.debug = True`` show it.

Exit codes follow from the family: a ``UserError`` (no credentials, no such profile or region, a
request AWS calls invalid or naming nothing) is something to change, exit 2; a ``ServiceFault``
(AWS refused, throttled, failed, or could not be reached) is exit 1.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    LoginError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.parsers import ResponseParserError
from botocore.retries.standard import (
    OrRetryChecker,
    RetryContext,
    ThrottledRetryableChecker,
    ThrottlingStatusCodeChecker,
    TransientRetryableChecker,
)

from emr_cmk_notebook.core.errors import EmrCmkError, ServiceFault, UserError, one_line

LOCAL_BACKEND_HINT = (
    "if it is the local backend, it may be stopped: `emr-cmk local start`, or `%emr_local start` "
    'in a notebook; `eval "$(emr-cmk local env)"` points a shell at the running one'
)
CREDENTIALS_HINT = (
    "configure them with `aws configure`, AWS_PROFILE or --profile, or use the local backend: "
    '`%emr_local start` in a notebook, `eval "$(emr-cmk local env)"` in a shell'
)
# What AWS answers when the request is wrong or names nothing: the caller has something to change.
REQUEST_INVALID_CODES = frozenset(
    {
        "ValidationException",
        "ValidationError",
        "ResourceNotFoundException",
        "NotFoundException",
        "InvalidArnException",
        "NoSuchEntity",
    }
)
_CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,
    LoginError,
)


class AwsError(EmrCmkError):
    """An AWS call that failed: the operation, AWS's error code and AWS's own message."""

    code: str
    detail: str
    operation: str | None
    #: True when the service answered (with an error); False when it was never reached.
    answered: bool

    def __init__(
        self,
        message: str,
        *,
        code: str,
        detail: str,
        operation: str | None,
        answered: bool,
        hint: str | None = None,
    ):
        # Set by hand: the botocore base's __init__ takes other arguments than ours.
        self.code, self.detail, self.operation, self.answered = code, detail, operation, answered
        self.field, self.hint = None, hint
        Exception.__init__(self, one_line(message, hint))


class _AnsweredWithError(AwsError):
    """The ``ClientError`` half: ``response`` and ``operation_name`` as botocore sets them."""

    def __init__(self, message: str, original: ClientError, **fields: Any):
        super().__init__(message, answered=True, **fields)
        self.response = original.response
        self.operation_name = original.operation_name


class AwsRefused(_AnsweredWithError, ServiceFault, ClientError):
    """AWS answered with an error: access denied, throttled, or failed on its side."""


class AwsRequestInvalid(_AnsweredWithError, UserError, ClientError):
    """AWS says the request is invalid or names something that does not exist."""


class AwsCallFailed(AwsError, ServiceFault, BotoCoreError):
    """The call did not get an answer: endpoint unreachable, timed out, or unreadable."""


class AwsCredentialsMissing(AwsError, UserError, NoCredentialsError):
    """No usable AWS credentials: none configured, partial, or an expired SSO or login session."""


class AwsNotConfigured(AwsError, UserError, BotoCoreError):
    """The AWS setup or the request is wrong before any call: profile, region, parameters."""


def translate(
    exc: Exception, *, service: str = "AWS", operation: str | None = None, endpoint: str = ""
) -> EmrCmkError:
    """Our one-line error for a botocore error raised while calling ``service``."""
    if isinstance(exc, EmrCmkError):
        return exc
    what = f"{service} {operation}" if operation else service
    if isinstance(exc, ClientError):
        return _from_answer(exc, what, operation or exc.operation_name)
    fields: dict[str, Any] = {"code": type(exc).__name__, "operation": operation, "answered": False}
    if isinstance(exc, _CREDENTIAL_ERRORS):
        if isinstance(exc, NoCredentialsError):
            return AwsCredentialsMissing(
                f"no AWS credentials found for {what}", detail="", hint=CREDENTIALS_HINT, **fields
            )
        return AwsCredentialsMissing(
            f"AWS credentials for {what} could not be used: {exc}",
            detail=str(exc),
            hint="log in again (`aws sso login` for SSO profiles) or use another --profile",
            **fields,
        )
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile", "")
        return AwsNotConfigured(
            f"AWS profile {profile!r} is not configured",
            detail=str(exc),
            hint="check ~/.aws/config or pass another --profile",
            **fields,
        )
    if isinstance(exc, NoRegionError):
        return AwsNotConfigured(
            f"no AWS region set for {what}",
            detail=str(exc),
            hint="pass --region, set AWS_REGION, or `%config EmrCmk.region = ...` in a notebook",
            **fields,
        )
    if isinstance(exc, ParamValidationError):
        return AwsNotConfigured(
            f"{what} would be refused: {exc.kwargs.get('report', exc)}", detail=str(exc), **fields
        )
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        where = _base_url(endpoint or exc.kwargs.get("endpoint_url", ""))
        timed_out = isinstance(exc, ReadTimeoutError)
        why = "did not answer in time" if timed_out else "could not be reached"
        return AwsCallFailed(
            f"{what}: the endpoint {where} {why}",
            detail=str(exc),
            hint=LOCAL_BACKEND_HINT
            if _is_loopback(where)
            else "check the network, a proxy and AWS_ENDPOINT_URL, or try again",
            **fields,
        )
    if isinstance(exc, ResponseParserError):
        fields["answered"] = True  # the service answered, with something botocore cannot read
    return AwsCallFailed(f"{what} failed: {type(exc).__name__}: {exc}", detail=str(exc), **fields)


def _from_answer(exc: ClientError, what: str, operation: str) -> EmrCmkError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    fields: dict[str, Any] = {"code": code, "detail": message, "operation": operation}
    if code in REQUEST_INVALID_CODES:
        return AwsRequestInvalid(f"{operation}: {message or code}", exc, **fields)
    metadata = exc.response.get("ResponseMetadata", {})
    retries = metadata.get("RetryAttempts", 0)
    if metadata.get("MaxAttemptsReached") and retries:
        # botocore retried a retryable answer (throttling or a service error) and gave up.
        return AwsRefused(
            f"{what} still failed after {retries + 1} attempts: {code}: {message}",
            exc,
            hint="try again in a minute, or allow more attempts with AWS_MAX_ATTEMPTS",
            **fields,
        )
    if metadata.get("MaxAttemptsReached") and _retryable(exc):
        # One attempt allowed (AWS_MAX_ATTEMPTS=1): botocore's standard mode marks every error
        # so, retryable or not; only an answer it would have retried is told as one.
        return AwsRefused(
            f"{what} failed after 1 attempt, with no retries allowed: {code}: {message}",
            exc,
            hint="try again in a minute, or allow retries with AWS_MAX_ATTEMPTS above 1",
            **fields,
        )
    if "AccessDenied" in code or code in ("UnauthorizedOperation", "Forbidden"):
        # AWS's message names the principal and the action it lacks.
        return AwsRefused(
            f"{operation} was refused: {message or code}",
            exc,
            hint="grant that action to the caller, or use another --profile",
            **fields,
        )
    return AwsRefused(f"{operation} failed: {code}: {message}", exc, **fields)


def _retryable(exc: ClientError) -> bool:
    """Whether botocore's standard retry mode retries this answer: throttling, or a transient
    fault on the service's side (5xx and the like). Its two service-specific checks (STS web
    identity, DynamoDB checksums) need the operation model and concern no call made here."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    answer = AWSResponse("", status, {}, None) if status else None
    checks = [
        TransientRetryableChecker(),
        ThrottledRetryableChecker(),
        ThrottlingStatusCodeChecker(),
    ]
    context = RetryContext(1, parsed_response=exc.response, http_response=answer)
    return OrRetryChecker(checks).is_retryable(context)


def _base_url(url: str) -> str:
    """Scheme and host of ``url``: paths and query strings stay out of messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url or "(no endpoint)"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class Boundary:
    """Mixed into every client class ``clients.py`` makes; each AWS call comes through here."""

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> Any:
        try:
            return super()._make_api_call(operation_name, api_params)  # type: ignore[misc]
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            meta = self.meta  # type: ignore[attr-defined]
            raise translate(
                exc,
                service=meta.service_model.service_id,
                operation=operation_name,
                endpoint=meta.endpoint_url,
            ) from exc


def add_boundary(base_classes: list[type], **_: Any) -> None:
    """A ``creating-client-class`` handler: put the boundary in front of botocore's client."""
    base_classes.insert(0, Boundary)
