"""Decide whether a principal may use a KMS key, the way AWS KMS does.

Follows the IAM User Guide ("Policy evaluation logic", "Cross-account policy evaluation logic",
"AWS JSON policy elements") and the KMS Developer Guide ("Key policies in AWS KMS", "Determining
access to a KMS key"): an explicit deny anywhere wins; identity policies count only when the key
policy allows the key's account (its root principal) or names the caller; a caller from another
account needs the key policy and its own identity policy; a service principal needs only the key
policy. Parse a policy once with ``Policy.parse`` and evaluate it as often as needed.

The request context gets ``aws:PrincipalAccount`` and ``kms:CallerAccount`` (IAM callers) or
``aws:PrincipalServiceName`` (service callers) unless the caller already gives them; any other key,
``aws:PrincipalArn`` included, must be passed in ``Request.context``. A policy variable with no
value never matches, and near misses say so.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from emr_cmk_notebook.core.errors import UserError
from emr_cmk_notebook.core.policy_conditions import (
    ConditionClause,
    InvalidPolicy,
    Template,
    normalize_context,
    parse_conditions,
    wildcard_match,
)

__all__ = [
    "Decision",
    "InvalidPolicy",
    "InvalidRequest",
    "MatchedStatement",
    "Policy",
    "Request",
    "evaluate",
]

_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


class InvalidRequest(UserError):
    """A request whose principal, action or resource AWS would not accept."""


@dataclass(frozen=True)
class Caller:
    """The principal making a request, as a policy sees it."""

    arn: str
    account: str | None
    service: str | None = None
    role: tuple[str, str] | None = None  # (account, role name) for roles and their sessions
    is_root: bool = False


@functools.lru_cache(maxsize=1024)
def _caller(principal: str) -> Caller:
    if not principal.startswith("arn:"):
        if "." in principal and " " not in principal:
            return Caller(principal, None, service=principal.lower())
        raise InvalidRequest(
            f"principal {principal!r} is not an ARN or a service principal",
            hint="e.g. arn:aws:iam::111122223333:role/Name or emr-serverless.amazonaws.com",
        )
    fields = principal.split(":", 5)
    if len(fields) != 6 or not fields[4].isdigit() or fields[2] not in ("iam", "sts"):
        raise InvalidRequest(f"principal {principal!r} is not an IAM or STS ARN")
    account, resource = fields[4], fields[5]
    kind, _, rest = resource.partition("/")
    if resource == "root":
        return Caller(principal, account, is_root=True)
    if kind == "role":
        return Caller(principal, account, role=(account, rest.rsplit("/", 1)[-1]))
    if kind == "assumed-role":
        return Caller(principal, account, role=(account, rest.split("/", 1)[0]))
    return Caller(principal, account)


@dataclass(frozen=True)
class Principals:
    """A parsed ``Principal`` or ``NotPrincipal`` element."""

    anyone: bool = False
    accounts: frozenset[str] = frozenset()
    arns: frozenset[str] = frozenset()
    roles: frozenset[tuple[str, str]] = frozenset()
    services: frozenset[str] = frozenset()

    def match(self, caller: Caller) -> Literal["principal", "account"] | None:
        """``principal`` if this names the caller, ``account`` if only its account, else None."""
        if self.anyone:
            return "principal"
        if caller.service is not None:
            return "principal" if caller.service in self.services else None
        if caller.arn in self.arns or (caller.role is not None and caller.role in self.roles):
            return "principal"
        if caller.account in self.accounts:
            return "principal" if caller.is_root else "account"
        return None

    def excludes(self, caller: Caller) -> bool:
        """NotPrincipal: AWS checks the account and then the user or role, so both must be named."""
        if self.anyone:
            return True
        if caller.service is not None:
            return caller.service in self.services
        named = caller.arn in self.arns or (caller.role is not None and caller.role in self.roles)
        return caller.account in self.accounts and (caller.is_root or named)


def _principals(raw: Any, where: str) -> Principals:
    if raw == "*":
        return Principals(anyone=True)
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidPolicy(f'{where}: must be "*" or an object like {{"AWS": ARN}}')
    accounts: set[str] = set()
    arns: set[str] = set()
    roles: set[tuple[str, str]] = set()
    services: set[str] = set()
    anyone = False
    for kind, values in raw.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise InvalidPolicy(f"{where}.{kind}: unknown principal type")
        items = values if isinstance(values, list) else [values]
        if not items or not all(isinstance(item, str) for item in items):
            raise InvalidPolicy(f"{where}.{kind}: must be a string or a list of strings")
        for item in items:
            if kind == "Service":
                services.add(item.lower())
            elif kind != "AWS":
                continue  # federated and canonical users never make KMS calls here
            elif item == "*":
                anyone = True
            elif item.isdigit() and len(item) == 12:
                accounts.add(item)
            elif item.startswith("arn:") and len(fields := item.split(":", 5)) == 6:
                account, resource = fields[4], fields[5]
                if resource == "root":
                    accounts.add(account)
                elif resource.startswith("role/"):
                    roles.add((account, resource.rsplit("/", 1)[-1]))
                arns.add(item)
            else:
                raise InvalidPolicy(f"{where}.AWS: {item!r} is not an account id or ARN")
    return Principals(
        anyone, frozenset(accounts), frozenset(arns), frozenset(roles), frozenset(services)
    )


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise InvalidPolicy(f"{where}: must be a non-empty string or list of strings")
    return tuple(items)


@dataclass(frozen=True)
class Statement:
    """One parsed policy statement."""

    index: int
    sid: str | None
    effect: Literal["Allow", "Deny"]
    principal: Principals | None
    not_principal: Principals | None
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[Template, ...]
    not_resource: bool
    conditions: tuple[ConditionClause, ...]
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Any, index: int, where: str) -> Statement:
        """Validate one statement; errors name the element, e.g. ``Statement[2].Effect``."""
        if not isinstance(raw, Mapping):
            raise InvalidPolicy(f"{where}: must be an object")
        unknown = sorted(set(raw) - _STATEMENT_KEYS)
        if unknown:
            raise InvalidPolicy(f"{where}.{unknown[0]}: unknown statement element")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise InvalidPolicy(f'{where}.Effect: must be "Allow" or "Deny", not {effect!r}')
        sid = raw.get("Sid")
        if sid is not None and not isinstance(sid, str):
            raise InvalidPolicy(f"{where}.Sid: must be a string")
        for one, other in (("Principal", "NotPrincipal"), ("Action", "NotAction")):
            if one in raw and other in raw:
                raise InvalidPolicy(f"{where}: give {one} or {other}, not both")
        if "NotPrincipal" in raw and effect == "Allow":
            raise InvalidPolicy(f'{where}.NotPrincipal: AWS supports it only with "Deny"')
        if ("Action" in raw) == ("NotAction" in raw):
            raise InvalidPolicy(f"{where}: needs Action or NotAction")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise InvalidPolicy(f"{where}: needs exactly one of Resource or NotResource")
        action_key = "Action" if "Action" in raw else "NotAction"
        actions = _strings(raw[action_key], f"{where}.{action_key}")
        for action in actions:
            if action != "*" and ":" not in action:
                raise InvalidPolicy(
                    f"{where}.{action_key}: {action!r} needs a service prefix, e.g. kms:Decrypt"
                )
        resource_key = "Resource" if "Resource" in raw else "NotResource"
        resources = _strings(raw[resource_key], f"{where}.{resource_key}")
        return cls(
            index=index,
            sid=sid,
            effect=effect,
            principal=_principals(raw["Principal"], f"{where}.Principal")
            if "Principal" in raw
            else None,
            not_principal=_principals(raw["NotPrincipal"], f"{where}.NotPrincipal")
            if "NotPrincipal" in raw
            else None,
            actions=tuple(action.lower() for action in actions),
            not_action=action_key == "NotAction",
            resources=tuple(Template.parse(resource) for resource in resources),
            not_resource=resource_key == "NotResource",
            conditions=parse_conditions(raw["Condition"], f"{where}.Condition")
            if "Condition" in raw
            else (),
            raw=raw,
        )

    @property
    def names_principals(self) -> bool:
        """True for resource-policy statements (with Principal or NotPrincipal)."""
        return self.principal is not None or self.not_principal is not None

    def action_matches(self, action: str) -> bool:
        """Action/NotAction test; ``action`` must already be lower-cased."""
        hit = any(wildcard_match(pattern, action) for pattern in self.actions)
        return hit != self.not_action

    def resource_matches(self, resource: str, ctx: Mapping[str, tuple[str, ...]]) -> str | None:
        """None when Resource/NotResource lets ``resource`` through, else why not."""
        notes: list[str] = []
        hit = False
        for template in self.resources:
            matched, note = template.matches(resource, ctx)
            if note:
                notes.append(note)
            hit = hit or matched
        if hit != self.not_resource:
            return None
        element = "NotResource" if self.not_resource else "Resource"
        return f"{element} does not let {resource} through" + "".join(f"; {n}" for n in notes)

    def principal_match(self, caller: Caller) -> Literal["principal", "account"] | None:
        """How Principal/NotPrincipal names the caller (identity statements name it implicitly)."""
        if self.principal is not None:
            return self.principal.match(caller)
        if self.not_principal is not None:
            return None if self.not_principal.excludes(caller) else "principal"
        return "principal"

    def failed_condition(
        self, ctx: Mapping[str, tuple[str, ...]], names: Mapping[str, str]
    ) -> tuple[str, str] | None:
        """``(label, why)`` of the first condition the request fails, or None when all hold."""
        for clause in self.conditions:
            why = clause.check(ctx, names)
            if why is not None:
                return clause.label, why
        return None


@dataclass(frozen=True)
class Policy:
    """A validated policy document; parse once, evaluate many times."""

    statements: tuple[Statement, ...]
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, doc: str | Mapping[str, Any]) -> Policy:
        """Parse and validate a policy; raises ``InvalidPolicy`` naming the bad element."""
        if isinstance(doc, str):
            return _parse_text(doc)
        return cls._from_document(doc)

    @classmethod
    def _from_document(cls, doc: Any) -> Policy:
        if not isinstance(doc, Mapping):
            raise InvalidPolicy("a policy must be a JSON object with a Statement element")
        unknown = sorted(set(doc) - {"Version", "Id", "Statement"})
        if unknown:
            raise InvalidPolicy(f"{unknown[0]}: unknown policy element")
        if doc.get("Version", "2012-10-17") not in ("2012-10-17", "2008-10-17"):
            raise InvalidPolicy(f'Version: must be "2012-10-17", not {doc["Version"]!r}')
        raw = doc.get("Statement")
        if raw is None:
            raise InvalidPolicy("Statement: missing")
        if isinstance(raw, Mapping):
            statements = (Statement.parse(raw, 0, "Statement"),)
        elif isinstance(raw, list) and raw:
            statements = tuple(
                Statement.parse(item, i, f"Statement[{i}]") for i, item in enumerate(raw)
            )
        else:
            raise InvalidPolicy("Statement: must be an object or a non-empty list of objects")
        return cls(statements, doc)


@functools.lru_cache(maxsize=256)
def _parse_text(text: str) -> Policy:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPolicy(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return Policy._from_document(doc)


@dataclass(frozen=True)
class Request:
    """A call to check: who, which action, on which key ARN, with which context keys."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    # The resource's account when its ARN names none (``*``, S3): the simulator's ResourceOwner.
    owner: str | None = None


