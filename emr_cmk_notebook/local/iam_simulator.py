"""IAM's policy simulator (``SimulatePrincipalPolicy``) for the local backend, which moto lacks.

Follows the IAM API reference (SimulatePrincipalPolicy, EvaluationResult, ResourceSpecificResult,
Statement): the principal's identity policies (a user's own and its groups', a group's, a role's)
and ``PolicyInputList`` are decided with the project's policy engine (``core.policy.evaluate``) for
each action on each resource, with ``ContextEntries`` as the request context. Resource policies are
not fetched: only a ``ResourcePolicy`` given in the request counts (so a KMS key policy counts only
when passed that way), and without one the identity side alone decides. A role's permissions
boundary, or ``PermissionsBoundaryPolicyInputList``, limits the identity side. The local backend
has no Organizations, so no SCP applies. One result per action, the most restrictive decision over
the resources, with each resource's own result in ``ResourceSpecificResults``. The caller needs
``iam:SimulatePrincipalPolicy`` on the principal, as at AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from emr_cmk_notebook.core.policy import (
    Decision,
    InvalidPolicy,
    InvalidRequest,
    Policy,
    Request,
    evaluate,
)
from emr_cmk_notebook.local.accounts import PARTITION
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import Identity
from emr_cmk_notebook.local.policy_seam import (
    AttachedPolicy,
    account_decides,
    identity_decision,
    principal_policies,
)
from emr_cmk_notebook.local.wire import ApiRequest, ApiResponse

OPERATION = "SimulatePrincipalPolicy"
ACTION = f"iam:{OPERATION}"
XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
DECISIONS = {"allow": "allowed", "explicit_deny": "explicitDeny", "implicit_deny": "implicitDeny"}
_RESTRICTIVE = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}
_CONTEXT_TYPES = frozenset(
    {"string", "numeric", "boolean", "ip", "binary", "date"}
    | {f"{kind}List" for kind in ("string", "numeric", "boolean", "ip", "binary", "date")}
)
_PRINCIPAL_ARN = re.compile(r"^arn:[\w-]+:iam::(\d{12}):(user|group|role)/(?:[^/]+/)*([^/]+)$")
# The Service Authorization Reference's ARN formats of the resource types the package simulates.
_ARN_FORMATS = (
    (
        re.compile(r"^arn:[\w-]+:kms:[^:]*:\d{12}:key/"),
        "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}",
    ),
    (
        re.compile(r"^arn:[\w-]+:kms:[^:]*:\d{12}:alias/"),
        "arn:${Partition}:kms:${Region}:${Account}:alias/${Alias}",
    ),
)
_WS = re.compile(r"[ \t\n\r]*")


class _Entries(dict):
    """A map member, serialised as ``<entry><key/><value/></entry>`` items."""


@dataclass(frozen=True)
class _Source:
    """A policy taking part in the simulation, named as the answer names it."""

    id: str
    type: str
    text: str
    policy: Policy


@dataclass(frozen=True)
class _Principal:
    account: str
    kind: str
    name: str
    arn: str


def answer(request: ApiRequest) -> ApiResponse | None:
    """The simulator's answer to an IAM ``SimulatePrincipalPolicy`` request; None for any other."""
    params = _params(request)
    if _one(params, "Action") != OPERATION:
        return None
    results = _simulate(request.identity, params)
    start, size = _page(params, len(results))
    page: dict[str, Any] = {
        "EvaluationResults": results[start : start + size],
        "IsTruncated": start + size < len(results),
    }
    if page["IsTruncated"]:
        page["Marker"] = str(start + size)
    body = (
        f'<{OPERATION}Response xmlns="{XMLNS}">{_xml(f"{OPERATION}Result", page)}'
        f"<ResponseMetadata><RequestId>{escape(request.request_id)}</RequestId>"
        f"</ResponseMetadata></{OPERATION}Response>"
    )
    return ApiResponse(200, body.encode(), {"Content-Type": "text/xml"})


# --- the request -------------------------------------------------------------------------------


def _params(request: ApiRequest) -> dict[str, list[str]]:
    params = request.query
    if request.body:
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        for name, values in form.items():
            params.setdefault(name, []).extend(values)
    return params


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _members(params: Mapping[str, list[str]], prefix: str) -> list[str]:
    """``Prefix.member.1``, ``Prefix.member.2``... in order."""
    found = {}
    for name, values in params.items():
        head, _, number = name.rpartition(".member.")
        if head == prefix and number.isdigit():
            found[int(number)] = values[0]
    return [found[n] for n in sorted(found)]


