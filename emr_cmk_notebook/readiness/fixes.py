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

FixKind = Literal["key_policy", "role_policy", "user_policy"]


@dataclass(frozen=True)
class Fix:
    """One statement to add, where it goes, and the command that adds it."""

    kind: FixKind
    statement: Mapping[str, Any]
    command: str
    note: str = ""
    target: str = ""  # key ARN, role name or user name

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "kind": self.kind,
            "target": self.target,
            "statement": dict(self.statement),
            "command": self.command,
            "note": self.note,
        }


def _sid(prefix: str, suffix: str) -> str:
    return prefix + "".join(c for c in suffix if c.isalnum())


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


def principal_key_statement(
    principal_arn: str, actions: Sequence[str], via_region: str | None
) -> dict[str, Any]:
    """A key policy statement naming one user or role (``kms:ViaService`` for callers)."""
    statement: dict[str, Any] = {
        "Sid": _sid("EmrCmk", principal_arn.rsplit("/", 1)[-1]),
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn},
        "Action": list(actions),
        "Resource": "*",
    }
    if via_region:
        service = f"emr-serverless.{via_region}.amazonaws.com"
        statement["Condition"] = {"StringEquals": {"kms:ViaService": service}}
    return statement


def identity_statement(
    key_arn: str, actions: Sequence[str], via_region: str | None
) -> dict[str, Any]:
    """An identity policy statement allowing ``actions`` on one key."""
    statement: dict[str, Any] = {
        "Sid": "EmrCmkDiskKey",
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": key_arn,
    }
    if via_region:
        service = f"emr-serverless.{via_region}.amazonaws.com"
        statement["Condition"] = {"StringEquals": {"kms:ViaService": service}}
    return statement


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


def key_policy_fix(
    key_arn: str, region: str, statement: Mapping[str, Any], current: str | None, note: str = ""
) -> Fix:
    """A key-policy fix; the command carries the merged policy when the current one is known."""
    put = f"aws kms put-key-policy --region {region} --key-id {key_arn} --policy-name default"
    if current is not None:
        merged = json.dumps(merge(json.loads(current), [statement]), separators=(",", ":"))
        command = f"{put} --policy {shlex.quote(merged)}"
    else:
        command = (
            f"aws kms get-key-policy --region {region} --key-id {key_arn} --policy-name default "
            "--output text --query Policy > key-policy.json  "
            "# the key owner adds the statement to key-policy.json, then:\n"
            f"{put} --policy file://key-policy.json"
        )
    return Fix("key_policy", dict(statement), command, note, key_arn)


def identity_fix(kind: FixKind, name: str, key_arn: str, statement: Mapping[str, Any]) -> Fix:
    """An inline identity policy for a role or user, and the ``aws iam put-*-policy`` command."""
    who = "role" if kind == "role_policy" else "user"
    document = json.dumps(_document([statement]), separators=(",", ":"))
    policy_name = "emr-cmk-" + key_arn.rsplit("/", 1)[-1]
    command = (
        f"aws iam put-{who}-policy --{who}-name {shlex.quote(name)} "
        f"--policy-name {policy_name} --policy-document {shlex.quote(document)}"
    )
    return Fix(kind, dict(statement), command, target=name)


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
    statements = [fix.statement for fix in report.fixes if fix.kind == "key_policy"]
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
