"""The Livy session ``conf`` this tool owns: the execution role and the disk-encryption properties.

They are put into the request body as it is built, after any user conf is merged, so no
user override (``%%configure``, sparkmagic's session config, a ``conf`` argument) can drop or
change them. A user conf that sets one of them to another value is refused.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.core.errors import UserError

EXECUTION_ROLE = "emr-serverless.session.executionRoleArn"
MANAGED = (EXECUTION_ROLE, LIVY_KEY_ARN, LIVY_CONTEXT)
ROLE_ARN = re.compile(r"arn:aws[a-zA-Z0-9-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_OWNER = {EXECUTION_ROLE: "--role", LIVY_KEY_ARN: "--key", LIVY_CONTEXT: "--context"}


def check_role(role_arn: str | None) -> str:
    """The execution role ARN, or a one-line error saying what to give."""
    if not role_arn:
        raise UserError(
            "no execution role given", hint="pass --role ARN or set EmrCmk.default_role"
        )
    role_arn = role_arn.strip()
    if not ROLE_ARN.fullmatch(role_arn):
        raise UserError(
            f"execution role {role_arn[:120]!r} is not an IAM role ARN",
            hint="give arn:aws:iam::ACCOUNT:role/NAME",
        )
    return role_arn


def check_start(
    role_arn: str | None,
    key: str | None,
    context: object,
    idle_timeout_minutes: int | None,
) -> str:
    """The checks every session start makes before any call (either transport); the role ARN."""
    role_arn = check_role(role_arn)
    if idle_timeout_minutes is not None and idle_timeout_minutes < 1:
        raise UserError("--idle-timeout must be at least 1 minute")
    if context and not key:
        raise UserError("--context needs --key: the context belongs to a key")
    return role_arn


def mandatory_conf(role_arn: str, encryption: DiskEncryption | None) -> dict[str, str]:
    """The conf every session gets: the role, and the key and context when one was asked for."""
    conf = {EXECUTION_ROLE: role_arn}
    if encryption is not None:
        conf.update(encryption.to_livy_conf())
    return conf


def enforce(body: Mapping[str, Any], mandatory: Mapping[str, str]) -> dict[str, Any]:
    """A copy of a ``POST /sessions`` body whose ``conf`` carries ``mandatory`` unchanged."""
    result = copy.deepcopy(dict(body))
    user = result.get("conf") or {}
    if not isinstance(user, Mapping):
        raise UserError("the session conf must be a mapping of Spark property names to values")
    for name in MANAGED:
        if name in user and str(user[name]) != mandatory.get(name):
            wanted = mandatory.get(name)
            what = f"is {wanted!r} for this session" if wanted else "is not set for this session"
            raise UserError(
                f"conf {name} {what} and cannot be overridden",
                hint=f"remove it from the conf; change it with {_OWNER[name]} instead",
            )
    result["conf"] = {**user, **mandatory}
    return result