@dataclass(frozen=True)
class MatchedStatement:
    """A statement that decided a request, or for an implicit deny one that nearly allowed it."""

    source: str
    index: int
    sid: str | None
    effect: str
    statement: Mapping[str, Any]
    near_miss: str | None = None
    failed_condition: str | None = None

    @property
    def name(self) -> str:
        """``key_policy statement "Sid"`` or ``identity_policy[0] Statement[1]``."""
        if self.sid:
            return f'{self.source} statement "{self.sid}"'
        return f"{self.source} Statement[{self.index}]"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "source": self.source,
            "sid": self.sid,
            "effect": self.effect,
            "statement": copy.deepcopy(dict(self.statement)),
            "near_miss": self.near_miss,
            "failed_condition": self.failed_condition,
        }


@dataclass(frozen=True)
class Decision:
    """The outcome, the statements that decided it, and one line saying why."""

    decision: Literal["allow", "explicit_deny", "implicit_deny"]
    statements: list[MatchedStatement]
    reason: str

    @property
    def allowed(self) -> bool:
        """True only for an allow."""
        return self.decision == "allow"

    def to_dict(self) -> dict[str, Any]:
        """``{"decision", "statements", "reason"}``, ready for ``json.dumps``."""
        return {
            "decision": self.decision,
            "statements": [statement.to_dict() for statement in self.statements],
            "reason": self.reason,
        }


