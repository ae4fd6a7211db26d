"""Fixes: the minimal statement for each failing check, the AWS CLI command that applies it, and
``apply_fix``, which merges key-policy statements into the live key policy.

``apply_fix`` re-reads the key policy, adds or replaces statements by ``Sid``, shows a unified
diff, and refuses when the result would no longer let the key's account root manage the key.
"""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from emr_cmk_notebook.clients import AwsTarget
from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.core.policy import Policy, Request, evaluate
from emr_cmk_notebook.readiness.calls import Unreadable, attempt, client

if TYPE_CHECKING:
    from emr_cmk_notebook.readiness.report import ReadinessReport

FixKind = Literal["key_policy", "role_policy", "user_policy", "trust_policy"]
VIA_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


@dataclass(frozen=True)
class Fix:
    """Statements to add, where they go, who applies them, and the command that does it."""

    kind: FixKind
    statements: tuple[Mapping[str, Any], ...]
    command: str
    note: str = ""
    target: str = ""  # key ARN, role name or user name
    who: str = ""  # who may apply it, e.g. "the key owner (account 444455556666)"

    @property
    def statement(self) -> Mapping[str, Any]:
        """The first statement (most fixes have one)."""
        return self.statements[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``statement`` is the first of ``statements``)."""
        return {
            "kind": self.kind,
            "target": self.target,
            "who": self.who,
            "statement": dict(self.statement),
            "statements": [dict(s) for s in self.statements],
            "command": self.command,
            "note": self.note,
        }


def _sid(prefix: str, suffix: str) -> str:
    return prefix + "".join(c for c in suffix if c.isalnum())


def via_service(region: str) -> dict[str, Any]:
    """The condition AWS's example puts on a caller's GenerateDataKey and Decrypt."""
    return {"StringEquals": {"kms:ViaService": f"emr-serverless.{region}.amazonaws.com"}}


def _split(actions: Sequence[str], via_region: str | None) -> list[tuple[list[str], bool]]:
    """Group actions into (actions, conditioned on kms:ViaService?).

    kms:DescribeKey is never conditioned: AWS's example grants it plainly, and our own checks call
    DescribeKey directly, so a conditioned grant would lock the caller out of the check.
    """
    if not via_region:
        return [(list(actions), False)]
    plain = [a for a in actions if a not in VIA_ACTIONS]
    via = [a for a in actions if a in VIA_ACTIONS]
    return [(group, conditioned) for group, conditioned in ((plain, False), (via, True)) if group]


def service_statement(app_arn: str, account: str, app_id: str) -> dict[str, Any]:
    """The key policy statement AWS documents for EMR Serverless disks, for one application."""
    return {
        "Sid": _sid("EmrServerlessDisks", app_id),
        "Effect": "Allow",
        "Principal": {"Service": "emr-serverless.amazonaws.com"},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringLike": {"aws:SourceArn": app_arn},
            "StringEquals": {
                "aws:SourceAccount": account,
                "kms:EncryptionContext:applicationId": app_id,
            },
        },
    }


def principal_key_statements(
    principal_arn: str, actions: Sequence[str], via_region: str | None
) -> list[dict[str, Any]]:
    """Key policy statements naming one user or role (``kms:ViaService`` for callers)."""
    name = principal_arn.rsplit("/", 1)[-1]
    found = []
    for group, conditioned in _split(actions, via_region):
        prefix = "EmrCmkVia" if conditioned and len(actions) > len(group) else "EmrCmk"
        statement: dict[str, Any] = {
            "Sid": _sid(prefix, name),
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn},
            "Action": group,
            "Resource": "*",
        }
        if conditioned and via_region:
            statement["Condition"] = via_service(via_region)
        found.append(statement)
    return found


def identity_statements(
    key_resource: str, actions: Sequence[str], via_region: str | None, alias: str | None = None
) -> list[dict[str, Any]]:
    """Identity policy statements allowing ``actions`` on one key.

    ``alias`` (with a ``key/*`` resource) is for a key whose ARN could not be read: the statement
    then holds for the key that alias names (``kms:ResourceAliases``).
    """
    found = []
    for group, conditioned in _split(actions, via_region):
        sid = "EmrCmkDiskKeyVia" if conditioned and len(actions) > len(group) else "EmrCmkDiskKey"
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": group,
            "Resource": key_resource,
        }
        condition: dict[str, Any] = {}
        if conditioned and via_region:
            condition.update(via_service(via_region))
        if alias:
            condition["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": alias}
        if condition:
            statement["Condition"] = condition
        found.append(statement)
    return found


def _document(statements: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def merge(policy: Mapping[str, Any], statements: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``policy`` with ``statements`` added; a statement with the same ``Sid`` is replaced."""
    merged = json.loads(json.dumps(policy))
    existing = merged.get("Statement", [])
    current = [existing] if isinstance(existing, Mapping) else list(existing)
    for statement in statements:
        sid = statement.get("Sid")
        same = [i for i, s in enumerate(current) if sid and s.get("Sid") == sid]
        if same:
            current[same[0]] = dict(statement)
        else:
            current.append(dict(statement))
    merged["Statement"] = current
    return merged


def key_owner(key: str) -> str:
    """Who may change a key policy, in a user's words (``key`` an ARN, or an alias)."""
    fields = key.split(":")
    return f"the key owner (account {fields[4]})" if len(fields) > 4 else "the key owner"


def iam_admin(account: str) -> str:
    """Who may change an identity policy or a role's trust policy."""
    return f"an IAM administrator of account {account}"


def key_policy_fix(
    key_arn: str,
    region: str,
    statements: Sequence[Mapping[str, Any]],
    current: str | None,
    note: str = "",
) -> Fix:
    """A key-policy fix; the command carries the merged policy when the current one is known."""
    put = f"aws kms put-key-policy --region {region} --key-id {key_arn} --policy-name default"
    if current is not None:
        merged = json.dumps(merge(json.loads(current), statements), separators=(",", ":"))
        command = f"{put} --policy {shlex.quote(merged)}"
    else:
        command = (
            f"aws kms get-key-policy --region {region} --key-id {key_arn} --policy-name default "
            "--output text --query Policy > key-policy.json  "
            "# the key owner adds the statement to key-policy.json, then:\n"
            f"{put} --policy file://key-policy.json"
        )
    statements = tuple(dict(s) for s in statements)
    return Fix("key_policy", statements, command, note, key_arn, key_owner(key_arn))


def identity_fix(
    kind: FixKind,
    name: str,
    account: str,
    policy_name: str,
    statements: Sequence[Mapping[str, Any]],
    note: str = "",
) -> Fix:
    """An inline identity policy for a role or user, and the ``aws iam put-*-policy`` command."""
    noun = "role" if kind == "role_policy" else "user"
    document = json.dumps(_document(statements), separators=(",", ":"))
    command = (
        f"aws iam put-{noun}-policy --{noun}-name {shlex.quote(name)} "
        f"--policy-name {shlex.quote(policy_name)} --policy-document {shlex.quote(document)}"
    )
    statements = tuple(dict(s) for s in statements)
    return Fix(kind, statements, command, note, name, iam_admin(account))


def trust_fix(role_name: str, account: str, current: Mapping[str, Any] | None) -> Fix:
    """Let EMR Serverless assume the role: the trust statement and ``update-assume-role-policy``."""
    statement = {
        "Sid": "EmrServerlessAssumeRole",
        "Effect": "Allow",
        "Principal": {"Service": "emr-serverless.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    document = merge(current, [statement]) if current else _document([statement])
    command = (
        f"aws iam update-assume-role-policy --role-name {shlex.quote(role_name)} "
        f"--policy-document {shlex.quote(json.dumps(document, separators=(',', ':')))}"
    )
    return Fix("trust_policy", (statement,), command, "", role_name, iam_admin(account))


def root_allowed(policy: Mapping[str, Any], key_arn: str) -> bool:
    """True when the policy still lets the key's account root change the key policy."""
    account = key_arn.split(":")[4]
    request = Request(f"arn:aws:iam::{account}:root", "kms:PutKeyPolicy", key_arn)
    return evaluate(request, Policy.parse(policy)).allowed


@dataclass
class AppliedFix:
    """What ``apply_fix`` did: the diff, the new policy, and whether it was written."""

    key_arn: str
    diff: str
    policy: dict[str, Any]
    applied: bool
    statements: list[Mapping[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "key_arn": self.key_arn,
            "diff": self.diff,
            "applied": self.applied,
            "statements": [dict(s) for s in self.statements],
        }

    def __str__(self) -> str:
        verb = "updated" if self.applied else "would update"
        return f"{verb} the key policy of {self.key_arn}:\n{self.diff}"


def apply_fix(
    report: ReadinessReport, *, target: AwsTarget | None = None, dry_run: bool = False
) -> AppliedFix:
    """Merge the report's key-policy fixes into the key policy and write it (unless ``dry_run``)."""
    statements = [s for fix in report.fixes if fix.kind == "key_policy" for s in fix.statements]
    key_arn = report.key_arn
    if not statements or key_arn is None:
        raise UserError("nothing to apply: the report has no key policy fix")
    kms = client(target or report.target or AwsTarget(region=report.region), "kms")
    current = attempt(
        "kms:GetKeyPolicy",
        lambda: kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"],
    )
    if isinstance(current, Unreadable):
        raise UserError(
            f"cannot read the key policy of {key_arn} ({current.code}); "
            "hand the statement in the report to the key owner"
        )
    before = json.loads(current)
    after = merge(before, statements)
    diff = "".join(
        difflib.unified_diff(
            json.dumps(before, indent=2).splitlines(keepends=True),
            json.dumps(after, indent=2).splitlines(keepends=True),
            "key-policy (current)",
            "key-policy (fixed)",
        )
    )
    if not root_allowed(after, key_arn):
        raise UserError(
            f"refusing to write a key policy that does not let the account root manage {key_arn}; "
            "add a statement allowing the account root kms:* first"
        )
    if not dry_run:
        written = attempt(
            "kms:PutKeyPolicy",
            lambda: kms.put_key_policy(
                KeyId=key_arn, PolicyName="default", Policy=json.dumps(after, indent=2)
            ),
        )
        if isinstance(written, Unreadable):
            raise UserError(
                f"you may not change the key policy of {key_arn} ({written.code}); "
                "hand the statement in the report to the key owner"
            )
    return AppliedFix(key_arn, diff, after, not dry_run, statements)
