"""Credentials to callers: which account and identity a request's access key belongs to.

The IAM users and their access keys live in moto's IAM backends, so moto's own services (STS
GetCallerIdentity, IAM) see the same identities; assumed-role sessions come from moto's STS.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import Identity
from emr_cmk_notebook.local.sigv4 import SignedRequest, verify_request

PARTITION = "aws"


@dataclass(frozen=True)
class Credentials:
    """A long-term access key pair of a seeded IAM user."""

    access_key_id: str
    secret_access_key: str
    user_arn: str


def create_user_with_key(
    account_id: str, user_name: str, access_key_id: str, secret_access_key: str
) -> Credentials:
    """Create an IAM user whose access key has the given, fixed id and secret."""
    iam = iam_backends[account_id][PARTITION]
    user = iam.create_user(region_name="us-east-1", user_name=user_name)
    key = iam.create_access_key(user_name)
    # moto draws random ids; fixed ones let `emr-cmk local env` and the docs stay stable.
    iam.access_keys.pop(key.physical_resource_id, None)
    key.access_key_id = access_key_id
    key.secret_access_key = secret_access_key
    iam.access_keys[key.physical_resource_id] = key
    return Credentials(access_key_id, secret_access_key, user.arn)


def secret_for(access_key_id: str) -> str | None:
    """The secret of a known access key (for signature checks), or None."""
    for account in list(iam_backends.values()):
        key = account[PARTITION].access_keys.get(access_key_id)
        if key is not None:
            return key.secret_access_key
    return None


def authenticate(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    service: str | None = None,
) -> tuple[SignedRequest, Identity]:
    """Who sent a request: its SigV4 signature checked against the caller's secret, and for
    temporary credentials the session token too; a 403 ``AwsError`` when either does not hold."""
    signed = verify_request(
        method,
        raw_path,
        query_string,
        headers,
        body,
        secret_for=_known_secret,
        service=service,
    )
    lower = {name.lower(): value for name, value in headers.items()}
    query = dict(pair.partition("=")[::2] for pair in query_string.split("&") if pair)
    token = lower.get("x-amz-security-token") or unquote(query.get("X-Amz-Security-Token", ""))
    _check_session_token(signed.access_key_id, token)
    return signed, identity_for(signed.access_key_id)


def _known_secret(access_key_id: str) -> str:
    secret = secret_for(access_key_id)
    if secret is None:
        raise _unknown_key()
    return secret


def _check_session_token(access_key_id: str, token: str) -> None:
    """Temporary credentials need their own session token; long-term keys take none."""
    for account_id in list(iam_backends):
        session = sts_backends[account_id][PARTITION].get_assumed_role_from_access_key(
            access_key_id
        )
        if session is None:
            continue
        if not token or not hmac.compare_digest(token, session.session_token):
            raise _unknown_key()
        expires = session.expiration.replace(tzinfo=session.expiration.tzinfo or UTC)
        if expires < datetime.now(UTC):
            raise AwsError(
                "ExpiredTokenException",
                "The security token included in the request is expired",
                403,
            )
        return
    if token:
        raise _unknown_key()


def _unknown_key() -> AwsError:
    return AwsError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid. "
        'Run `eval "$(emr-cmk local env)"` to use the local backend\'s credentials.',
        403,
    )


def identity_for(access_key_id: str) -> Identity:
    """The caller behind ``access_key_id``; unknown keys are refused as AWS refuses them."""
    for account_id, account in list(iam_backends.items()):
        iam = account[PARTITION]
        if access_key_id not in iam.access_keys:
            continue
        session = sts_backends[account_id][PARTITION].get_assumed_role_from_access_key(
            access_key_id
        )
        if session is not None:
            return Identity(
                type="AssumedRole",
                account_id=account_id,
                arn=session.arn,
                principal_id=session.user_id,
                access_key_id=access_key_id,
                role_arn=session.role_arn,
                user_name=session.session_name,
            )
        user = iam.get_user_from_access_key_id(access_key_id)
        if user is not None:
            return Identity(
                type="IAMUser",
                account_id=account_id,
                arn=user.arn,
                principal_id=user.id,
                access_key_id=access_key_id,
                user_name=user.name,
            )
    raise _unknown_key()