def _as_policy(doc: Policy | Mapping[str, Any] | str, source: str, key_policy: bool) -> Policy:
    try:
        policy = doc if isinstance(doc, Policy) else Policy.parse(doc)
    except InvalidPolicy as exc:
        raise InvalidPolicy(f"{source}: {exc}") from None
    for statement in policy.statements:
        if key_policy and not statement.names_principals:
            raise InvalidPolicy(
                f"{source}: Statement[{statement.index}]: a key policy statement needs Principal"
            )
        if not key_policy and statement.names_principals:
            raise InvalidPolicy(
                f"{source}: Statement[{statement.index}]: identity policies cannot name a Principal"
            )
    return policy


def _key_account(resource: str, owner: str | None = None) -> str:
    fields = resource.split(":", 5)
    if len(fields) == 6 and fields[0] == "arn" and fields[4].isdigit():
        return fields[4]
    if owner is None:
        raise InvalidRequest(
            f"resource {resource!r} is not a key ARN",
            hint="e.g. arn:aws:kms:us-east-1:111122223333:key/KEY_ID",
        )
    return owner


def _context(request: Request, caller: Caller) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    ctx, names = normalize_context(request.context)
    derived = (
        {"aws:PrincipalServiceName": caller.service}
        if caller.service
        else {"aws:PrincipalAccount": caller.account, "kms:CallerAccount": caller.account}
    )
    for name, value in derived.items():
        if value is not None and name.lower() not in ctx:
            ctx[name.lower()] = (value,)
            names[name.lower()] = name
    return ctx, names