def _context(params: Mapping[str, list[str]]) -> dict[str, str | list[str]]:
    context: dict[str, str | list[str]] = {}
    numbers = {
        int(m.group(1))
        for name in params
        if (m := re.match(r"^ContextEntries\.member\.(\d+)\.", name))
    }
    for n in sorted(numbers):
        entry = f"ContextEntries.member.{n}"
        name = _one(params, f"{entry}.ContextKeyName")
        values = _members(params, f"{entry}.ContextKeyValues")
        kind = _one(params, f"{entry}.ContextKeyType") or "string"
        if not name:
            raise _invalid(f"context entry {n} has no ContextKeyName")
        if kind not in _CONTEXT_TYPES:
            raise _invalid(
                f"ContextKeyType {kind!r} of {name} is not one of {sorted(_CONTEXT_TYPES)}"
            )
        if not kind.endswith("List") and len(values) != 1:
            raise _invalid(f"context key {name} of type {kind} takes exactly one value")
        context[name] = list(values) if kind.endswith("List") else values[0]
    return context


def _page(params: Mapping[str, list[str]], total: int) -> tuple[int, int]:
    raw_size, marker = _one(params, "MaxItems"), _one(params, "Marker")
    if raw_size is None:
        size = 100
    elif not raw_size.isdigit() or not 1 <= int(raw_size) <= 1000:
        raise _invalid("MaxItems must be a whole number from 1 to 1000")
    else:
        size = int(raw_size)
    if marker is None:
        return 0, size
    if not marker.isdigit() or int(marker) >= max(total, 1):
        raise _invalid("Marker is not one this simulation returned; start again without it")
    return int(marker), size


def _principal(arn: str, what: str) -> _Principal:
    match = _PRINCIPAL_ARN.match(arn)
    if match is None:
        raise _invalid(f"{what} {arn} is not the ARN of an IAM user, group or role")
    account, kind, name = match.groups()
    return _Principal(account, kind, name, arn)


def _policy(text: str, what: str, code: str = "InvalidInput") -> Policy:
    try:
        return Policy.parse(text)
    except InvalidPolicy as exc:
        status = 500 if code == "PolicyEvaluation" else 400
        raise AwsError(code, f"{what} is not a valid policy: {exc}", status) from None


# --- the simulation ----------------------------------------------------------------------------


