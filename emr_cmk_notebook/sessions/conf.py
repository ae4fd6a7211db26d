"""The session ``conf`` this tool owns: the execution role and the disk-encryption properties.

They are put into the request body as it is built, after any user conf is merged, so no
user override (``%%configure``, sparkmagic's session config, a ``conf`` argument) can drop or
change them. A user conf that sets one of them to another value is refused, for Livy sessions
and for Spark Connect sessions alike. ``key_in_effect`` says which key protects a session.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from emr_cmk_notebook.core.arns import quoted, role_arn_problem
from emr_cmk_notebook.core.encryption import LIVY_CONTEXT, LIVY_KEY_ARN, DiskEncryption
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.sessions.results import APPLICATION_DEFAULT, AWS_OWNED, SESSION_OVERRIDE

EXECUTION_ROLE = "emr-serverless.session.executionRoleArn"
_OWNER = {EXECUTION_ROLE: "--role", LIVY_KEY_ARN: "--key", LIVY_CONTEXT: "--context"}
# A Spark Connect session carries its own key only with --session-key-override.
_CONNECT_OWNER = {
    LIVY_KEY_ARN: "--key K --session-key-override",
    LIVY_CONTEXT: "--key K --context K=V --session-key-override",
}


def check_role(role_arn: str | None) -> str:
    """The execution role ARN, or a one-line error saying what to give."""
    if not role_arn:
        raise UserError(
            "no execution role given", hint="pass --role ARN or set EmrCmk.default_role"
        )
    role_arn = role_arn.strip()
    problem = role_arn_problem(role_arn)
    if problem:
        raise UserError(f"execution role {quoted(role_arn, 120)} {problem}")
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
    _refuse_overrides(user, mandatory, _OWNER)
    result["conf"] = {**user, **mandatory}
    return result


def connect_properties(
    user: Mapping[str, Any] | None, session_key: DiskEncryption | None
) -> dict[str, str]:
    """A Spark Connect session's ``spark-defaults`` properties: the user's ``--conf``, and the
    disk properties of ``session_key`` (given with --session-key-override), which no user conf
    may set otherwise."""
    properties = {str(k): str(v) for k, v in (user or {}).items()}
    mandatory: dict[str, str] = {}
    if session_key is not None:
        mandatory = session_key.to_runtime_configuration()["properties"]
    _refuse_overrides(properties, mandatory, _CONNECT_OWNER)
    return {**properties, **mandatory}


def _refuse_overrides(
    user: Mapping[str, Any], mandatory: Mapping[str, str], owners: Mapping[str, str]
) -> None:
    for name, owner in owners.items():
        if name in user and str(user[name]) != mandatory.get(name):
            wanted = mandatory.get(name)
            what = f"is {wanted!r} for this session" if wanted else "is not set for this session"
            raise UserError(
                f"conf {name} {what} and cannot be overridden",
                hint=f"remove it from the conf; change it with {owner} instead",
            )


def key_in_effect(
    conf: Mapping[str, Any] | None, application_key: DiskEncryption | None
) -> tuple[str, str | None, dict[str, str]]:
    """Which key protects a session's worker disks, as (source, key ARN, context pairs): the
    ``spark.emr-serverless.disk.*`` properties the session was started with, else the
    application's key, else the AWS owned key. Livy and Spark Connect sessions alike."""
    try:
        own = DiskEncryption.from_livy_conf(conf or {})
    except UserError:
        own = None
    if own is not None:
        return SESSION_OVERRIDE, own.key, dict(own.context)
    if application_key is not None:
        return APPLICATION_DEFAULT, application_key.key, dict(application_key.context)
    return AWS_OWNED, None, {}