_NearMiss = tuple[int, MatchedStatement]


class _Evaluation:
    """Working state of one evaluation: matches by kind, plus ranked near misses."""

    def __init__(self, request: Request, caller: Caller) -> None:
        self.caller = caller
        self.action = request.action.lower()
        self.resource = request.resource
        self.ctx, self.names = _context(request, caller)
        self.denies: list[MatchedStatement] = []
        self.near: list[_NearMiss] = []

    def scan(
        self, policy: Policy, source: str
    ) -> tuple[list[MatchedStatement], list[MatchedStatement]]:
        """Allows that name the caller and allows that name only its account; collects denies."""
        direct: list[MatchedStatement] = []
        account: list[MatchedStatement] = []
        for statement in policy.statements:
            if not statement.action_matches(self.action):
                continue
            found = MatchedStatement(
                source, statement.index, statement.sid, statement.effect, statement.raw
            )
            resource_miss = statement.resource_matches(self.resource, self.ctx)
            if resource_miss is not None:
                self.miss(2, found, resource_miss)
                continue
            how = statement.principal_match(self.caller)
            if statement.effect == "Deny":
                if how is not None and statement.failed_condition(self.ctx, self.names) is None:
                    self.denies.append(found)
                continue
            if how is None:
                self.miss(3, found, f"its Principal does not name {self.caller.arn}")
                continue
            failed = statement.failed_condition(self.ctx, self.names)
            if failed is not None:
                label, why = failed
                self.miss(0, found, why, label)
                continue
            (direct if how == "principal" else account).append(found)
        return direct, account

    def miss(self, rank: int, found: MatchedStatement, why: str, label: str | None = None) -> None:
        """Record a statement that came close to allowing the request."""
        near = MatchedStatement(
            found.source, found.index, found.sid, found.effect, found.statement, why, label
        )
        self.near.append((rank, near))


def _names(statements: Sequence[MatchedStatement]) -> str:
    return ", ".join(statement.name for statement in statements)


def evaluate(
    request: Request,
    key_policy: Policy | Mapping[str, Any] | str,
    identity_policies: Sequence[Policy | Mapping[str, Any] | str] = (),
) -> Decision:
    """Decide ``request`` against a KMS key policy and the caller's identity policies."""
    key = _as_policy(key_policy, "key_policy", key_policy=True)
    identities = [
        (f"identity_policy[{i}]", _as_policy(doc, f"identity_policy[{i}]", key_policy=False))
        for i, doc in enumerate(identity_policies)
    ]
    caller = _caller(request.principal)
    key_account = _key_account(request.resource, request.owner)
    if ":" not in request.action:
        raise InvalidRequest(f"action {request.action!r} needs a service prefix, e.g. kms:Decrypt")
    run = _Evaluation(request, caller)
    direct, via_account = run.scan(key, "key_policy")
    identity_allows: list[MatchedStatement] = []
    if caller.service is None:
        for source, policy in identities:
            identity_allows.extend(run.scan(policy, source)[0])
    what = f"{request.action} on {request.resource} by {request.principal}"
    if run.denies:
        return Decision("explicit_deny", run.denies, f"explicitly denied by {_names(run.denies)}")

    same_account = caller.account == key_account
    if direct and (same_account or caller.service is not None):
        return Decision("allow", direct, f"{_names(direct)} allows {what}")
    key_grants = direct + via_account
    if key_grants and identity_allows:
        granted = key_grants + identity_allows
        via = "lets IAM policies grant it" if same_account else "allows the caller's account"
        return Decision(
            "allow", granted, f"{_names(key_grants)} {via} and {_names(identity_allows)} allows it"
        )

    if identity_allows and not key_grants:
        root = f"arn:aws:iam::{key_account}:root"
        why = (
            f"the key policy does not allow {root} for {request.action}, so identity policies "
            "do not count"
            if same_account
            else f"the key policy in account {key_account} does not name {request.principal} "
            "or its account"
        )
        for found in identity_allows:
            run.miss(1, found, why)
    elif key_grants and caller.service is None:
        why = f"no identity policy of {request.principal} allows {request.action} on this key"
        for found in key_grants:
            run.miss(1, found, why)
    near = [found for _, found in sorted(run.near, key=lambda pair: pair[0])]
    reason = f"no statement allows {what}"
    if near:
        reason += f"; closest: {near[0].name}: {near[0].near_miss}"
    return Decision("implicit_deny", near, reason)