def _simulate(caller: Identity, params: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    source_arn = _one(params, "PolicySourceArn")
    actions = _members(params, "ActionNames")
    if not source_arn or not actions:
        raise AwsError("ValidationError", "PolicySourceArn and ActionNames are required", 400)
    _require(caller, ACTION, source_arn)
    source = _principal(source_arn, "PolicySourceArn")
    if source.account != caller.account_id:
        raise _no_such(source)
    try:
        attached = principal_policies(source.account, source.kind, source.name)
    except Exception:  # moto raises its own NoSuchEntity types
        raise _no_such(source) from None
    sources = [_attached(p) for p in attached] + [
        _Source(f"PolicyInputList.{n}", "none", text, _policy(text, f"PolicyInputList.{n}"))
        for n, text in enumerate(_members(params, "PolicyInputList"), 1)
    ]
    caller_arn = _one(params, "CallerArn") or source.arn
    principal = _principal(caller_arn, "CallerArn")
    resource_text = _one(params, "ResourcePolicy")
    resource_policy = None
    if resource_text is not None:
        if principal.kind == "role":
            raise _invalid(
                "Simulation of resource-based policies isn't supported for IAM roles; "
                "give a user as CallerArn"
            )
        resource_policy = _Source(
            "ResourcePolicy", "resource", resource_text, _policy(resource_text, "ResourcePolicy")
        )
    simulation = _Simulation(
        principal=principal,
        owner=_owner(_one(params, "ResourceOwner"), principal.account),
        sources=sources,
        resource_policy=resource_policy,
        boundary=_boundary(params, source),
        context=_context(params),
    )
    resources = _members(params, "ResourceArns") or ["*"]
    for action in actions:
        if ":" not in action:
            raise _invalid(f"action {action!r} needs a service prefix, e.g. kms:Decrypt")
    return [simulation.result(action, resources) for action in actions]


def _attached(policy: AttachedPolicy) -> _Source:
    parsed = _policy(policy.document, policy.id, "PolicyEvaluation")
    return _Source(policy.id, policy.type, policy.document, parsed)


def _owner(raw: str | None, default: str) -> str:
    if raw is None:
        return default
    account = re.fullmatch(r"(?:arn:[\w-]+:iam::)?(\d{12})(?::root)?", raw)
    if account is None:
        raise _invalid(f"ResourceOwner {raw} is not an account id or arn:aws:iam::ACCOUNT:root")
    return account.group(1)


def _boundary(params: Mapping[str, list[str]], source: _Principal) -> Policy | None:
    given = _members(params, "PermissionsBoundaryPolicyInputList")
    if len(given) > 1:
        raise _invalid("PermissionsBoundaryPolicyInputList takes one policy")
    if given:
        return _policy(given[0], "PermissionsBoundaryPolicyInputList.1")
    if source.kind != "role":
        return None  # the local IAM keeps permissions boundaries for roles only
    from moto.iam.models import iam_backends

    iam = iam_backends[source.account][PARTITION]
    arn = iam.get_role(source.name).permissions_boundary_arn
    if not arn:
        return None
    policy = iam.get_policy(arn)
    version = next(v for v in policy.versions if v.is_default_version)
    return _policy(version.document, arn, "PolicyEvaluation")


@dataclass
class _Simulation:
    principal: _Principal
    owner: str
    sources: Sequence[_Source]
    resource_policy: _Source | None
    boundary: Policy | None
    context: Mapping[str, str | list[str]]

    def result(self, action: str, resources: Sequence[str]) -> dict[str, Any]:
        """One action's ``EvaluationResult`` over all ``resources``."""
        each = [self._resource(action, resource) for resource in resources]
        decision = max((r["EvalResourceDecision"] for r in each), key=_RESTRICTIVE.__getitem__)
        matched: list[dict[str, Any]] = []
        for r in each:
            if r["EvalResourceDecision"] == decision:
                matched += [s for s in r["MatchedStatements"] if s not in matched]
        missing = list(dict.fromkeys(k for r in each for k in r["MissingContextValues"]))
        result: dict[str, Any] = {
            "EvalActionName": action,
            "EvalResourceName": "*" if resources == ["*"] else _arn_format(resources),
            "EvalDecision": decision,
            "MatchedStatements": matched,
            "MissingContextValues": missing,
        }
        if self.boundary is not None:
            allowed = all(
                r["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"] for r in each
            )
            result["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": allowed}
        if resources != ["*"]:
            result["EvalDecisionDetails"] = _Entries()
            result["ResourceSpecificResults"] = each
        return result

    def _resource(self, action: str, resource: str) -> dict[str, Any]:
        context = {"aws:PrincipalArn": self.principal.arn, **self.context}
        request = Request(self.principal.arn, action, resource, context, owner=self.owner)
        resource_side: Policy | dict[str, Any] = (
            self.resource_policy.policy
            if self.resource_policy is not None
            else account_decides(self.principal.account)
        )
        try:
            decision = evaluate(request, resource_side, [s.policy for s in self.sources])
            bounded = (
                None
                if self.boundary is None
                else evaluate(request, account_decides(self.principal.account), [self.boundary])
            )
        except (InvalidPolicy, InvalidRequest) as exc:
            raise AwsError(
                "PolicyEvaluation", f"The policies could not be evaluated: {exc}", 500
            ) from None
        verdict = DECISIONS[decision.decision]
        if bounded is not None and not bounded.allowed:
            verdict = "explicitDeny" if bounded.decision == "explicit_deny" else "implicitDeny"
        found: dict[str, Any] = {
            "EvalResourceName": resource,
            "EvalResourceDecision": verdict,
            "MatchedStatements": self._matched(decision, verdict),
            "MissingContextValues": self._missing(action, resource, context),
        }
        if bounded is not None:
            found["PermissionsBoundaryDecisionDetail"] = {
                "AllowedByPermissionsBoundary": bounded.allowed
            }
        if resource != "*":
            found["EvalDecisionDetails"] = _Entries()
        return found

    def _matched(self, decision: Decision, verdict: str) -> list[dict[str, Any]]:
        """The statements that decided an allow or an explicit deny (none for an implicit deny)."""
        if verdict != DECISIONS[decision.decision] or verdict == "implicitDeny":
            return []
        matched = []
        for statement in decision.statements:
            if statement.source == "key_policy":
                if self.resource_policy is None:
                    continue  # the stand-in that lets the identity side decide
                source = self.resource_policy
            else:
                source = self.sources[int(statement.source.split("[")[1].rstrip("]"))]
            matched.append(_statement(source, statement.index))
        return matched

    def _missing(self, action: str, resource: str, context: Mapping[str, Any]) -> list[str]:
        """Condition keys of the statements that apply here, absent from the request context."""
        given = {name.lower() for name in context} | {"aws:principalaccount", "kms:calleraccount"}
        policies = [s.policy for s in self.sources]
        if self.resource_policy is not None:
            policies.append(self.resource_policy.policy)
        missing: list[str] = []
        for policy in policies:
            for statement in policy.statements:
                if not statement.action_matches(action.lower()):
                    continue
                if statement.resource_matches(resource, {}) is not None:
                    continue
                for clause in statement.conditions:
                    absent = clause.key not in given and clause.key_name not in missing
                    if absent and not clause.if_exists and clause.base != "Null":
                        missing.append(clause.key_name)
        return missing


def _require(identity: Identity, action: str, resource: str) -> None:
    """Refuse with ``AccessDenied`` unless the caller's identity policies allow ``action``."""
    decision = identity_decision(identity, action, resource)
    if decision is not None and decision.allowed:
        return
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is not None and decision.decision == "explicit_deny"
        else f"because no identity-based policy allows the {action} action"
    )
    raise AwsError(
        "AccessDenied",
        f"User: {identity.principal} is not authorized to perform: {action} on resource: "
        f"{resource} {why}",
        403,
    )


