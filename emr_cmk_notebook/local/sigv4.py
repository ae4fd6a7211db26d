"""Checking AWS Signature Version 4 on requests the local backend receives.

The signature is recomputed with botocore's own signer from what the request says it signed (its
``X-Amz-Date``, signed headers list and payload hash) and the caller's secret, then compared in
constant time. Both forms are understood: the ``Authorization`` header and presigned query strings.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from botocore.auth import (
    UNSIGNED_PAYLOAD,
    S3SigV4Auth,
    S3SigV4QueryAuth,
    SigV4Auth,
    SigV4QueryAuth,
)
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from emr_cmk_notebook.local.errors import AwsError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)
_SCOPE = re.compile(
    r"(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
)
# x-amz-content-sha256 values that stand for "the body is not hashed".
_UNHASHED = (UNSIGNED_PAYLOAD, "STREAMING-")

BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


@dataclass(frozen=True)
class SignedRequest:
    """Who signed a request that passed the check, and for which region and service."""

    access_key_id: str
    region: str
    service: str
    signed_at: datetime


def _refused(code: str, message: str) -> AwsError:
    return AwsError(code, message, 403)


def _invalid(message: str = BAD_SIGNATURE) -> AwsError:
    return _refused("InvalidSignatureException", message)


class _ExactHeaders:
    """Sign exactly the headers the request listed, not the ones botocore would pick."""

    signed: HTTPHeaders

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self.signed


class _HeaderSigner(_ExactHeaders, SigV4Auth):
    pass


class _S3HeaderSigner(_ExactHeaders, S3SigV4Auth):
    pass


class _QuerySigner(_ExactHeaders, SigV4QueryAuth):
    pass


class _S3QuerySigner(_ExactHeaders, S3SigV4QueryAuth):
    pass


def verify_request(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret_for: Callable[[str], str | None],
    service: str | None = None,
    now: datetime | None = None,
) -> SignedRequest:
    """Check a request's SigV4 signature; raise a 403 ``AwsError`` when it does not hold.

    ``path`` and ``query_string`` are the raw (still percent-encoded) request target, ``headers``
    the received headers (any case), ``secret_for`` maps an access key id to its secret (None when
    unknown). ``service``, when given, is the only service name the credential scope may carry.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    query_pairs = [pair.partition("=") for pair in query_string.split("&") if pair]
    query = {key: value for key, _, value in query_pairs}
    presigned = query.get("X-Amz-Algorithm") == ALGORITHM
    credential, signed_list, signature, amz_date = (
        _from_query(query) if presigned else _from_header(lower)
    )
    scope = _SCOPE.fullmatch(credential)
    if scope is None:
        raise _refused("IncompleteSignatureException", "The credential scope is malformed")
    if service is not None and scope["service"] != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'.")
    signed_at = _signed_at(amz_date, scope["date"], now or datetime.now(UTC), query, presigned)

    secret = secret_for(scope["key"])
    if secret is None:
        raise _refused(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    names = signed_list.split(";")
    if "host" not in names or any(name not in lower for name in names):
        raise _invalid()
    payload_hash = lower.get("x-amz-content-sha256")
    # The header is what gets signed, so on its own it would let a changed body through.
    if (
        payload_hash
        and not payload_hash.startswith(_UNHASHED)
        and not hmac.compare_digest(payload_hash, hashlib.sha256(body).hexdigest())
    ):
        raise _invalid("The provided 'x-amz-content-sha256' header does not match the body.")

    is_s3 = scope["service"] == "s3"
    if presigned:
        signer_class = _S3QuerySigner if is_s3 else _QuerySigner
        query_string = "&".join(
            f"{key}{sep}{value}" for key, sep, value in query_pairs if key != "X-Amz-Signature"
        )
    else:
        signer_class = _S3HeaderSigner if is_s3 else _HeaderSigner
    signer = signer_class(Credentials(scope["key"], secret), scope["service"], scope["region"])
    signer.signed = HTTPHeaders()
    for name in names:
        signer.signed[name] = lower[name]
    target = f"http://{lower['host']}{path}" + (f"?{query_string}" if query_string else "")
    request = AWSRequest(method=method.upper(), url=target, data=body, headers=dict(signer.signed))
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature.lower()):
        raise _invalid()
    return SignedRequest(scope["key"], scope["region"], scope["service"], signed_at)


def _from_query(query: Mapping[str, str]) -> tuple[str, str, str, str]:
    """Credential, signed headers, signature and date of a presigned URL."""
    return (
        unquote(query.get("X-Amz-Credential", "")),
        unquote(query.get("X-Amz-SignedHeaders", "")),
        query.get("X-Amz-Signature", ""),
        query.get("X-Amz-Date", ""),
    )


def _from_header(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    """Credential, signed headers, signature and date of an ``Authorization`` header."""
    match = _AUTH_HEADER.match(headers.get("authorization", "").strip())
    if match is None:
        if "authorization" in headers:
            raise _refused(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                f"parameters of the {ALGORITHM} algorithm",
            )
        raise _refused("MissingAuthenticationTokenException", "Missing Authentication Token")
    return (
        match["credential"],
        match["signed"],
        match["signature"],
        headers.get("x-amz-date", ""),
    )


def _signed_at(
    amz_date: str, scope_date: str, now: datetime, query: Mapping[str, str], presigned: bool
) -> datetime:
    """When the request was signed; refused when too far from ``now`` or past its expiry."""
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise _refused(
            "IncompleteSignatureException",
            "The request must carry an X-Amz-Date of the form YYYYMMDDTHHMMSSZ",
        ) from None
    if amz_date[:8] != scope_date:
        raise _invalid("The date of the credential scope does not match X-Amz-Date.")
    stamp = now.strftime(_AMZ_DATE)
    if presigned:
        try:
            expires = int(query.get("X-Amz-Expires", ""))
        except ValueError:
            raise _refused(
                "IncompleteSignatureException", "A presigned request must carry X-Amz-Expires"
            ) from None
        if now > signed_at + timedelta(seconds=expires):
            raise _refused("AccessDeniedException", "Request has expired")
        if signed_at - now > MAX_SKEW:
            raise _invalid(f"Signature not yet current: {amz_date} is still later than {stamp}")
        return signed_at
    if now - signed_at > MAX_SKEW:
        earliest = (now - MAX_SKEW).strftime(_AMZ_DATE)
        raise _invalid(
            f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 15 min.)"
        )
    if signed_at - now > MAX_SKEW:
        latest = (now + MAX_SKEW).strftime(_AMZ_DATE)
        raise _invalid(
            f"Signature not yet current: {amz_date} is still later than {latest} "
            f"({stamp} + 15 min.)"
        )
    return signed_at