# --- the answer --------------------------------------------------------------------------------


def _arn_format(resources: Sequence[str]) -> str:
    """The ARN format of the resources' type, or ``*`` when they differ or it is not known."""
    formats = set()
    for resource in resources:
        known = (f for pattern, f in _ARN_FORMATS if pattern.match(resource))
        formats.add(next(known, "*"))
    return formats.pop() if len(formats) == 1 else "*"


def _statement(source: _Source, index: int) -> dict[str, Any]:
    found: dict[str, Any] = {"SourcePolicyId": source.id, "SourcePolicyType": source.type}
    spans = _statement_spans(source.text)
    if index < len(spans):
        start, end = spans[index]
        found["StartPosition"] = _position(source.text, start)
        found["EndPosition"] = _position(source.text, end)
    return found


def _position(text: str, offset: int) -> dict[str, int]:
    """Line and column as AWS counts them: 1-based, at the character after the brace."""
    line_start = text.rfind("\n", 0, offset) + 1
    return {"Line": text.count("\n", 0, offset) + 1, "Column": offset - line_start + 2}


def _statement_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of each statement's opening and closing brace, in document order."""
    decoder = json.JSONDecoder()
    try:
        at = _WS.match(text, 0).end()  # type: ignore[union-attr]
        if text[at : at + 1] != "{":
            return []
        at += 1
        while True:
            at = _WS.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] != '"':
                return []
            key, at = decoder.raw_decode(text, at)
            at = _WS.match(text, at).end() + 1  # type: ignore[union-attr]  # the colon
            at = _WS.match(text, at).end()  # type: ignore[union-attr]
            if key == "Statement":
                return _element_spans(text, at, decoder)
            _, at = decoder.raw_decode(text, at)
            at = _WS.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] == ",":
                at += 1
    except (ValueError, IndexError):
        return []


def _element_spans(text: str, at: int, decoder: json.JSONDecoder) -> list[tuple[int, int]]:
    if text[at] == "{":
        _, end = decoder.raw_decode(text, at)
        return [(at, end - 1)]
    spans = []
    at += 1
    while True:
        at = _WS.match(text, at).end()  # type: ignore[union-attr]
        if text[at] == "]":
            return spans
        _, end = decoder.raw_decode(text, at)
        spans.append((at, end - 1))
        at = _WS.match(text, end).end()  # type: ignore[union-attr]
        if text[at] == ",":
            at += 1


def _xml(name: str, value: Any) -> str:
    if isinstance(value, _Entries):
        inner = "".join(
            f"<entry><key>{escape(k)}</key><value>{escape(v)}</value></entry>"
            for k, v in value.items()
        )
    elif isinstance(value, dict):
        inner = "".join(_xml(k, v) for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_xml("member", v) for v in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidInput", message, 400)


def _no_such(principal: _Principal) -> AwsError:
    return AwsError(
        "NoSuchEntity", f"The {principal.kind} with name {principal.name} cannot be found.", 404
    )
